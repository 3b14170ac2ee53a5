"""``LiveRecorder``: a Trainer callback writing what the live page shows into the run folder.

Everything goes under ``RUN_DIR/live/``, so that the dashboard serves folders alone,
whether training still runs (in this process or another) or ended long ago::

    live/events.jsonl            one JSON object a line, only ever appended:
                                 {"type": "start"}, then {"type": "step"} per step and
                                 {"type": "epoch"} per epoch (the history row and its
                                 pictures), and {"type": "end"}; start, epoch and end
                                 carry a Unix ``timestamp``
    live/summary.txt             the model summary (layers, output shapes, parameters)
    live/epoch-NNN/filters.png   the first convolution's filters after epoch NNN
    live/epoch-NNN/feature_maps.png   the first convolution's output for one fixed sample
    live/epoch-NNN/confusion.json     the validation confusion matrix (rows: true class)
    live/epoch-NNN/misclassified-K.png  validation images the model got wrong

A record names its pictures by their path in the run folder; it is appended only after
they are written (each file atomically), so a reader never meets a half-written picture
or a picture not yet there. The work happens in the training thread: a line of JSON per
step (flushed every 0.2 s), and a few small PNGs per epoch (see docs/dashboard.md for the
measured cost).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy

from convstack.dashboard.png import encode_png
from convstack.models.summary import summary
from convstack.train.callbacks import Callback
from convstack.vis._model import conv_layer_names
from convstack.vis._plot import to_numpy
from convstack.vis.snapshots import (
    display_uint8,
    feature_maps_picture,
    filters_picture,
    first_input,
    misclassified_indices,
)

EVENTS = "live/events.jsonl"
FLUSH_INTERVAL = 0.2  # seconds: step records reach the file (and the page) at most this late


def json_line(record: dict) -> str:
    """``record`` as one line of strict JSON: NumPy scalars as numbers, NaN and infinities as null."""
    try:  # the common case, plain Python numbers (a step record): no walk through the values
        return json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n"
    except (TypeError, ValueError):
        return json.dumps(_plain(record), allow_nan=False, separators=(",", ":")) + "\n"


def _plain(value):
    """``value`` with NumPy arrays and scalars as Python lists and numbers, non-finite floats as None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, numpy.ndarray):
        return _plain(value.tolist())
    if isinstance(value, numpy.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_atomic(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` through a temporary file and a rename: readers see all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)


class LiveRecorder(Callback):
    """Record step and epoch metrics and per-epoch pictures in ``run_dir/live/`` for the dashboard.

    Args:
        run_dir: the run folder (the Trainer's ``out_dir`` as a rule).
        sample: one input (C, H, W) as the model takes it, whose feature maps are drawn
            each epoch; default: the first item of the training loader's dataset.
        images: the validation images for display, in the validation loader's order
            (e.g. raw uint8 (N, H, W)), for the misclassified examples; default: the
            validation dataset's inputs, rescaled (nothing when that loader shuffles).
        class_names: a name per class; default ``trainer.config['classes']`` if present.
        max_misclassified: how many misclassified examples to keep per epoch.

    Examples:
        >>> trainer = Trainer(model, optimizer, out_dir="runs/a",               # doctest: +SKIP
        ...                   callbacks=[LiveRecorder("runs/a")])
        >>> # then: convstack dashboard runs/a
    """

    def __init__(self, run_dir, sample=None, images=None, class_names=None, max_misclassified: int = 16):
        if not isinstance(max_misclassified, int) or max_misclassified < 0:
            raise ValueError(
                "LiveRecorder: invalid value for argument `max_misclassified`: expected a non-negative integer, "
                f"received {max_misclassified!r}"
            )
        self.run_dir = Path(run_dir)
        self.sample = None if sample is None else to_numpy(sample)
        self.images = images
        self.class_names = None if class_names is None else [str(name) for name in class_names]
        self.max_misclassified = max_misclassified
        self._stream = None
        self._results = None
        self._epoch_seconds = None

    # ------------------------------------------------------------------ events
    def _write(self, record: dict, at_once: bool = True) -> None:
        """Append ``record``; flushed at once, or, for step records, at most every ``FLUSH_INTERVAL``
        seconds (a reader takes whole lines only, so a line cut by the buffer waits for its end)."""
        self._stream.write(json_line(record))
        now = time.perf_counter()
        if at_once or now - self._flushed >= FLUSH_INTERVAL:
            self._stream.flush()
            self._flushed = now

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.run_dir).as_posix()

    def on_fit_start(self, trainer):
        (self.run_dir / "live").mkdir(parents=True, exist_ok=True)
        self._stream = open(self.run_dir / EVENTS, "a", encoding="utf-8")
        self._flushed = time.perf_counter()
        if self.sample is None:
            self.sample = first_input(getattr(trainer, "train_loader", None))
        if self.class_names is None and trainer.config.get("classes"):
            self.class_names = [str(name) for name in trainer.config["classes"]]
        convs = conv_layer_names(trainer.model)
        self._feature_layer = convs[0] if convs and self.sample is not None and self.sample.ndim == 3 else None
        summary_path = None
        if self.sample is not None:
            summary_path = self.run_dir / "live" / "summary.txt"
            write_atomic(summary_path, summary(trainer.model, tuple(self.sample.shape)).encode("utf-8"))
        loader = trainer.train_loader
        self._write(
            {
                "type": "start",
                "timestamp": time.time(),
                "epochs": trainer.epochs,
                "start_epoch": trainer.epoch + 1,
                "batches": len(loader) if hasattr(loader, "__len__") else None,
                "model": trainer.config.get("model", type(trainer.model).__name__),
                "parameters": sum(p.numel() for p in trainer.model.parameters()),
                "classes": self.class_names,
                "config": trainer.config,
                "summary": None if summary_path is None else self._relative(summary_path),
                "feature_layer": self._feature_layer,
            }
        )

    def on_epoch_start(self, trainer, epoch):
        self._epoch_start = time.perf_counter()
        self._results = None

    def on_batch_end(self, trainer, batch, logs):
        elapsed = time.perf_counter() - self._epoch_start
        batches = logs.get("batches")
        eta = None
        if batches:
            per_batch = elapsed / (batch + 1)
            epoch_estimate = self._epoch_seconds or batches * per_batch
            eta = (batches - batch - 1) * per_batch + (trainer.epochs - trainer.epoch - 1) * epoch_estimate
        self._write(
            {
                "type": "step",
                "epoch": trainer.epoch + 1,
                "batch": batch + 1,
                "batches": batches,
                "loss": logs["loss"],
                "acc": logs.get("acc"),
                "lr": trainer.optimizer.param_groups[0]["lr"],
                "images_per_s": logs["seen"] / elapsed if elapsed > 0 else None,
                "eta_s": eta,
            },
            at_once=False,
        )

    def on_validation_end(self, trainer, epoch, results):
        self._results = results

    def on_epoch_end(self, trainer, epoch, logs):
        folder = self.run_dir / "live" / f"epoch-{epoch + 1:03d}"
        record = {"type": "epoch", **logs}
        filters = filters_picture(trainer.model)
        if filters is not None:
            record["filters"] = self._picture(folder / "filters.png", filters)
        if self._feature_layer is not None:
            maps = feature_maps_picture(trainer.model, self._feature_layer, self.sample)
            record["feature_maps"] = self._picture(folder / "feature_maps.png", maps)
        if self._results is not None and self._results.get("confusion") is not None:
            confusion = numpy.asarray(self._results["confusion"]).tolist()
            write_atomic(folder / "confusion.json", json.dumps(confusion).encode("utf-8"))
            record["confusion"] = self._relative(folder / "confusion.json")
            record["misclassified"] = self._misclassified(trainer, folder)
        self._epoch_seconds = time.perf_counter() - self._epoch_start  # with validation and these pictures
        record["eta_s"] = (trainer.epochs - epoch - 1) * self._epoch_seconds
        record["timestamp"] = time.time()
        self._write(record)

    def on_fit_end(self, trainer):
        self._write({"type": "end", "timestamp": time.time(), "epochs_done": trainer.epoch})
        self._stream.close()
        self._stream = None

    # ---------------------------------------------------------------- pictures
    def _picture(self, path: Path, image) -> str:
        write_atomic(path, encode_png(image))
        return self._relative(path)

    def _misclassified(self, trainer, folder: Path) -> list:
        predictions, targets = self._results["predictions"], self._results["targets"]
        chosen = misclassified_indices(predictions, targets, self.max_misclassified)
        examples = []
        for rank, index in enumerate(chosen):
            picture = self._validation_image(trainer, int(index))
            example = {
                "index": int(index),
                "true": self._name(int(targets[index])),
                "predicted": self._name(int(predictions[index])),
            }
            if picture is not None:
                example["file"] = self._picture(folder / f"misclassified-{rank}.png", picture)
            examples.append(example)
        return examples

    def _validation_image(self, trainer, index: int):
        if self.images is not None:
            return display_uint8(self.images[index])
        loader = getattr(trainer, "val_loader", None)
        if loader is None or getattr(loader, "shuffle", False) or not hasattr(loader, "dataset"):
            return None  # a shuffled order no longer matches the predictions
        item = loader.dataset[index]
        image = to_numpy(item[0] if isinstance(item, tuple) else item)
        return display_uint8(image) if image.ndim in (2, 3) else None

    def _name(self, label: int) -> str:
        names = self.class_names
        return names[label] if names and 0 <= label < len(names) else str(label)
