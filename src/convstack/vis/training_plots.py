"""How training went: loss and accuracy curves, the confusion matrix, misclassified examples."""

from __future__ import annotations

import numpy

from convstack.vis import _plot
from convstack.vis._plot import to_numpy

_CURVE_KEYS = ("loss", "val_loss", "acc", "val_acc")


def training_curves(history, path=None) -> dict:
    """Loss and accuracy per epoch, training against validation.

    Args:
        history: the trainer's history, a list of dicts with ``epoch``, ``loss``, ``acc``
            and (when a validation set was given) ``val_loss``, ``val_acc``.
        path: PNG file to write (or a binary file object); ``None`` draws nothing.

    Returns:
        ``{'epoch', 'loss', 'val_loss', 'acc', 'val_acc'}`` as float arrays, NaN where an
        epoch lacks the value.

    Examples:
        >>> curves = training_curves([{"epoch": 1, "loss": 1.0, "acc": 0.5}, {"epoch": 2, "loss": 0.5, "acc": 0.8}])
        >>> curves["loss"].tolist(), bool(numpy.isnan(curves["val_loss"]).all())
        ([1.0, 0.5], True)
    """
    rows = list(history)
    if not rows or not all(isinstance(row, dict) for row in rows):
        raise ValueError(
            "training_curves: invalid value for argument `history`: expected a non-empty list of dicts "
            f"(epoch, loss, acc, val_loss, val_acc), received {history!r:.80}"
        )
    curves = {
        "epoch": numpy.array([float(row.get("epoch", index + 1)) for index, row in enumerate(rows)]),
        **{key: numpy.array([float(row.get(key, numpy.nan)) for row in rows]) for key in _CURVE_KEYS},
    }
    if path is not None:
        fig = _plot.figure(9.0, 3.4)
        for index, (quantity, label) in enumerate((("loss", "loss"), ("acc", "accuracy"))):
            axis = fig.add_subplot(1, 2, index + 1)
            axis.plot(curves["epoch"], curves[quantity], "o-", label="training", color="#4c72b0")
            if not numpy.isnan(curves["val_" + quantity]).all():
                axis.plot(curves["epoch"], curves["val_" + quantity], "s-", label="validation", color="#dd8452")
            axis.set_xlabel("epoch")
            axis.set_ylabel(label)
            axis.grid(alpha=0.3)
            axis.legend(fontsize=8)
        _plot.save(fig, path)
    return curves


def confusion_matrix_plot(confusion, class_names=None, path=None, normalize: bool = True) -> numpy.ndarray:
    """The confusion matrix (rows: true class, columns: predicted) as a heat map with counts.

    Args:
        confusion: (K, K) counts, ``confusion[true, predicted]`` (as ``convstack.train.evaluate`` gives).
        class_names: K labels (default 0..K-1).
        path: PNG file to write; ``None`` draws nothing.
        normalize: colour by each true class's fraction (its recall) rather than raw counts.

    Returns:
        The matrix drawn: row-normalised fractions (rows with no samples are 0) or the counts.
    """
    counts = numpy.asarray(to_numpy(confusion), dtype=numpy.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"confusion_matrix_plot: expected a square (K, K) matrix, received shape {counts.shape}")
    names = _class_names(class_names, counts.shape[0], "confusion_matrix_plot")
    totals = counts.sum(axis=1, keepdims=True)
    shown = counts / numpy.where(totals > 0, totals, 1.0) if normalize else counts
    if path is not None:
        size = max(3.5, 0.45 * len(names) + 2.0)
        fig = _plot.figure(size + 1.0, size)
        axis = fig.add_subplot(1, 1, 1)
        image = axis.imshow(shown, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None)
        fig.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
        ticks = numpy.arange(len(names))
        axis.set_xticks(ticks)
        axis.set_xticklabels(names, rotation=45, ha="right", fontsize=7)
        axis.set_yticks(ticks)
        axis.set_yticklabels(names, fontsize=7)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        if len(names) <= 20:
            threshold = shown.max() / 2 if shown.size else 0
            for (row, column), count in numpy.ndenumerate(counts):
                color = "white" if shown[row, column] > threshold else "black"
                axis.text(column, row, f"{int(count)}", ha="center", va="center", fontsize=6, color=color)
        _plot.save(fig, path)
    return shown


def misclassified_grid(images, predictions, targets, class_names=None, path=None, max_images: int = 25):
    """A grid of misclassified images, each labelled with its true and predicted class.

    Args:
        images: (N, H, W), (N, C, H, W) or (N, H, W, C) with 1 or 3 channels; uint8 shown
            as is, floats min-max scaled per image.
        predictions: (N,) predicted classes. targets: (N,) true classes.
        class_names: label per class index (default the index).
        path: PNG file to write; ``None`` draws nothing. With no mistakes, the picture says so.
        max_images: show at most this many.

    Returns:
        The indices of the misclassified samples shown (in order), an int array.
    """
    images = to_numpy(images)
    predicted = numpy.asarray(to_numpy(predictions)).astype(numpy.int64).ravel()
    true = numpy.asarray(to_numpy(targets)).astype(numpy.int64).ravel()
    if not (len(images) == len(predicted) == len(true)):
        raise ValueError(
            f"misclassified_grid: images, predictions and targets must have one entry per sample; received "
            f"{len(images)}, {len(predicted)} and {len(true)}"
        )
    if not isinstance(max_images, int) or max_images < 1:
        raise ValueError(
            f"misclassified_grid: invalid value for argument `max_images`: expected a positive integer, "
            f"received {max_images!r}"
        )
    wrong = numpy.nonzero(predicted != true)[0][:max_images]
    if path is not None:
        count = int(max(predicted.max(initial=0), true.max(initial=0))) + 1
        names = _class_names(class_names, count, "misclassified_grid") if class_names is None else list(class_names)
        rows, columns = _plot.grid_shape(max(len(wrong), 1))
        fig = _plot.figure(1.5 * columns + 0.3, 1.6 * rows + 0.3)
        if len(wrong) == 0:
            axis = fig.add_subplot(1, 1, 1)
            axis.text(0.5, 0.5, "no misclassified images", ha="center", va="center")
            axis.set_axis_off()
        for slot, index in enumerate(wrong):
            title = f"true {_name(names, true[index])}\npred {_name(names, predicted[index])}"
            _plot.show(fig.add_subplot(rows, columns, slot + 1), _plot.display_image(images[index]), title)
        _plot.save(fig, path)
    return wrong


def _class_names(class_names, count: int, op: str) -> list:
    if class_names is None:
        return [str(i) for i in range(count)]
    names = [str(name) for name in class_names]
    if len(names) != count:
        raise ValueError(f"{op}: expected {count} class names, received {len(names)}")
    return names


def _name(names, index) -> str:
    return names[index] if 0 <= index < len(names) else str(index)
