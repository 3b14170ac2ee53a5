"""``ReduceLROnPlateau``: divide the rate when a monitored metric stops improving."""

from __future__ import annotations

import math

from convstack.nn.functional._utils import invalid
from convstack.optim.lr_scheduler import LRScheduler, per_group
from convstack.optim.optimizer import Optimizer, check_number


class ReduceLROnPlateau(LRScheduler):
    """Multiply each group's rate by ``factor`` after ``patience`` epochs without improvement.

    ``step(metric)`` takes the monitored value (validation loss, accuracy ...). A value is an
    improvement over the best so far when, for ``mode="min"``, it is below
    ``best * (1 - threshold)`` (``threshold_mode="rel"``) or ``best - threshold`` (``"abs"``);
    ``mode="max"`` mirrors it. After a reduction, ``cooldown`` epochs pass before bad epochs
    count again. Rates never go below ``min_lr``, and changes smaller than ``eps`` are skipped.

    Args:
        optimizer: the optimizer.
        mode: ``"min"`` or ``"max"``.
        factor: multiplier of the rate, in [0, 1).
        patience: number of epochs without improvement to tolerate (>= 0).
        threshold: what counts as an improvement (see above, >= 0).
        threshold_mode: ``"rel"`` or ``"abs"``.
        cooldown: epochs to wait after a reduction (>= 0).
        min_lr: lowest rate, one number or one per group.
        eps: smallest change of the rate worth applying.

    Examples:
        >>> scheduler = ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=3)
        >>> for epoch in range(50):
        ...     train(...); scheduler.step(validation_loss)
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr=0, eps: float = 1e-8):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        if mode not in ("min", "max"):
            raise invalid("ReduceLROnPlateau", "mode", "'min' or 'max'", mode)
        if threshold_mode not in ("rel", "abs"):
            raise invalid("ReduceLROnPlateau", "threshold_mode", "'rel' or 'abs'", threshold_mode)
        self.factor = check_number("ReduceLROnPlateau", "factor", factor, 0.0, 1.0)
        for argument, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise invalid("ReduceLROnPlateau", argument, "a non-negative integer", value)
        self.optimizer = optimizer
        self.min_lrs = per_group("min_lr", optimizer, min_lr, "ReduceLROnPlateau")
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else min_lr
        self.mode, self.threshold, self.threshold_mode = mode, check_number(
            "ReduceLROnPlateau", "threshold", threshold), threshold_mode
        self.patience, self.cooldown, self.eps = patience, cooldown, eps
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        self.best = self._worst()
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def _worst(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def is_better(self, value: float, best: float) -> bool:
        if self.mode == "min":
            return value < (best * (1.0 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return value > (best * (1.0 + self.threshold) if self.threshold_mode == "rel" else best + self.threshold)

    def step(self, metrics) -> None:  # noqa: D401 - PyTorch's signature takes the metric
        """Record one epoch's metric (a number or a one-element tensor) and reduce the rate if it has plateaued."""
        current = float(metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    def _reduce_lr(self) -> None:
        if len(self.min_lrs) != len(self.optimizer.param_groups):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"ReduceLROnPlateau: the optimizer now has {len(self.optimizer.param_groups)} parameter groups "
                    f"but min_lr was given for {len(self.min_lrs)}; set `min_lrs` to one value per group"
                )
            self.min_lrs = [self.default_min_lr] * len(self.optimizer.param_groups)
        for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:
                group["lr"] = new
