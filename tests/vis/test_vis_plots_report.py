"""Training curves, confusion matrix, misclassified grid, and the self-contained HTML report."""

import base64
import re
import sys

import numpy as np
import pytest
from tests.vis.patch_task import trained_patch_model

import convstack as cs
from convstack import nn
from convstack.train import confusion_matrix
from convstack.vis import confusion_matrix_plot, misclassified_grid, training_curves, write_report

PNG = b"\x89PNG\r\n\x1a\n"
HISTORY = [  # as Trainer.fit records it
    {"epoch": 1, "loss": 0.9, "acc": 0.6, "val_loss": 0.8, "val_acc": 0.65, "lr": 0.1, "time": 1.5, "images_per_s": 9},
    {"epoch": 2, "loss": 0.5, "acc": 0.8, "val_loss": 0.6, "val_acc": 0.75, "lr": 0.05, "time": 1.4, "images_per_s": 8},
]


def png_size(path):
    pil = pytest.importorskip("PIL.Image")
    with pil.open(path) as image:
        return image.size


def test_training_curves(tmp_path):
    curves = training_curves(HISTORY, tmp_path / "curves.png")
    assert curves["epoch"].tolist() == [1.0, 2.0]
    assert curves["val_acc"].tolist() == [0.65, 0.75] and curves["loss"].tolist() == [0.9, 0.5]
    width, height = png_size(tmp_path / "curves.png")
    assert width > 300 and height > 100
    without_validation = training_curves([{"epoch": 1, "loss": 1.0, "acc": 0.5}], tmp_path / "train_only.png")
    assert np.isnan(without_validation["val_loss"]).all() and (tmp_path / "train_only.png").stat().st_size > 0
    with pytest.raises(ValueError, match=r"training_curves: invalid value for argument `history`"):
        training_curves([], None)


def test_confusion_matrix_plot(tmp_path):
    confusion = confusion_matrix(np.array([0, 1, 1, 2, 2, 2]), np.array([0, 0, 1, 2, 2, 1]), 3)
    shown = confusion_matrix_plot(confusion, ["cat", "dog", "eel"], tmp_path / "confusion.png")
    np.testing.assert_allclose(shown.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.diag(shown), [0.5, 0.5, 1.0])
    assert (tmp_path / "confusion.png").read_bytes()[:8] == PNG
    np.testing.assert_array_equal(confusion_matrix_plot(confusion, normalize=False), confusion)
    with pytest.raises(ValueError, match=r"confusion_matrix_plot: expected 3 class names, received 2"):
        confusion_matrix_plot(confusion, ["cat", "dog"])


def test_misclassified_grid(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (10, 8, 8), dtype=np.uint8)
    predictions = np.array([0, 1, 1, 0, 2, 2, 0, 1, 1, 2])
    targets = np.array([0, 1, 2, 0, 1, 2, 1, 1, 0, 2])
    shown = misclassified_grid(images, predictions, targets, ["a", "b", "c"], tmp_path / "wrong.png")
    assert shown.tolist() == [2, 4, 6, 8]
    assert misclassified_grid(images, predictions, targets, max_images=2).tolist() == [2, 4]
    assert (tmp_path / "wrong.png").read_bytes()[:8] == PNG
    assert misclassified_grid(images[:2], targets[:2], targets[:2], path=tmp_path / "none.png").size == 0
    assert (tmp_path / "none.png").stat().st_size > 0  # says that nothing was wrong
    rgb = np.zeros((3, 3, 8, 8), np.float32)
    assert misclassified_grid(rgb, [0, 1, 0], [1, 1, 1], path=tmp_path / "rgb.png").tolist() == [0, 2]
    with pytest.raises(ValueError, match=r"one entry per sample; received 10, 3 and 10"):
        misclassified_grid(images, predictions[:3], targets)


def test_report_is_self_contained(tmp_path):
    model, images, labels, _ = trained_patch_model()
    with cs.no_grad():
        predictions = model(cs.tensor(images)).data.argmax(axis=1)
    results = {
        "loss": 0.1,
        "acc": float((predictions == labels).mean()),
        "top5": 1.0,
        "confusion": confusion_matrix(predictions, labels, 2),
        "predictions": predictions,
        "targets": labels,
    }
    config = {
        "model": "patch-net",
        "dataset": "patches",
        "classes": ["plain", "patch"],
        "normalize": {"mean": [0.0], "std": [1.0]},
        "hyperparameters": {"epochs": 3, "lr": 0.01, "optimizer": "adam"},
    }
    display = (np.clip(images[:6, 0] * 60 + 100, 0, 255)).astype(np.uint8)
    path = write_report(
        tmp_path / "run",
        model,
        config,
        HISTORY,
        results,
        images[:6],
        display_images=display,
        sample_targets=labels[:6],
        metrics={"train_seconds": 2.9, "seed": 0},
        max_samples=2,
    )
    assert path == tmp_path / "run" / "report.html"
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert '<img src="data:image/png;base64,' in page
    assert "http://" not in page and "https://" not in page and "<link" not in page and "<script" not in page
    assert not re.search(r"""src=["'](?!data:)""", page)  # every image is inlined
    images_inline = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    # curves, confusion, filters, Gabor fits, 2 Grad-CAMs, misclassified
    assert len(images_inline) == 7
    assert all(base64.b64decode(data)[:8] == PNG for data in images_inline)
    for text in ("Training curves", "Confusion matrix", "Grad-CAM", "Total params", "adam", "train_seconds"):
        assert text in page
    assert f"{results['acc']:.2%}" in page


def test_report_for_a_model_without_convolutions(tmp_path):
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    config = {"model": "mlp", "model_options": {"in_channels": 1, "input_size": 4}}
    page = write_report(tmp_path, model, config, HISTORY).read_text()
    assert "The model has no Conv2d layer" in page and "Total params: 51" in page and "Grad-CAM" not in page


def test_report_notes_a_model_without_class_scores(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU())  # dense output, e.g. a segmenter
    images = np.zeros((2, 1, 6, 6), np.float32)
    page = write_report(tmp_path, model, {}, HISTORY, None, images, sample_targets=[0, 1]).read_text()
    assert "need class scores (N, K); the model gives shape (2, 2, 6, 6)" in page
    assert "First-layer filters (0)" in page and "Total params: 20" in page


def test_without_matplotlib_arrays_still_come_and_drawing_says_what_to_install(monkeypatch, tmp_path):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # as if matplotlib were not installed
    assert training_curves(HISTORY)["loss"].tolist() == [0.9, 0.5]
    with pytest.raises(ImportError, match=r"convstack.vis needs matplotlib.*pip install matplotlib"):
        training_curves(HISTORY, tmp_path / "curves.png")
