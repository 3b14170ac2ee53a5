"""`convstack train --augment --mixup --cutmix --label-smoothing --workers`, and the recipes behind --augment."""

import json

import numpy as np
import pytest
from tests.helpers import write_band_dataset

from convstack.cli import augment_options, main
from convstack.data import (
    Normalize,
    RandomAffine,
    RandomCrop,
    RandomErasing,
    RandomHorizontalFlip,
    RandomResizedCrop,
    TrivialAugmentWide,
    recipes,
)


@pytest.fixture
def tiny_digits(tmp_path):
    """A tiny MNIST-shaped dataset: the class is the column of a bright vertical bar."""
    root = tmp_path / "data"
    root.mkdir()
    return write_band_dataset(root, (160, 60), columns=True)


def test_train_with_augmentation_mixing_smoothing_and_workers(tiny_digits, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--dataset", "mnist", "--data-root", str(tiny_digits), "--epochs", "1", "--batch-size", "32",
            "--out", str(out), "--no-progress", "--augment", "strong", "--mixup", "0.2", "--cutmix", "1.0",
            "--label-smoothing", "0.1", "--workers", "1"]
    assert main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["augmentation"] == {"augment": "strong", "mixup": 0.2, "cutmix": 1.0, "label_smoothing": 0.1,
                                      "workers": 1}
    history = json.loads((out / "history.json").read_text())
    assert np.isfinite(history[0]["loss"]) and 0 <= history[0]["acc"] <= 1
    assert "test accuracy" in capsys.readouterr().out


@pytest.fixture
def tiny_cifar(tmp_path):
    """CIFAR-10's binary files with a few random records each."""
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        labels = rng.integers(0, 10, (8, 1), dtype=np.uint8)
        images = rng.integers(0, 256, (8, 3072), dtype=np.uint8)
        (folder / name).write_bytes(np.concatenate([labels, images], axis=1).tobytes())
    return folder.parent


@pytest.mark.parametrize("dataset, level", [("mnist", "none"), ("cifar10", "standard")])
def test_augment_left_out_takes_the_datasets_level_and_resume_keeps_it(dataset, level, tiny_digits, tiny_cifar,
                                                                        tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CONVSTACK_DATA", raising=False)
    root = tiny_digits if dataset == "mnist" else tiny_cifar
    out = tmp_path / "run"
    argv = ["train", "--dataset", dataset, "--data-root", str(root), "--model", "spec:conv4-fc10", "--epochs", "1",
            "--batch-size", "16", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert json.loads((out / "config.json").read_text())["augmentation"]["augment"] == level
    other = "strong" if level == "none" else "none"
    capsys.readouterr()
    assert main([*argv[:-1], "--resume", "--epochs", "2", "--augment", other, "--no-progress"]) == 2
    assert f"--augment {other} differs from the run's {level}" in capsys.readouterr().err
    assert main([*argv[:-1], "--resume", "--epochs", "2", "--no-progress"]) == 0
    assert json.loads((out / "config.json").read_text())["augmentation"]["augment"] == level


def test_a_run_stored_before_augmentation_existed_resumes_without_it():
    assert augment_options.stored_options(None)["augment"] == "none"
    assert augment_options.stored_options({"augment": "strong"})["augment"] == "strong"


def test_default_levels_per_kind_of_data():
    assert [recipes.default_level(name) for name in ("cifar10", "folder:photos", "fashion-mnist", "mnist")] == [
        "standard", "standard", "none", "none"]


@pytest.mark.parametrize("argv, message", [
    (["--mixup", "-1"], "--mixup: expected a non-negative number, received '-1'"),
    (["--label-smoothing", "1"], "--label-smoothing: expected a number in [0, 1), received '1'"),
    (["--workers", "x"], "--workers: expected a non-negative integer, received 'x'"),
    (["--augment", "heavy"], "argument --augment: invalid choice: 'heavy'"),
])
def test_bad_options_are_one_line_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def _steps(level, dataset, side=28, channels=1):
    transform = recipes.train_transform(level, recipes.dataset_kind(dataset), side, (0.5,) * channels,
                                        (0.25,) * channels)
    return [type(step) for step in transform.transforms], transform


def test_standard_recipes_per_kind_of_data():
    kinds, transform = _steps("standard", "cifar10", 32, 3)
    assert kinds[1:4] == [RandomCrop, RandomHorizontalFlip, Normalize] and transform.transforms[1].padding == (4,) * 4
    kinds, transform = _steps("standard", "fashion-mnist")
    assert RandomHorizontalFlip in kinds and transform.transforms[1].padding == (4,) * 4
    kinds, transform = _steps("standard", "mnist")
    assert RandomHorizontalFlip not in kinds and transform.transforms[1].padding == (2,) * 4  # digits: no mirror
    assert _steps("standard", "folder:photos", 96, 3)[0][1] is RandomResizedCrop
    assert _steps("none", "cifar10", 32, 3)[0][1:] == [Normalize]


def test_strong_recipes_add_a_policy_and_erasing_after_normalize():
    kinds, _ = _steps("strong", "fashion-mnist")
    assert TrivialAugmentWide in kinds and kinds[-1] is RandomErasing and kinds[-2] is Normalize
    kinds, _ = _steps("strong", "mnist")
    assert RandomAffine in kinds and TrivialAugmentWide not in kinds  # no 135-degree turns of a 6 into a 9


def test_recipes_run_on_uint8_batches(rng):
    images = rng.integers(0, 256, (8, 3, 32, 32), dtype=np.uint8)
    for level in recipes.LEVELS:
        out = recipes.train_transform(level, "natural", 32, (0.5,) * 3, (0.25,) * 3).batch(images)
        assert out.shape == (8, 3, 32, 32) and out.dtype == np.float32
    with pytest.raises(ValueError, match="train_transform: invalid value for argument `level`"):
        recipes.train_transform("extreme", "natural", 32, 0.5, 0.25)


def test_recipes_docstring_example_runs():
    import doctest

    assert doctest.testmod(recipes, optionflags=doctest.ELLIPSIS).failed == 0
