"""LiveRecorder: what it writes into the run folder agrees with the Trainer's own figures."""

import importlib.util
import json

import numpy as np
import pytest
from tests.dashboard.conftest import CLASSES, patch_loaders, read_events, recorded_trainer
from tests.dashboard.png_reader import pixels

import convstack as cs
from convstack import nn, optim
from convstack.dashboard import LiveRecorder
from convstack.dashboard import recorder as recorder_module
from convstack.dashboard.recorder import json_line
from convstack.data import DataLoader, TensorDataset
from convstack.train import Trainer, evaluate
from convstack.vis.snapshots import feature_maps_picture, filters_picture


def test_the_events_follow_the_run(recorded_run):
    out, trainer = recorded_run
    events = read_events(out)
    kinds = [event["type"] for event in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert kinds.count("epoch") == 3 and kinds.count("step") == 3 * 6  # 96 images in batches of 16
    start = events[0]
    assert start["epochs"] == 3 and start["start_epoch"] == 1 and start["batches"] == 6
    assert start["classes"] == CLASSES and start["feature_layer"] == "0"
    assert start["parameters"] == sum(p.numel() for p in trainer.model.parameters())
    assert "Conv2d" in (out / start["summary"]).read_text()


def test_step_records_add_up_to_the_history(recorded_run):
    out, trainer = recorded_run
    events = read_events(out)
    for row in trainer.history:
        steps = [e for e in events if e["type"] == "step" and e["epoch"] == row["epoch"]]
        assert [e["batch"] for e in steps] == list(range(1, 7))
        assert np.mean([e["loss"] for e in steps]) == pytest.approx(row["loss"], rel=1e-9)  # equal batches
        assert np.mean([e["acc"] for e in steps]) == pytest.approx(row["acc"], rel=1e-9)
        assert all(e["lr"] == row["lr"] for e in steps)
        assert all(e["images_per_s"] > 0 for e in steps)
    etas = [e["eta_s"] for e in events if e["type"] == "step"]
    assert etas[-1] == 0 and all(eta > 0 for eta in etas[:-1])  # (how much more depends on timing: not checked)


def test_epoch_records_carry_the_history_rows(recorded_run):
    out, trainer = recorded_run
    epochs = [e for e in read_events(out) if e["type"] == "epoch"]
    for record, row in zip(epochs, trainer.history):
        assert {key: record[key] for key in row} == row
        assert isinstance(record["timestamp"], float)
    assert epochs[-1]["eta_s"] == 0 and epochs[0]["eta_s"] > 0


def test_pictures_of_the_last_epoch_are_the_final_model(recorded_run):
    out, trainer = recorded_run
    last = [e for e in read_events(out) if e["type"] == "epoch"][-1]
    assert last["filters"] == "live/epoch-003/filters.png"
    assert np.array_equal(pixels(out / last["filters"]), filters_picture(trainer.model))
    maps = pixels(out / last["feature_maps"])
    assert maps.shape == (3 * 21 + 1, 3 * 21 + 1)  # 8 maps of 20x20 on a 3x3 grid, 1 pixel apart
    sample = trainer.train_loader.dataset[0][0]  # the fixed sample: the training set's first
    assert np.array_equal(maps, feature_maps_picture(trainer.model, "0", sample))
    assert not list((out / "live").rglob("*.tmp"))  # every file was renamed into place


def test_confusion_and_misclassified_match_an_evaluation(tmp_path):
    runs = {
        "default": recorded_trainer(tmp_path / "default", epochs=1),
        "raw": recorded_trainer(tmp_path / "raw", epochs=1, images=patch_loaders()[2], max_misclassified=3),
    }
    for name, (trainer, val, raw) in runs.items():
        folder = tmp_path / name
        record = [e for e in read_events(folder) if e["type"] == "epoch"][-1]
        results = evaluate(trainer.model, val)
        confusion = json.loads((folder / record["confusion"]).read_text())
        assert confusion == results["confusion"].tolist() and sum(map(sum, confusion)) == 40
        wrong = np.flatnonzero(results["predictions"] != results["targets"])
        assert wrong.size > 3  # one epoch leaves mistakes to show
        shown = record["misclassified"]
        assert [m["index"] for m in shown] == wrong[: 3 if name == "raw" else 16].tolist()
        for example in shown:
            assert example["true"] == CLASSES[results["targets"][example["index"]]]
            assert example["predicted"] == CLASSES[results["predictions"][example["index"]]]
            picture = pixels(folder / example["file"])
            if name == "raw":
                assert np.array_equal(picture, raw[example["index"]])  # the display images, as given
            else:
                assert picture.shape == (20, 20) and picture.min() == 0 and picture.max() == 255  # the input, rescaled


def test_resume_appends_to_the_same_records(tmp_path):
    recorded_trainer(tmp_path, epochs=2)
    recorded_trainer(tmp_path, epochs=3, resume=True)
    events = read_events(tmp_path)
    starts = [e for e in events if e["type"] == "start"]
    assert [s["start_epoch"] for s in starts] == [1, 3]
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [1, 2, 3]
    assert [e["type"] for e in events].count("end") == 2
    after = events[events.index(starts[1]) :]
    assert {e["epoch"] for e in after if e["type"] == "step"} == {3}


def test_a_model_without_convolutions_records_metrics_only(tmp_path):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(64, 2)).astype(np.float32)
    labels = (points[:, 0] > 0).astype(np.int64)
    loader = DataLoader(TensorDataset(cs.tensor(points), cs.tensor(labels)), batch_size=16)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(model, optimizer, callbacks=[LiveRecorder(tmp_path)], out_dir=tmp_path, progress=False)
    trainer.fit(loader, loader, epochs=2)
    events = read_events(tmp_path)
    epoch = [e for e in events if e["type"] == "epoch"][-1]
    assert "filters" not in epoch and "feature_maps" not in epoch and "confusion" in epoch
    assert events[0]["feature_layer"] is None
    assert epoch["misclassified"] and all("file" not in m for m in epoch["misclassified"])  # points: no pictures


def test_json_lines_are_strict_json():
    line = json_line({"a": float("nan"), "b": np.float32(1.5), "c": [np.int64(3), float("inf")], "d": np.arange(2)})
    assert line.endswith("\n") and "\n" not in line[:-1]
    assert json.loads(line) == {"a": None, "b": 1.5, "c": [3, None], "d": [0, 1]}


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="LiveRecorder: invalid value for argument `max_misclassified`"):
        LiveRecorder("runs/x", max_misclassified=-1)


def test_watching_changes_nothing_in_training(tmp_path):
    """The same seed gives the same run, bit for bit, with the recorder (and TensorBoard) or without."""
    callbacks = []
    if importlib.util.find_spec("tensorboardX") is not None:
        from convstack.train.tensorboard import TensorBoardLogger

        callbacks.append(TensorBoardLogger(tmp_path / "tb", step_interval=1))
    watched, _, _ = recorded_trainer(tmp_path / "watched", epochs=2, callbacks=callbacks)
    plain, _, _ = recorded_trainer(tmp_path / "plain", epochs=2, record=False)
    assert not (tmp_path / "plain" / "live").exists()
    for row_watched, row_plain in zip(watched.history, plain.history, strict=True):
        for key in ("loss", "acc", "val_loss", "val_acc", "val_top5", "lr"):
            assert row_watched[key] == row_plain[key], key
    for (name, a), (_, b) in zip(watched.model.state_dict().items(), plain.model.state_dict().items()):
        assert np.array_equal(a.data, b.data), name


def test_step_records_reach_the_file_within_the_flush_interval(tmp_path, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(recorder_module.time, "perf_counter", lambda: clock[0])
    model = nn.Sequential(nn.Linear(2, 2))
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), progress=False)
    trainer.train_loader, trainer.epochs = None, 1
    recorder = LiveRecorder(tmp_path)
    recorder.on_fit_start(trainer)
    recorder.on_epoch_start(trainer, 0)
    logs = {"loss": 0.5, "acc": 0.5, "seen": 16, "batches": 4}

    def lines():
        return len((tmp_path / "live" / "events.jsonl").read_text().splitlines())

    assert lines() == 1  # the start record, at once
    recorder.on_batch_end(trainer, 0, logs)
    assert lines() == 1  # buffered
    clock[0] += recorder_module.FLUSH_INTERVAL
    recorder.on_batch_end(trainer, 1, logs)
    assert lines() == 3  # both steps, once the interval has passed
    recorder.on_fit_end(trainer)
    assert lines() == 4
