"""The command line under hostile use: one line and exit code 2, never a traceback, a clobbered input or a stray file.

Covers issue 15: divergence (`--on-nonfinite`), resuming with other options, commands
writing over their own input, OS errors (read-only folder, full disk) naming the file,
and the temporaries of killed writes.
"""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from tests.helpers import write_band_dataset

from convstack import atomic
from convstack.cli import main
from convstack.io import load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """A Fashion-MNIST-shaped dataset: the class is the row of a bright band (learnable in one epoch)."""
    return write_band_dataset(tmp_path_factory.mktemp("data"), (160, 40))


@pytest.fixture(autouse=True)
def _no_report(monkeypatch):
    """The HTML report (matplotlib figures) is not what these tests look at: skip it, for speed."""
    monkeypatch.setattr("convstack.cli.train_command.write_report", lambda out, *args, **kwargs: out / "report.html")


def train(data, out, *options):
    return main(["train", "--data-root", str(data), "--out", str(out), "--no-progress", *options])


def one_line_error(argv, capsys) -> str:
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if not line.startswith(("fashion-mnist", "training "))]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


# ----------------------------------------------------------------------------- divergence
def test_divergence_stops_with_one_line_naming_the_options(tiny_data, tmp_path, capsys):
    err = one_line_error(["train", "--data-root", str(tiny_data), "--out", str(tmp_path / "r"), "--no-progress",
                          "--lr", "1e6", "--epochs", "1"], capsys)
    assert "non-finite loss (nan) at epoch 1, batch" in err
    assert "lower --lr (the rate was 1e+06) or pass --on-nonfinite skip" in err
    assert "on_nonfinite=" not in err  # the API's spelling is not offered on the command line


def test_on_nonfinite_skip_refuses_an_epoch_where_every_step_was_skipped(tiny_data, tmp_path, capsys):
    err = one_line_error(["train", "--data-root", str(tiny_data), "--out", str(tmp_path / "r"), "--no-progress",
                          "--lr", "1e6", "--epochs", "2", "--on-nonfinite", "skip"], capsys)
    assert "had a non-finite loss: the weights have diverged; lower --lr" in err


def test_on_nonfinite_skip_skips_and_says_so(tiny_data, tmp_path, capsys, monkeypatch):
    """A loss that is NaN on one batch only: skipped, counted, and the run finishes."""
    from convstack.nn import functional

    real = functional.cross_entropy
    calls = {"n": 0}

    def sometimes_nan(outputs, targets, *args, **kwargs):
        calls["n"] += 1
        loss = real(outputs, targets, *args, **kwargs)
        return loss * float("nan") if calls["n"] == 2 else loss

    monkeypatch.setattr(functional, "cross_entropy", sometimes_nan)
    assert train(tiny_data, tmp_path / "r", "--epochs", "1", "--on-nonfinite", "skip") == 0
    assert "skipped 1 steps with a non-finite loss" in capsys.readouterr().err


# ----------------------------------------------------------------------------- resume
def test_resume_takes_the_runs_options_when_left_out(tiny_data, tmp_path):
    out = tmp_path / "adam"
    assert train(tiny_data, out, "--epochs", "1", "--optimizer", "adam", "--lr", "0.002", "--scheduler", "none",
                 "--limit-train", "96") == 0
    assert train(tiny_data, out, "--resume", "--epochs", "2") == 0  # no --optimizer: adam, as the run
    config = load_checkpoint(out / "last.ckpt")["config"]
    assert config["hyperparameters"]["optimizer"] == "adam" and config["hyperparameters"]["lr"] == 0.002
    assert config["hyperparameters"]["limit_train"] == 96
    assert [row["epoch"] for row in json.loads((out / "history.json").read_text())] == [1, 2]


def test_resume_with_other_options_refuses_naming_each(tiny_data, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(tiny_data, out, "--epochs", "1", "--optimizer", "adam", "--lr", "0.002") == 0
    err = one_line_error(["train", "--data-root", str(tiny_data), "--out", str(out), "--resume", "--optimizer", "sgd",
                          "--seed", "3", "--model", "spec:conv4-fc10"], capsys)
    assert "--optimizer sgd differs from the run's adam" in err
    assert "--seed 3 differs from the run's 0" in err
    assert "--model spec:conv4-fc10 differs from the run's lenet5" in err
    assert f"--init-from {out / 'last.ckpt'}" in err


def test_resume_with_more_epochs_continues_bit_for_bit_as_one_run(tiny_data, tmp_path):
    """Scheduler none: 1 epoch, then --resume --epochs 2, ends where a 2-epoch run ends."""
    options = ("--scheduler", "none", "--limit-train", "64")
    assert train(tiny_data, tmp_path / "once", "--epochs", "2", *options) == 0
    assert train(tiny_data, tmp_path / "twice", "--epochs", "1", *options) == 0
    assert train(tiny_data, tmp_path / "twice", "--epochs", "2", "--resume") == 0
    once, twice = (load_checkpoint(tmp_path / name / "last.ckpt") for name in ("once", "twice"))
    for name, value in once["model"].items():
        np.testing.assert_array_equal(twice["model"][name], value, err_msg=name)


def test_resume_with_more_epochs_replans_the_cosine_schedule(tiny_data, tmp_path):
    out = tmp_path / "cosine"
    assert train(tiny_data, out, "--epochs", "1", "--lr", "0.04", "--limit-train", "32") == 0
    assert train(tiny_data, out, "--epochs", "3", "--resume") == 0
    rates = [row["lr"] for row in json.loads((out / "history.json").read_text())]
    # epochs 2 and 3 at the rates of a run planned for 3 epochs: 0.04 (1 + cos(k pi / 3)) / 2
    np.testing.assert_allclose(rates, [0.04, 0.03, 0.01], rtol=1e-12)


def test_resume_of_a_one_cycle_run_refuses_other_epochs(tiny_data, tmp_path, capsys):
    out = tmp_path / "onecycle"
    assert train(tiny_data, out, "--epochs", "1", "--scheduler", "onecycle", "--limit-train", "32") == 0
    err = one_line_error(["train", "--data-root", str(tiny_data), "--out", str(out), "--resume", "--epochs", "2"],
                         capsys)
    assert "--epochs 2 differs from the run's 1 (its one-cycle schedule was planned for 1 epoch)" in err


# ----------------------------------------------------------------------------- own input
@pytest.fixture(scope="module")
def run_dir(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("convstack.cli.train_command.write_report", lambda out, *args, **kwargs: out / "report.html")
        assert train(tiny_data, out, "--epochs", "1", "--limit-train", "32") == 0
    return out


def test_export_never_overwrites_its_input(run_dir, tmp_path, capsys):
    model = tmp_path / "model.safetensors"
    model.write_bytes((run_dir / "best.ckpt").read_bytes())
    before = model.read_bytes()
    err = one_line_error(["export", str(model), "--format", "safetensors"], capsys)
    assert err == (f"convstack export: error: the default --out {model} is the input CHECKPOINT itself: writing it "
                   "would destroy the input; choose another --out")
    link = tmp_path / "link.ckpt"
    link.symlink_to(model)
    assert "writing it would destroy the input" in one_line_error(
        ["export", str(model), "--format", "safetensors", "--out", str(link)], capsys)
    assert model.read_bytes() == before


def test_filter_and_visualize_never_overwrite_their_input(run_dir, tmp_path, capsys):
    from PIL import Image

    image = tmp_path / "boot.png"
    Image.fromarray(np.full((28, 28), 100, np.uint8)).save(image)
    before = image.read_bytes()
    assert "is the input IMAGE" in one_line_error(["filter", str(image), "--kernel", "box:3", "--out",
                                                   str(tmp_path / "." / "boot.png")], capsys)
    assert image.read_bytes() == before
    checkpoint = tmp_path / "filters.png"  # a checkpoint that happens to bear the output's name
    checkpoint.write_bytes((run_dir / "best.ckpt").read_bytes())
    err = one_line_error(["visualize", str(checkpoint), "--what", "filters", "--out", str(tmp_path)], capsys)
    assert "is the input CHECKPOINT" in err


def test_train_never_overwrites_its_init_from(run_dir, tiny_data, tmp_path, capsys):
    err = one_line_error(["train", "--data-root", str(tiny_data), "--out", str(run_dir), "--init-from",
                          str(run_dir / "best.ckpt"), "--epochs", "1"], capsys)
    assert "is the input INIT_FROM" in err


# ----------------------------------------------------------------------------- OS errors
def test_a_full_disk_names_the_file_and_leaves_the_old_one(tmp_path, monkeypatch):
    """ENOSPC during the write (simulated: os.fsync fails as a full disk makes it): the message names the file."""
    path = tmp_path / "c.ckpt"
    save_checkpoint(path, {"epoch": 1})
    original = path.read_bytes()

    def full(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=rf"No space left on device: '{path}'"):
        save_checkpoint(path, {"epoch": 2})
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.ckpt"]


def test_cli_on_a_full_disk_names_the_file(run_dir, tmp_path, capsys, monkeypatch):
    real_write = atomic.atomic_write

    def full_disk(path, write):
        def failing(stream):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        return real_write(path, failing)

    monkeypatch.setattr(atomic, "atomic_write", full_disk)
    monkeypatch.setattr("convstack.io.safetensors_file.atomic_write", full_disk)
    out = tmp_path / "w.safetensors"
    err = one_line_error(["export", str(run_dir / "best.ckpt"), "--format", "safetensors", "--out", str(out)], capsys)
    assert err == f"convstack export: error: [Errno 28] No space left on device: '{out}'"
    assert not list(tmp_path.iterdir())


def _mount_tmpfs(folder, options):
    """Mount a tmpfs at ``folder`` (root only); False where this machine does not allow it."""
    if os.geteuid() != 0:
        return False
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    return result.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    folder = tmp_path / "small"
    folder.mkdir()
    if not _mount_tmpfs(folder, "size=64k"):
        pytest.skip("mounting a tmpfs needs root and CAP_SYS_ADMIN (the patched full-disk tests above still run)")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


@pytest.fixture
def read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
    elif _mount_tmpfs(folder, "ro,size=64k"):
        yield folder
        subprocess.run(["umount", str(folder)], check=False)
    else:
        pytest.skip("root ignores file modes and this machine does not allow mounting a read-only tmpfs")


@pytest.mark.parametrize("fmt", ["safetensors", "pt", "onnx"])
def test_export_to_a_real_full_disk(run_dir, small_disk, fmt, capsys):
    out = small_disk / f"model.{fmt}"
    err = one_line_error(["export", str(run_dir / "best.ckpt"), "--format", fmt, "--out", str(out)], capsys)
    assert err == f"convstack export: error: [Errno 28] No space left on device: '{out}'"
    assert not list(small_disk.iterdir())  # no partial file, no temporary


def test_train_on_a_real_full_disk(tiny_data, small_disk, capsys):
    out = small_disk / "run"
    err = one_line_error(["train", "--data-root", str(tiny_data), "--out", str(out), "--no-progress", "--epochs",
                          "1", "--limit-train", "32"], capsys)
    assert "No space left on device: '" in err and str(out) in err
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("fmt", ["safetensors", "pt", "onnx"])
def test_export_into_a_read_only_folder(run_dir, read_only_folder, fmt, capsys):
    out = read_only_folder / f"model.{fmt}"
    err = one_line_error(["export", str(run_dir / "best.ckpt"), "--format", fmt, "--out", str(out)], capsys)
    assert err.startswith("convstack export: error: [Errno") and err.endswith(f"'{out}'")
    assert ("Read-only file system" in err) or ("Permission denied" in err)


# ----------------------------------------------------------------------------- killed writes
KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from convstack.atomic import atomic_write

    def write_then_die(stream):
        stream.write(b"x" * 100_000)
        stream.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    atomic_write(sys.argv[1], write_then_die)
""")


def kill_a_writer(path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path)], env=env)
    assert result.returncode == -signal.SIGKILL
    leftovers = [p for p in path.parent.iterdir() if p.name.startswith(f".{path.name}.")]
    assert len(leftovers) == 1 and leftovers[0].stat().st_size == 100_000
    return leftovers[0]


def test_the_next_write_removes_a_killed_writers_temporary(tmp_path):
    path = tmp_path / "last.ckpt"
    kill_a_writer(path)
    save_checkpoint(path, {"epoch": 3})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_resume_removes_temporaries_of_killed_writes(tiny_data, run_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    for name in os.listdir(run_dir):
        (out / name).write_bytes((run_dir / name).read_bytes())
    leftover = kill_a_writer(out / "best.ckpt")  # a temporary of a file that the resumed run may not rewrite
    assert train(tiny_data, out, "--resume") == 0
    assert not leftover.exists()


def test_temporaries_of_live_writers_and_other_hosts_are_kept(tmp_path):
    live = tmp_path / atomic.temporary_name("a.ckpt")  # this process: alive
    other_host = tmp_path / ".a.ckpt.elsewhere-1-0123abcd.tmp"
    unrelated = tmp_path / ".notes.tmp"
    for path in (live, other_host, unrelated):
        path.write_bytes(b"x")
    save_checkpoint(tmp_path / "a.ckpt", {"epoch": 1})
    assert live.exists() and other_host.exists() and unrelated.exists()
