"""Callbacks: hooks into the training loop for anything a user may want to add.

A callback overrides any of ``on_fit_start``, ``on_epoch_start``, ``on_batch_end``,
``on_validation_end``, ``on_epoch_end`` and ``on_fit_end``; each receives the ``Trainer``
and, where there is one, a ``logs`` dict of the latest figures (``on_batch_end``: the
step's ``loss`` and ``acc`` (None for outputs that are not class scores), the images
``seen`` so far this epoch and the epoch's ``batches``; ``on_validation_end``: the full
``evaluate`` results, confusion matrix and predictions included). Setting
``trainer.stop_training = True`` ends ``fit`` after the current epoch.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from pathlib import Path

from convstack.atomic import write_text


class Callback:
    def on_fit_start(self, trainer) -> None:
        pass

    def on_epoch_start(self, trainer, epoch: int) -> None:
        pass

    def on_batch_end(self, trainer, batch: int, logs: dict) -> None:
        pass

    def on_validation_end(self, trainer, epoch: int, results: dict) -> None:
        pass

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        pass

    def on_fit_end(self, trainer) -> None:
        pass


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0, mode: str = "auto"):
        if patience < 0:
            raise ValueError(
                f"EarlyStopping: invalid value for argument `patience`: expected >= 0, received {patience}"
            )
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if mode not in ("min", "max"):
            raise ValueError(
                f"EarlyStopping: invalid value for argument `mode`: expected 'min', 'max' or 'auto', received {mode!r}"
            )
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, min_delta, mode
        self.best = math.inf if mode == "min" else -math.inf
        self.wait = 0
        self.stopped_epoch = None

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, trainer, epoch, logs):
        value = logs.get(self.monitor)
        if value is None:
            return
        if self._improved(value):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                trainer.stop_training = True
                self.stopped_epoch = epoch

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.wait = state["best"], state["wait"]


class HistoryWriter(Callback):
    """Write the per-epoch history as ``history.csv`` and ``history.json`` in ``folder``."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def on_epoch_end(self, trainer, epoch, logs):
        history = trainer.history
        write_text(self.folder / "history.json", json.dumps(history, indent=1))
        keys = sorted({k for row in history for k in row}, key=lambda k: (k != "epoch", k))
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
        write_text(self.folder / "history.csv", table.getvalue())


class ProgressBar(Callback):
    """A one-line progress bar per epoch on stderr with loss, throughput (images/s) and ETA.

    On a terminal the bar is redrawn in place while the epoch runs; on anything else (a
    log file, a pipe, CI) only the summary line of each epoch is written, so that a log
    holds no carriage-return redraws. ``live`` forces one or the other.
    """

    def __init__(self, stream=None, width: int = 24, min_interval: float = 0.2, live: bool | None = None):
        self.stream = stream or sys.stderr
        self.width, self.min_interval = width, min_interval
        self._last = 0.0
        if live is None:
            isatty = getattr(self.stream, "isatty", None)
            live = bool(isatty()) if callable(isatty) else False
        self.live = live

    def on_epoch_start(self, trainer, epoch):
        self._start = time.perf_counter()
        self._last = 0.0
        self._epoch = epoch

    def on_batch_end(self, trainer, batch, logs):
        if not self.live:
            return
        now = time.perf_counter()
        total = logs.get("batches") or 0
        if now - self._last < self.min_interval and batch + 1 != total:
            return
        self._last = now
        elapsed = now - self._start
        rate = logs["seen"] / elapsed if elapsed > 0 else 0.0
        done = (batch + 1) / total if total else 0.0
        eta = elapsed / done - elapsed if done else 0.0
        filled = int(self.width * done)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(
            f"\repoch {self._epoch + 1}/{trainer.epochs} [{bar}] {batch + 1}/{total} "
            f"loss {logs['loss']:.4f} {rate:,.0f} img/s ETA {eta:4.0f}s"
        )
        self.stream.flush()

    def on_epoch_end(self, trainer, epoch, logs):
        parts = [f"epoch {epoch + 1}/{trainer.epochs}"]
        for key in ("loss", "acc", "val_loss", "val_acc", "val_top5", "lr", "time"):
            if key in logs:
                value = logs[key]
                parts.append(f"{key} {value:.4f}" if key not in ("time",) else f"{value:.1f}s")
        line = "  ".join(parts)
        self.stream.write(("\r" + line + " " * 20 if self.live else line) + "\n")
        self.stream.flush()
