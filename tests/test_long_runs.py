"""Opt-in long training runs on the full Fashion-MNIST (`pytest -m slow`).

Fast versions of the same paths run by default (tests/cli, tests/models/test_learning.py).
These reproduce the figures the README and the closing notes quote.
"""

import json
from pathlib import Path

import pytest

from convstack.cli import main

FULL = Path("/usr/share/datasets/fashion-mnist")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (FULL / "train-images-idx3-ubyte.gz").exists(), reason="needs the full Fashion-MNIST"),
]


def train(tmp_path, *args):
    out = tmp_path / "run"
    assert main(["train", "--data-root", str(FULL), "--out", str(out), "--no-progress", *args]) == 0
    return json.loads((out / "results.json").read_text())


def test_lenet5_reaches_90_percent_in_10_epochs(tmp_path):
    results = train(tmp_path, "--model", "lenet5", "--epochs", "10", "--seed", "0")
    assert results["test_accuracy"] >= 0.90


def test_resnet20_reaches_93_percent(tmp_path):
    args = ["--model", "resnet20", "--epochs", "30", "--batch-size", "128", "--lr", "0.1", "--seed", "0"]
    results = train(tmp_path, *args)
    assert results["test_accuracy"] >= 0.93


def test_resnet20_with_standard_augmentation_reaches_94_5_percent(tmp_path):
    # Pad-crop (4 px) and horizontal flip on every training image, made in the prefetch thread (workers do
    # not pay for this vectorised recipe: docs/data_loading.md). The command docs/augmentation.md quotes
    # (94.79% there); about 75 minutes on the quiet 2-core machine with the compiled kernels.
    args = ["--model", "resnet20", "--epochs", "40", "--batch-size", "128", "--lr", "0.1", "--seed", "0",
            "--augment", "standard"]
    results = train(tmp_path, *args)
    assert results["test_accuracy"] >= 0.945
