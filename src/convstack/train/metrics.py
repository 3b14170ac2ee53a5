"""Classification metrics on arrays: top-k accuracy, confusion matrix, per-class accuracy."""

from __future__ import annotations

import numpy


def topk_correct(logits: numpy.ndarray, targets: numpy.ndarray, k: int) -> int:
    """How many rows of ``logits`` (N, C) have their target among the k highest scores.

    ``targets`` are class indices (N,), or probabilities (N, C) (MixUp, CutMix), whose most
    probable class counts as the target.
    """
    if targets.ndim == 2:
        targets = targets.argmax(axis=1)
    k = min(k, logits.shape[1])
    if k == 1:
        return int((logits.argmax(axis=1) == targets).sum())
    top = numpy.argpartition(-logits, k - 1, axis=1)[:, :k]
    return int((top == targets[:, None]).any(axis=1).sum())


def confusion_matrix(predictions, targets, num_classes: int) -> numpy.ndarray:
    """(num_classes, num_classes) counts; row = true class, column = predicted class."""
    flat = numpy.asarray(targets, dtype=numpy.int64) * num_classes + numpy.asarray(predictions, dtype=numpy.int64)
    return numpy.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(confusion: numpy.ndarray) -> numpy.ndarray:
    totals = confusion.sum(axis=1)
    with numpy.errstate(invalid="ignore", divide="ignore"):
        return numpy.where(totals > 0, numpy.diag(confusion) / numpy.maximum(totals, 1), numpy.nan)


def format_confusion(confusion: numpy.ndarray, class_names=None) -> str:
    """The confusion matrix as an aligned text table (rows: true class, columns: predicted)."""
    n = confusion.shape[0]
    names = [str(c) for c in (class_names or range(n))]
    width = max(6, max(len(str(int(v))) for v in confusion.ravel()) + 1)
    label_width = max(len(s) for s in names) + 1
    lines = [" " * label_width + "".join(f"{i:>{width}}" for i in range(n)) + "   <- predicted"]
    for i, row in enumerate(confusion):
        lines.append(f"{names[i]:<{label_width}}" + "".join(f"{int(v):>{width}}" for v in row))
    return "\n".join(lines)
