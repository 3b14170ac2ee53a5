"""`convstack train --nproc 2`: one model trained by two processes, rank 0 alone writing; a rank killed
with SIGKILL stops the run at once with the checkpoint intact, and --resume ends bit for bit where an
uninterrupted run ends; a hung rank makes the other stop at the --timeout deadline."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tests.helpers import write_band_dataset

from convstack.cli.common import load_run
from convstack.data import DataLoader, ImageArrayDataset
from convstack.distributed import launch
from convstack.io import load_checkpoint
from convstack.train import evaluate

pytest.importorskip("mpi4py")
if launch.find_mpiexec() is None:
    pytest.skip("no mpiexec (pip install 'convstack[mpi]')", allow_module_level=True)

SOURCE = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def bands(tmp_path_factory):
    """512 training and 64 test images, 28x28, whose class is the row of a bright band."""
    return write_band_dataset(tmp_path_factory.mktemp("data"), (512, 64))


def start(data_root, out, *extra):
    command = [sys.executable, "-m", "convstack", "train", "--nproc", "2", "--data-root", str(data_root),
               "--out", str(out), "--batch-size", "8", "--seed", "5", *extra]
    environment = dict(os.environ, PYTHONPATH=f"{SOURCE}:{os.environ.get('PYTHONPATH', '')}")
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)


def rank_pid(out, rank):
    """The pid of rank ``rank`` of the run writing to ``out`` (its command line names ``out``), or None."""
    marks = {f"PMI_RANK={rank}".encode(), f"OMPI_COMM_WORLD_RANK={rank}".encode()}
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
            variables = set((entry / "environ").read_bytes().split(b"\0"))
        except (OSError, ValueError):
            continue
        if str(out).encode() in command and b"-m\0convstack\0train" in command and marks & variables:
            return int(entry.name)
    return None


def wait_for(path, process, seconds=120):
    deadline = time.monotonic() + seconds
    while not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path.exists(), process.communicate()[1]


def test_two_processes_train_one_model_and_rank_0_alone_reports(bands, tmp_path):
    out = tmp_path / "run"
    process = start(bands, out, "--epochs", "2")
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert "training lenet5 on fashion-mnist for 2 epochs on 2 processes (8 images each per step)" in stderr
    assert stderr.count("epoch 1/2") == 1 and stderr.count("epoch 2/2") == 1  # rank 0's progress only
    assert stdout.count("test accuracy") == 1
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    assert load_checkpoint(out / "last.ckpt")["epoch"] == 2
    # The sharded, reduced evaluation is the one a single process computes from the same weights.
    model, config = load_run(out / "last.ckpt")
    from convstack.cli.common import load_dataset, transform_for

    test = load_dataset("fashion-mnist", "test", str(bands), quiet=True)
    transform = transform_for(config["normalize"]["mean"], config["normalize"]["std"])
    expected = evaluate(model, DataLoader(ImageArrayDataset(test.images, test.labels, transform=transform),
                                          batch_size=256), num_classes=10)
    results = json.loads((out / "results.json").read_text())
    assert results["test_accuracy"] == pytest.approx(expected["acc"])
    assert results["test_loss"] == pytest.approx(expected["loss"], rel=1e-5)


def test_a_killed_rank_stops_the_run_at_once_and_resume_ends_where_an_uninterrupted_run_ends(bands, tmp_path):
    reference = start(bands, tmp_path / "reference", "--epochs", "4", "--no-progress")
    out = tmp_path / "run"
    process = start(bands, out, "--epochs", "4", "--no-progress")
    wait_for(out / "last.ckpt", process)
    victim = rank_pid(out, 1)
    assert victim is not None and process.poll() is None
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    assert time.monotonic() - killed < 10, "the surviving rank did not stop within seconds"
    assert process.returncode == 1
    assert "the run on 2 processes failed: mpiexec exited with status" in stderr
    epoch = load_checkpoint(out / "last.ckpt")["epoch"]  # checksum verified: intact
    assert 1 <= epoch < 4
    assert f"the last checkpoint, {out / 'last.ckpt'} (epoch {epoch} of 4), is intact: add --resume" in stderr

    resumed = start(bands, out, "--epochs", "4", "--no-progress", "--resume")
    _, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    _, stderr = reference.communicate(timeout=300)
    assert reference.returncode == 0, stderr
    finished, expected = load_checkpoint(out / "last.ckpt"), load_checkpoint(tmp_path / "reference" / "last.ckpt")
    assert finished["epoch"] == expected["epoch"] == 4
    for name, value in expected["model"].items():
        np.testing.assert_array_equal(finished["model"][name], value, err_msg=name)


def test_a_hung_rank_makes_the_other_stop_at_the_deadline(bands, tmp_path):
    out = tmp_path / "run"
    process = start(bands, out, "--epochs", "50", "--no-progress", "--timeout", "2")
    wait_for(out / "last.ckpt", process)
    victim = rank_pid(out, 1)
    assert victim is not None
    try:
        os.kill(victim, signal.SIGSTOP)  # alive, holding its connections, answering nothing
        stopped = time.monotonic()
        _, stderr = process.communicate(timeout=60)
        assert time.monotonic() - stopped < 12
    finally:
        if rank_pid(out, 1) == victim:
            os.kill(victim, signal.SIGKILL)
    assert process.returncode == 1
    assert "DistributedError: rank 0 of 2: all_reduce of" in stderr
    assert "did not complete within 2 s: another rank has died, hung or cannot be reached" in stderr
    assert "aborting all 2 ranks" in stderr
    assert "is intact: add --resume to continue from it" in stderr


def test_a_mistake_stops_every_rank_with_its_one_line_error(tmp_path):
    process = start(tmp_path / "missing", tmp_path / "run", "--epochs", "1")
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    # Every rank finds the mistake; the first to abort stops the others, maybe before they print.
    assert re.search(rf"convstack train: error on rank [01]: --data-root {re.escape(str(tmp_path / 'missing'))}: "
                     "no such folder", stderr), stderr
    assert f"no checkpoint was written in {tmp_path / 'run'} yet" in stderr
