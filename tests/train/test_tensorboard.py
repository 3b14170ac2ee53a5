"""TensorBoardLogger: the event files, read back with TensorBoard's own reader, hold the run's figures."""

import io
import sys

import numpy as np
import pytest
from tests.vis.patch_task import make_patch_data, patch_net

import convstack as cs
from convstack import data, optim
from convstack.train import Callback, Trainer
from convstack.train.tensorboard import TensorBoardLogger
from convstack.vis.snapshots import filters_picture, upscale


class StepLosses(Callback):
    def __init__(self):
        self.losses = []

    def on_batch_end(self, trainer, batch, logs):
        self.losses.append(logs["loss"])


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory):
    """(event accumulator, trainer, per-step losses) of two epochs logged with TensorBoardLogger."""
    pytest.importorskip("tensorboardX", reason="TensorBoard logging needs tensorboardX")
    pytest.importorskip("PIL", reason="tensorboardX encodes pictures with Pillow")
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator", reason="the files are read with TensorBoard's reader"
    )
    log_dir = tmp_path_factory.mktemp("tensorboard") / "run"
    cs.manual_seed(0)
    images, labels, _ = make_patch_data(96, seed=5)
    val_images, val_labels, _ = make_patch_data(32, seed=6)
    train = data.DataLoader(data.TensorDataset(cs.tensor(images), cs.tensor(labels)), batch_size=16, shuffle=True)
    val = data.DataLoader(data.TensorDataset(cs.tensor(val_images), cs.tensor(val_labels)), batch_size=16)
    model = patch_net()
    steps = StepLosses()
    logger = TensorBoardLogger(log_dir, samples=val_images[:4], step_interval=2)
    config = {"model": "patch_net", "hyperparameters": {"lr": 0.05, "batch_size": 16, "optimizer": "sgd"}}
    trainer = Trainer(
        model, optim.SGD(model.parameters(), lr=0.05), callbacks=[steps, logger], progress=False, config=config
    )
    trainer.fit(train, val, epochs=2)
    events = accumulator.EventAccumulator(
        str(log_dir),
        size_guidance={
            accumulator.SCALARS: 0,
            accumulator.IMAGES: 0,
            accumulator.HISTOGRAMS: 0,
            accumulator.TENSORS: 0,
        },
    )
    events.Reload()
    return events, trainer, steps.losses


def test_epoch_scalars_are_the_history(logged_run):
    events, trainer, _ = logged_run
    for key, tag in (
        ("loss", "loss/train"),
        ("acc", "accuracy/train"),
        ("val_loss", "loss/val"),
        ("val_acc", "accuracy/val"),
        ("val_top5", "accuracy/val_top5"),
        ("lr", "learning_rate"),
        ("images_per_s", "throughput/images_per_s"),
        ("time", "time/epoch_seconds"),
    ):
        scalars = events.Scalars(tag)
        assert [s.step for s in scalars] == [1, 2], tag
        assert [s.value for s in scalars] == pytest.approx([row[key] for row in trainer.history], rel=1e-6), tag


def test_step_scalars_every_second_step(logged_run):
    events, _, losses = logged_run
    scalars = events.Scalars("step/loss")
    assert [s.step for s in scalars] == [2, 4, 6, 8, 10, 12]  # six batches an epoch
    assert [s.value for s in scalars] == pytest.approx(losses[1::2], rel=1e-6)
    assert [s.value for s in events.Scalars("step/lr")] == pytest.approx([0.05] * 6)
    assert all(0 <= s.value <= 1 for s in events.Scalars("step/accuracy"))


def test_pictures_each_epoch(logged_run):
    pil = pytest.importorskip("PIL.Image")
    events, trainer, _ = logged_run
    assert set(events.Tags()["images"]) == {"filters/0", "feature_maps/0", "grad_cam/3"}
    filters = events.Images("filters/0")
    assert [image.step for image in filters] == [1, 2]
    with pil.open(io.BytesIO(filters[-1].encoded_image_string)) as decoded:
        shown = np.asarray(decoded.convert("L"))
    assert np.array_equal(shown, upscale(filters_picture(trainer.model), 192))  # the final filters, lossless
    cams = events.Images("grad_cam/3")[-1]
    assert cams.width >= 2 * 200 and cams.height >= 200  # four 20x20 maps, each enlarged to 200x200


def test_histograms_of_weights_and_gradients(logged_run):
    events, trainer, _ = logged_run
    tags = set(events.Tags()["histograms"])
    for name, param in trainer.model.named_parameters():
        assert {f"weights/{name}", f"gradients/{name}"} <= tags
        last = events.Histograms(f"weights/{name}")[-1].histogram_value
        values = param.data
        assert last.num == values.size
        assert (last.min, last.max) == pytest.approx((float(values.min()), float(values.max())), rel=1e-6)


def test_summary_text_and_hyperparameters(logged_run):
    plugin_data = pytest.importorskip("tensorboard.plugins.hparams.plugin_data_pb2")
    events, trainer, _ = logged_run
    text = events.Tensors("model/summary/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "Conv2d" in text and "Linear" in text
    content = events.PluginTagToContent("hparams")
    start = plugin_data.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["lr"].number_value == 0.05 and start.hparams["optimizer"].string_value == "sgd"
    assert start.hparams["model"].string_value == "patch_net"
    experiment = plugin_data.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    end = plugin_data.HParamsPluginData.FromString(content["_hparams_/session_end_info"]).session_end_info
    assert end.status == 1  # STATUS_SUCCESS: written when fit ended
    metrics = {info.name.tag for info in experiment.metric_infos}
    assert metrics == {"accuracy/val", "loss/val", "accuracy/train", "loss/train"}


def test_without_tensorboardx_the_error_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    trainer = Trainer(patch_net(), optim.SGD(patch_net().parameters(), lr=0.1), progress=False)
    with pytest.raises(ImportError, match=r"pip install 'convstack\[tensorboard\]'"):
        TensorBoardLogger(tmp_path).on_fit_start(trainer)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"step_interval": -1}, "`step_interval`: expected a non-negative integer"),
        ({"max_images": 1.5}, "`max_images`: expected a non-negative integer"),
        ({"samples": np.zeros((1, 20, 20))}, r"`samples`: expected inputs \(N, C, H, W\), received shape \(1, 20"),
    ],
)
def test_bad_arguments_are_named(options, message, tmp_path):
    with pytest.raises(ValueError, match="TensorBoardLogger: invalid value for argument " + message):
        TensorBoardLogger(tmp_path, **options)
