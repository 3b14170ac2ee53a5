"""The `convstack` command: every subcommand end to end on tiny data, and one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
from tests.helpers import write_band_dataset

from convstack.cli import main


@pytest.fixture
def tiny_fashion(tmp_path):
    """A tiny Fashion-MNIST-shaped dataset whose class is the row of a bright horizontal band."""
    root = tmp_path / "data"
    root.mkdir()
    return write_band_dataset(root, (600, 200))


def test_train_evaluate_predict_round_trip(tiny_fashion, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--data-root",
            str(tiny_fashion),
            "--epochs",
            "4",
            "--batch-size",
            "32",
            "--out",
            str(out),
            "--no-progress",
            "--lr",
            "0.05",
            "--seed",
            "1",
        ]
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["test_accuracy"] > 0.8  # ten band positions are easy to tell apart
    assert (out / "last.ckpt").exists() and (out / "history.csv").exists()
    capsys.readouterr()

    assert main(["evaluate", str(out / "last.ckpt"), "--data-root", str(tiny_fashion)]) == 0
    text = capsys.readouterr().out
    assert "accuracy" in text and "per-class accuracy" in text and "confusion matrix" in text

    pil = pytest.importorskip("PIL.Image")
    image = tmp_path / "bright.png"
    band = np.zeros((28, 28), np.uint8)
    band[20:23, :] = 230  # class 9's band
    pil.fromarray(band).save(image)
    assert main(["predict", str(out / "best.ckpt"), str(image), "--top-k", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{image}: Ankle boot") and line.count("%") == 2


def test_resume_continues_a_run(tiny_fashion, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--data-root", str(tiny_fashion), "--out", str(out), "--no-progress", "--limit-train", "128"]
    assert main(args + ["--epochs", "1"]) == 0
    assert main(args + ["--epochs", "2", "--resume"]) == 0
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]


def test_fine_tune_from_a_checkpoint_with_frozen_features(tiny_fashion, tmp_path, capsys):
    from convstack.io import load_checkpoint

    first, second = tmp_path / "first", tmp_path / "second"
    common = ["train", "--data-root", str(tiny_fashion), "--no-progress", "--limit-train", "128", "--epochs", "1"]
    assert main(common + ["--out", str(first)]) == 0
    args = [
        "--out",
        str(second),
        "--init-from",
        str(first / "last.ckpt"),
        "--freeze",
        "features.*",
        "--num-classes",
        "12",
    ]
    assert main(common + args) == 0
    assert "fine-tuning:" in capsys.readouterr().err
    before, after = load_checkpoint(first / "last.ckpt")["model"], load_checkpoint(second / "last.ckpt")["model"]
    for name in before:
        if name.startswith("features."):
            np.testing.assert_array_equal(before[name], after[name], err_msg=name)
    assert after["classifier.5.weight"].shape == (12, 84)
    assert not np.array_equal(before["classifier.1.weight"], after["classifier.1.weight"])


def test_summary_prints_the_lecture_example(capsys):
    assert main(["summary", "spec:conv10k5p2", "--input-size", "3x32x32"]) == 0
    text = capsys.readouterr().out
    assert "10x32x32" in text and "760" in text


def test_summary_of_lenet5(capsys):
    assert main(["summary", "lenet5"]) == 0
    assert "Total params: 61,706" in capsys.readouterr().out


def test_lr_find_suggests_a_rate(tiny_fashion, tmp_path, capsys):
    out = tmp_path / "lr"
    assert main(["lr-find", "--data-root", str(tiny_fashion), "--steps", "30", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "suggested learning rate" in text and (out / "lr_find.csv").exists()
    rate = float(text.split("suggested learning rate: ")[1].split()[0])
    assert 1e-5 <= rate <= 3.0


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--epochs", "0"], "--epochs: expected a positive integer, received '0'"),
        (["train", "--lr", "-1"], "--lr: expected a positive number, received '-1'"),
        (["train", "--model", "nope"], "--model: expected one of"),
        (["train", "--dataset", "imagenet"], "--dataset: expected one of"),
        (["summary", "lenet5", "--input-size", "28"], None),
        (["summary", "lenet5", "--input-size", "ax2"], "expected a shape like 1x28x28"),
        (["evaluate", "/nonexistent.ckpt"], "nonexistent.ckpt: cannot read"),
        (["train", "--data-root", "/does/not/exist"], "--data-root /does/not/exist: no such folder"),
    ],
)
def test_user_mistakes_give_one_line_and_exit_code_2(argv, message, capsys):
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    if message is None:  # a valid-looking shape the model cannot take: still a one-line error
        assert code in (0, 2)
        return
    assert code == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_data_root_without_the_dataset_is_refused(tmp_path, capsys):
    assert main(["train", "--data-root", str(tmp_path), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert f"--data-root {tmp_path}: the fashion-mnist train files are not there" in err


def test_python_dash_m_and_help():
    result = subprocess.run([sys.executable, "-m", "convstack", "train", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--epochs" in result.stdout


def test_every_command_is_registered():
    from convstack.cli import build_parser

    text = build_parser().format_help()
    for command in ("train", "evaluate", "predict", "summary", "lr-find", "visualize", "filter", "export", "bench"):
        assert command in text, command
