"""``Trainer``: the training loop, evaluation, checkpoints after every epoch, and resume.

    trainer = Trainer(model, optimizer, out_dir="runs/lenet5")
    history = trainer.fit(train_loader, val_loader, epochs=10)
    trainer.fit(train_loader, val_loader, epochs=10, resume=True)  # after a crash

Every epoch ends with ``last.ckpt`` in ``out_dir`` (model, optimizer, scheduler,
random-generator states, epoch, history, config), written atomically in a format that
cannot run code; the best model by validation accuracy goes to ``best.ckpt``. Resuming
restores all of it, so that a run killed at any moment and resumed with the same seed
ends with the same weights, bit for bit, as an uninterrupted run.

Given a ``DistributedDataParallel`` model, every rank runs ``fit`` on its own shard (a
``DataLoader`` with a ``DistributedSampler``, whose epoch the Trainer sets): the losses
checked, the epoch's figures and the evaluation (sharded) are combined over the ranks,
so every rank takes the same decisions; rank 0 alone shows progress and writes the
history and the checkpoints, which hold the wrapped model (``model.module``).
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from pathlib import Path

import numpy

from convstack import random as cs_random
from convstack.anomaly import AnomalyError, detect_anomaly
from convstack.atomic import remove_stale_temporaries
from convstack.autograd import no_grad
from convstack.io.checkpoint import CheckpointError, check_weights, load_checkpoint, one_line, save_checkpoint
from convstack.structure import check_like, kind
from convstack.train.callbacks import Callback, HistoryWriter, ProgressBar
from convstack.train.distributed import (
    evaluate_sharded,
    max_over_ranks,
    mean_over_ranks,
    process_group_of,
    sum_over_ranks,
    unwrap,
)
from convstack.train.metrics import confusion_matrix, topk_correct


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the epoch and batch (also ``epoch``, ``batch``, ``loss``).

    ``batch`` is None when every batch of an epoch was skipped (``on_nonfinite='skip'``).
    """

    def __init__(self, message: str, epoch: int, batch: int | None, loss: float):
        super().__init__(message)
        self.epoch, self.batch, self.loss = epoch, batch, loss


class Trainer:
    """Fit a model with an optimizer on mini-batches, evaluating and checkpointing each epoch.

    Args:
        model: a ``convstack.nn.Module`` mapping inputs to class scores.
        optimizer: a ``convstack.optim.Optimizer`` over the model's parameters.
        loss_fn: ``loss_fn(outputs, targets)`` -> scalar tensor (default: cross-entropy).
        scheduler: an optional learning-rate scheduler, stepped per ``scheduler_interval``
            ('epoch' or 'batch'); ``ReduceLROnPlateau`` is stepped with the validation loss.
        callbacks: extra ``Callback`` objects.
        out_dir: run folder for checkpoints and history (None: nothing is written).
        grad_clip_norm: clip the global gradient norm to this value before each step.
        max_norm: renormalise each unit's incoming weights to at most this norm after each step.
        on_nonfinite: 'stop' raises ``NonFiniteLossError``; 'skip' skips that step.
        detect_anomaly: train under ``convstack.detect_anomaly()``: the first op that produces
            NaN or Inf, forward or backward, raises ``AnomalyError`` naming the op, the layer,
            the epoch and the batch (slower; for debugging; ``on_nonfinite`` never sees the loss).
        progress: show a progress bar on stderr.
        config: JSON-serialisable description of the run (model name and options ...),
            stored in every checkpoint so the model can be rebuilt from it.
    """

    def __init__(
        self,
        model,
        optimizer,
        loss_fn=None,
        scheduler=None,
        *,
        scheduler_interval: str = "epoch",
        callbacks=(),
        out_dir=None,
        grad_clip_norm: float | None = None,
        max_norm: float | None = None,
        on_nonfinite: str = "stop",
        detect_anomaly: bool = False,
        progress: bool = True,
        config: dict | None = None,
    ):
        if scheduler_interval not in ("epoch", "batch"):
            raise ValueError(
                f"Trainer: invalid value for argument `scheduler_interval`: expected 'epoch' or 'batch', "
                f"received {scheduler_interval!r}"
            )
        if on_nonfinite not in ("stop", "skip"):
            raise ValueError(
                "Trainer: invalid value for argument `on_nonfinite`: expected 'stop' or 'skip', "
                f"received {on_nonfinite!r}"
            )
        if loss_fn is None:
            from convstack.nn.functional import cross_entropy

            loss_fn = cross_entropy
        self.model, self.optimizer, self.loss_fn, self.scheduler = model, optimizer, loss_fn, scheduler
        self._group = process_group_of(model)  # None in a single process
        self.is_main_process = self._group is None or self._group.rank == 0
        self.scheduler_interval = scheduler_interval
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.grad_clip_norm, self.max_norm, self.on_nonfinite = grad_clip_norm, max_norm, on_nonfinite
        self.detect_anomaly = bool(detect_anomaly)
        self._batch = 0
        self.config = dict(config or {})
        self.callbacks: list[Callback] = list(callbacks)
        if progress and self.is_main_process:
            self.callbacks.append(ProgressBar())
        if self.out_dir is not None and self.is_main_process:
            self.callbacks.append(HistoryWriter(self.out_dir))
        self.history: list[dict] = []
        self.epoch = 0
        self.epochs = 0
        self.best_accuracy = -math.inf
        self.skipped_steps = 0
        self.stop_training = False
        self.train_time = 0.0

    # ----------------------------------------------------------------- training
    def fit(self, train_loader, val_loader=None, epochs: int = 10, resume=False) -> list[dict]:
        """Train for ``epochs`` epochs in all; with ``resume`` continue from ``out_dir/last.ckpt``
        (or from the checkpoint path given as ``resume``). Returns the history."""
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(
                f"fit: invalid value for argument `epochs`: expected a positive integer, received {epochs!r}"
            )
        self.epochs = epochs
        self.train_loader, self.val_loader = train_loader, val_loader
        if resume:
            path = Path(resume) if not isinstance(resume, bool) else self._path("last.ckpt")
            if path is None:
                raise ValueError("fit: resume=True needs an out_dir (or pass the checkpoint path as `resume`)")
            if path.exists():
                self.load(path, train_loader)
        self.stop_training = False
        self._call("on_fit_start")
        while self.epoch < epochs and not self.stop_training:
            sampler = getattr(train_loader, "sampler", None)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(self.epoch)
            try:
                with detect_anomaly() if self.detect_anomaly else contextlib.nullcontext():
                    logs = self._train_epoch(train_loader)
            except AnomalyError as error:
                raise AnomalyError(f"at epoch {self.epoch + 1}, batch {self._batch + 1}: {error}") from None
            if val_loader is not None:
                results = self.evaluate(val_loader)
                self._call("on_validation_end", self.epoch, results)
                logs.update({"val_loss": results["loss"], "val_acc": results["acc"], "val_top5": results["top5"]})
            self._step_scheduler_epoch(logs)
            self.history.append(logs)
            self._call("on_epoch_end", self.epoch, logs)
            self.epoch += 1
            accuracy = logs.get("val_acc", logs["acc"])
            if accuracy > self.best_accuracy:
                self.best_accuracy = accuracy
                if self.out_dir is not None and self.is_main_process:
                    save_checkpoint(self._path("best.ckpt"), self._model_state())
            if self.out_dir is not None and self.is_main_process:
                self.save(self._path("last.ckpt"))
        self._call("on_fit_end")
        return self.history

    def _train_epoch(self, loader) -> dict:
        from convstack.nn.utils import clip_grad_norm_
        from convstack.optim.constraints import apply_max_norm_

        self.model.train()
        self._call("on_epoch_start", self.epoch)
        start = time.perf_counter()
        total_loss, correct, seen, skipped = 0.0, 0, 0, 0
        batches = len(loader) if hasattr(loader, "__len__") else None
        for batch, (inputs, targets) in enumerate(loader):
            self._batch = batch
            outputs = self.model(inputs)
            loss = self.loss_fn(outputs, targets)
            local_value = float(loss.item())
            value = local_value if self._group is None else mean_over_ranks(self._group, local_value)
            if not math.isfinite(value):
                if self.on_nonfinite == "stop":
                    raise NonFiniteLossError(
                        f"non-finite loss ({value}) at epoch {self.epoch + 1}, batch {batch + 1}; lower the "
                        "learning rate or pass on_nonfinite='skip'", self.epoch + 1, batch + 1, value)
                self.skipped_steps += 1
                skipped += 1
                continue
            self.optimizer.zero_grad()
            loss.backward()
            if self.grad_clip_norm is not None:
                clip_grad_norm_(self.model.parameters(), self.grad_clip_norm)
            self.optimizer.step()
            if self.max_norm is not None:
                apply_max_norm_(self.model, self.max_norm)
            if self.scheduler is not None and self.scheduler_interval == "batch":
                self.scheduler.step()
            count = len(targets)
            batch_correct = topk_correct(outputs.data, targets.data, 1) if outputs.ndim == 2 else 0
            total_loss += local_value * count
            correct += batch_correct
            seen += count
            accuracy = batch_correct / count if outputs.ndim == 2 else None  # classes only for (N, K) scores
            ranks = 1 if self._group is None else self._group.size  # about as many images on each rank
            logs = {"loss": value, "acc": accuracy, "seen": seen * ranks, "batches": batches}
            self._call("on_batch_end", batch, logs)
        elapsed = time.perf_counter() - start
        if self._group is not None:
            total_loss, correct, seen = sum_over_ranks(self._group, total_loss, correct, seen)
            elapsed = max_over_ranks(self._group, elapsed)
        self.train_time += elapsed
        if skipped and not seen:  # skipping cannot recover weights that have diverged
            raise NonFiniteLossError(
                f"every batch of epoch {self.epoch + 1} ({skipped}) had a non-finite loss: the weights have "
                "diverged; lower the learning rate", self.epoch + 1, None, value)
        return {
            "epoch": self.epoch + 1,
            "loss": total_loss / max(seen, 1),
            "acc": correct / max(seen, 1),
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "time": elapsed,
            "images_per_s": seen / elapsed if elapsed > 0 else 0.0,
        }

    def _step_scheduler_epoch(self, logs: dict) -> None:
        if self.scheduler is None or self.scheduler_interval != "epoch":
            return
        if type(self.scheduler).__name__ == "ReduceLROnPlateau":
            self.scheduler.step(logs.get("val_loss", logs["loss"]))
        else:
            self.scheduler.step()

    # --------------------------------------------------------------- evaluation
    def evaluate(self, loader, num_classes: int | None = None) -> dict:
        """Loss, top-1 and top-5 accuracy, the confusion matrix and predictions over ``loader``.

        With a ``DistributedDataParallel`` model, every rank calls it: each evaluates its
        contiguous shard of ``loader.dataset`` and all receive the combined figures.
        """
        if self._group is not None:
            return evaluate_sharded(self.model, loader, self.loss_fn, num_classes, self._group)
        return evaluate(self.model, loader, self.loss_fn, num_classes)

    # -------------------------------------------------------------- checkpoints
    def _path(self, name: str):
        return None if self.out_dir is None else self.out_dir / name

    def _model_state(self) -> dict:
        return {"model": dict(unwrap(self.model).state_dict()), "config": self.config, "epoch": self.epoch}

    def state_dict(self, loader=None) -> dict:
        state = self._model_state()
        state.update(
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict() if self.scheduler is not None else None,
            rng=cs_random.get_rng_state(),
            history=self.history,
            best_accuracy=self.best_accuracy if math.isfinite(self.best_accuracy) else None,
            skipped_steps=self.skipped_steps,
            callbacks=[cb.state_dict() if hasattr(cb, "state_dict") else None for cb in self.callbacks],
        )
        loader = loader if loader is not None else getattr(self, "train_loader", None)
        if loader is not None and hasattr(loader, "state_dict"):
            state["loader"] = loader.state_dict()
        return state

    def save(self, path) -> None:
        save_checkpoint(path, self.state_dict())

    def load(self, path, loader=None) -> None:
        """Restore everything ``save`` wrote: all of it, or nothing.

        A checkpoint that does not fit (another model: missing or unexpected keys, shape
        differences; another optimizer) raises ``CheckpointError`` naming the file and the
        mismatch; the model is checked before anything is copied, and should a later part
        not fit, the model, optimizer, scheduler and random state are put back as they were.
        """
        remove_stale_temporaries(Path(path).parent)  # what writes that a kill interrupted left there
        state = load_checkpoint(path)
        if not isinstance(state.get("model"), dict) or not isinstance(state.get("optimizer"), dict):
            raise CheckpointError(f"{path}: not a training checkpoint (no model and optimizer state to resume from)")
        check_weights(state["model"], path)
        backup = (
            {key: value.data.copy() for key, value in unwrap(self.model).state_dict().items()},
            self.optimizer.state_dict(),
            copy.deepcopy(self.scheduler.state_dict()) if self.scheduler is not None else None,
            copy.deepcopy(cs_random.get_rng_state()),
        )
        try:
            progress = _training_progress(state)
            callback_states = state.get("callbacks") or []
            if not isinstance(callback_states, list):
                raise ValueError(f"callbacks is {kind(callback_states)}, expected a list")
            for callback, callback_state in zip(self.callbacks, callback_states):
                if callback_state is not None and hasattr(callback, "state_dict"):
                    check_like(callback_state, callback.state_dict(), f"callback {type(callback).__name__}")
            unwrap(self.model).load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state.get("scheduler") is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            cs_random.set_rng_state(state["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as error:
            unwrap(self.model).load_state_dict(backup[0])
            self.optimizer.load_state_dict(backup[1])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(backup[2])
            cs_random.set_rng_state(backup[3])
            raise CheckpointError(f"{path}: does not fit this model and optimizer: {one_line(error)}") from error
        self.history, self.epoch, self.best_accuracy, self.skipped_steps = progress
        for callback, callback_state in zip(self.callbacks, callback_states):
            if callback_state is not None and hasattr(callback, "load_state_dict"):
                callback.load_state_dict(callback_state)
        if loader is not None and "loader" in state and hasattr(loader, "load_state_dict"):
            loader.load_state_dict(state["loader"])

    def _call(self, event: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, event)(self, *args)


def _training_progress(state: dict) -> tuple:
    """(history, epoch, best accuracy, skipped steps) from a checkpoint, each checked for its kind."""
    epoch, history = state["epoch"], state.get("history") or []
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"epoch is {kind(epoch)} ({epoch!r}), expected a non-negative integer")
    if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
        raise ValueError("history is not a list of dicts")
    for row in history:
        for key, value in row.items():
            if not isinstance(key, str) or not (value is None or isinstance(value, (int, float, str))):
                raise ValueError(f"history entry {key!r} is {kind(value)}, expected a number or a string")
    best = state.get("best_accuracy")
    if best is not None and (isinstance(best, bool) or not isinstance(best, (int, float))):
        raise ValueError(f"best_accuracy is {kind(best)}, expected a number")
    skipped = state.get("skipped_steps", 0)
    if isinstance(skipped, bool) or not isinstance(skipped, int) or skipped < 0:
        raise ValueError(f"skipped_steps is {kind(skipped)}, expected a non-negative integer")
    return list(history), epoch, -math.inf if best is None else best, skipped


def evaluate(model, loader, loss_fn=None, num_classes: int | None = None) -> dict:
    """Evaluate ``model`` over ``loader`` in eval mode without recording the graph."""
    if loss_fn is None:
        from convstack.nn.functional import cross_entropy

        loss_fn = cross_entropy
    was_training = model.training
    model.eval()
    total_loss, top1, top5, seen = 0.0, 0, 0, 0
    predictions, targets_all = [], []
    with no_grad():
        for inputs, targets in loader:
            outputs = model(inputs)
            count = len(targets)
            total_loss += float(loss_fn(outputs, targets).item()) * count
            logits = outputs.data
            top1 += topk_correct(logits, targets.data, 1)
            top5 += topk_correct(logits, targets.data, 5)
            predictions.append(logits.argmax(axis=1))
            targets_all.append(numpy.asarray(targets.data))
            seen += count
    model.train(was_training)
    predictions = numpy.concatenate(predictions) if predictions else numpy.zeros(0, numpy.int64)
    targets_all = numpy.concatenate(targets_all) if targets_all else numpy.zeros(0, numpy.int64)
    classes = num_classes or int(max(predictions.max(initial=0), targets_all.max(initial=0)) + 1)
    return {
        "loss": total_loss / max(seen, 1),
        "acc": top1 / max(seen, 1),
        "top5": top5 / max(seen, 1),
        "confusion": confusion_matrix(predictions, targets_all, classes),
        "predictions": predictions,
        "targets": targets_all,
    }
