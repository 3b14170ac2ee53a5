"""Trainer: it learns, checkpoints every epoch, resumes exactly, and handles non-finite losses."""

import io
import json
import math

import numpy as np
import pytest

import convstack as cs
from convstack import nn, optim
from convstack.data import DataLoader, TensorDataset
from convstack.io import load_checkpoint
from convstack.train import (
    Callback,
    EarlyStopping,
    NonFiniteLossError,
    ProgressBar,
    Trainer,
    confusion_matrix,
    topk_correct,
)


def blobs(n=256, seed=0):
    """Four Gaussian blobs in 2-D: an easy, real classification problem."""
    rng = np.random.default_rng(seed)
    centers = np.array([[2, 2], [-2, 2], [2, -2], [-2, -2]], dtype=np.float32)
    labels = rng.integers(0, 4, n)
    points = centers[labels] + rng.standard_normal((n, 2)).astype(np.float32) * 0.6
    return TensorDataset(cs.tensor(points), cs.tensor(labels))


def make(out_dir=None, lr=0.1, **kwargs):
    cs.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 4))
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    return Trainer(model, optimizer, out_dir=out_dir, progress=False, **kwargs)


def test_fit_learns_blobs_and_writes_history(tmp_path):
    trainer = make(tmp_path)
    loader = DataLoader(blobs(), batch_size=32, shuffle=True)
    history = trainer.fit(loader, DataLoader(blobs(seed=1), batch_size=64), epochs=5)
    assert len(history) == 5 and history[-1]["val_acc"] > 0.9
    assert history[-1]["loss"] < history[0]["loss"]
    saved = json.loads((tmp_path / "history.json").read_text())
    assert [row["epoch"] for row in saved] == [1, 2, 3, 4, 5]
    assert (tmp_path / "history.csv").read_text().startswith("epoch,")
    assert (tmp_path / "best.ckpt").exists() and load_checkpoint(tmp_path / "last.ckpt")["epoch"] == 5


def test_resume_gives_bit_identical_weights(tmp_path):
    data = blobs()
    full = make(tmp_path / "full")
    full.fit(DataLoader(data, batch_size=32, shuffle=True), epochs=4)

    interrupted = make(tmp_path / "cut")
    interrupted.fit(DataLoader(data, batch_size=32, shuffle=True), epochs=2)
    # A new process would start from scratch: new model, new optimizer, a disturbed RNG.
    cs.manual_seed(12345)
    resumed = make(tmp_path / "cut")
    cs.manual_seed(999)
    resumed.fit(DataLoader(data, batch_size=32, shuffle=True), epochs=4, resume=True)
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3, 4]
    for (name, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_nonfinite_loss_stops_with_epoch_and_batch():
    trainer = make(lr=1e30)
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, batch \d+"):
        trainer.fit(DataLoader(blobs(), batch_size=32), epochs=3)


def test_nonfinite_loss_can_skip_steps():
    def loss_fn(outputs, targets):
        loss = cs.nn.functional.cross_entropy(outputs, targets)
        return loss * math.nan if targets.data[0] == 0 else loss

    trainer = make(loss_fn=loss_fn, on_nonfinite="skip")
    trainer.fit(DataLoader(blobs(), batch_size=8), epochs=1)
    assert trainer.skipped_steps > 0


def test_early_stopping_and_custom_callbacks():
    events = []

    class Recorder(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            events.append(epoch)

    stopper = EarlyStopping(monitor="val_loss", patience=1, min_delta=10.0)
    trainer = make(callbacks=[Recorder(), stopper])
    trainer.fit(DataLoader(blobs(), batch_size=32), DataLoader(blobs(seed=2), batch_size=64), epochs=10)
    assert events == [0, 1] and stopper.stopped_epoch == 1


def test_argument_errors():
    with pytest.raises(ValueError, match="`on_nonfinite`: expected 'stop' or 'skip', received 'ignore'"):
        make(on_nonfinite="ignore")
    with pytest.raises(ValueError, match="`epochs`: expected a positive integer, received 0"):
        make().fit(DataLoader(blobs(), batch_size=32), epochs=0)


def test_metrics():
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.05, 0.15], [0.2, 0.3, 0.5]])
    targets = np.array([1, 2, 0])
    assert topk_correct(logits, targets, 1) == 1
    assert topk_correct(logits, targets, 2) == 2
    np.testing.assert_array_equal(confusion_matrix([1, 0, 2], targets, 3), [[0, 0, 1], [0, 1, 0], [1, 0, 0]])


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("stream_type, live", [(io.StringIO, False), (_Terminal, True)])
def test_progress_bar_redraws_only_on_a_terminal(stream_type, live):
    stream = stream_type()
    trainer = make()
    trainer.callbacks.append(ProgressBar(stream=stream, min_interval=0.0))
    trainer.fit(DataLoader(blobs(), batch_size=32), epochs=2)
    text = stream.getvalue()
    assert ("\r" in text) is live and ("img/s" in text) is live
    summaries = [line.split("\r")[-1] for line in text.split("\n") if line]
    assert [line.split("  ")[0] for line in summaries] == ["epoch 1/2", "epoch 2/2"]
    assert all("loss " in line for line in summaries)
