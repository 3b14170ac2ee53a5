"""A training run killed with SIGKILL at a random moment resumes with --resume and ends bit for bit
where an uninterrupted run with the same seed ends (issue 7, item 2)."""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from convstack.data import write_idx
from convstack.io import CheckpointError, load_checkpoint

EPOCHS = 4


@pytest.fixture
def tiny_idx(tmp_path):
    """128 training and 32 test images, 28x28, whose class is their brightness band."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    root.mkdir()
    for prefix, n in (("train", 128), ("t10k", 32)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = (labels[:, None, None] * 25 + rng.integers(0, 20, (n, 28, 28))).astype(np.uint8)
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


def train_command(data_root, out, *extra):
    return [
        sys.executable, "-m", "convstack", "train", "--data-root", str(data_root), "--out", str(out),
        "--epochs", str(EPOCHS), "--batch-size", "8", "--seed", "3", "--no-progress", *extra,
    ]


def run(argv):
    environment = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment)


def saved_epoch(path):
    try:
        return load_checkpoint(path)["epoch"]
    except CheckpointError:
        return None


def kill_mid_run(data_root, out, rng):
    """Start a run, SIGKILL it a random delay after its first checkpoint, before its last; the kill's epoch."""
    delay_limit = 0.8
    for _ in range(6):
        process = run(train_command(data_root, out))
        last = out / "last.ckpt"
        deadline = time.monotonic() + 60
        while not last.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert last.exists(), process.stderr.read().decode()
        delay = rng.uniform(0, delay_limit)
        time.sleep(delay)
        still_running = process.poll() is None
        process.kill()  # SIGKILL: no handler, no cleanup, no flush
        process.wait()
        process.stderr.close()
        epoch = saved_epoch(last)
        if still_running and epoch is not None and epoch < EPOCHS:
            assert process.returncode == -signal.SIGKILL
            return epoch, delay
        delay_limit /= 3  # the run got too far: kill sooner next time
        for child in out.iterdir():
            child.unlink()
    pytest.fail("could not catch the run between its first and last checkpoint")


def test_sigkill_at_a_random_moment_then_resume_is_bit_identical(tiny_idx, tmp_path):
    reference = run(train_command(tiny_idx, tmp_path / "reference"))  # runs alongside the one to be killed
    rng = random.Random(int.from_bytes(os.urandom(4), "little"))
    epoch, delay = kill_mid_run(tiny_idx, tmp_path / "cut", rng)
    left_over = sorted(p.name for p in (tmp_path / "cut").iterdir())
    before = load_checkpoint(tmp_path / "cut" / "last.ckpt")["history"]

    resumed = subprocess.run(train_command(tiny_idx, tmp_path / "cut", "--resume"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    _, errors = reference.communicate()
    assert reference.returncode == 0, errors.decode()

    expected = load_checkpoint(tmp_path / "reference" / "last.ckpt")
    actual = load_checkpoint(tmp_path / "cut" / "last.ckpt")
    where = f"killed {delay:.3f}s after the first checkpoint, at epoch {epoch}; files then: {left_over}"
    assert actual["epoch"] == expected["epoch"] == EPOCHS, where
    assert list(actual["model"]) == list(expected["model"])
    for name, array in expected["model"].items():
        assert actual["model"][name].tobytes() == array.tobytes(), f"{name} differs ({where})"
    for index, state in expected["optimizer"]["state"].items():  # momentum buffers too
        for key, value in state.items():
            assert np.array_equal(actual["optimizer"]["state"][index][key], value), where
    assert [row["loss"] for row in actual["history"]] == [row["loss"] for row in expected["history"]], where
    # It resumed rather than started over: the epochs before the kill keep their measured times.
    assert actual["history"][: len(before)] == before, where
