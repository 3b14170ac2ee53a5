"""Warm-up and composition: ``LinearLR``, ``ConstantLR`` and ``SequentialLR`` (warm-up, then another schedule).

Examples:
    Five epochs of linear warm-up from 10% of the rate, then cosine decay over 95 more:

    >>> warmup = LinearLR(optimizer, start_factor=0.1, total_iters=5)
    >>> decay = CosineAnnealingLR(optimizer, T_max=95)
    >>> scheduler = SequentialLR(optimizer, schedulers=[warmup, decay], milestones=[5])
"""

from __future__ import annotations

from bisect import bisect_right

from convstack.nn.functional._utils import invalid
from convstack.optim.lr_scheduler import LRScheduler, _copy
from convstack.optim.optimizer import Optimizer, check_number
from convstack.structure import check_like


def _check_iters(op: str, total_iters) -> int:
    if isinstance(total_iters, bool) or not isinstance(total_iters, int) or total_iters < 1:
        raise invalid(op, "total_iters", "a positive integer", total_iters)
    return total_iters


def _undo_initial_step(schedulers) -> None:
    """Step back the epoch of every (nested) scheduler: their construction step is replayed by the sequence."""
    for scheduler in schedulers:
        if hasattr(scheduler, "_schedulers"):
            _undo_initial_step(scheduler._schedulers)
        elif hasattr(scheduler, "last_epoch"):
            scheduler.last_epoch -= 1


class LinearLR(LRScheduler):
    """Scale the rate linearly from ``start_factor * lr`` to ``end_factor * lr`` over ``total_iters`` steps.

    ``lr = base_lr * (start + (end - start) * min(epoch, total_iters) / total_iters)`` (computed
    chainably, as PyTorch). With ``end_factor=1`` this is linear warm-up (Goyal et al. 2017).

    Args:
        optimizer: the optimizer.
        start_factor: factor at epoch 0, in (0, 1].
        end_factor: factor from ``total_iters`` on, in [0, 1].
        total_iters: number of steps of the ramp (positive).
        last_epoch: see ``LRScheduler``.
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        if isinstance(start_factor, bool) or not isinstance(start_factor, (int, float)) or not 0 < start_factor <= 1:
            raise invalid("LinearLR", "start_factor", "a number in (0, 1]", start_factor)
        self.start_factor = start_factor
        self.end_factor = check_number("LinearLR", "end_factor", end_factor, 0.0, 1.0, high_open=False)
        self.total_iters = _check_iters("LinearLR", total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        lrs = self._current_lrs()
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in lrs]
        if self._is_initial or self.last_epoch > self.total_iters:
            return lrs
        span = self.end_factor - self.start_factor
        factor = 1.0 + span / (self.total_iters * self.start_factor + (self.last_epoch - 1) * span)
        return [lr * factor for lr in lrs]

    def _get_closed_form_lr(self) -> list:
        progress = min(self.total_iters, self.last_epoch) / self.total_iters
        factor = self.start_factor + (self.end_factor - self.start_factor) * progress
        return [base * factor for base in self.base_lrs]


class ConstantLR(LRScheduler):
    """Multiply the rate by ``factor`` for the first ``total_iters`` steps, then restore it (constant warm-up).

    Args:
        optimizer: the optimizer.
        factor: the factor, in [0, 1].
        total_iters: number of steps at the lowered rate (positive).
        last_epoch: see ``LRScheduler``.
    """

    def __init__(self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5, last_epoch: int = -1):
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor <= 1:
            raise invalid("ConstantLR", "factor", "a number in (0, 1]", factor)
        self.factor = factor
        self.total_iters = _check_iters("ConstantLR", total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        lrs = self._current_lrs()
        if self.last_epoch == 0:
            return [lr * self.factor for lr in lrs]
        if self.last_epoch != self.total_iters:
            return lrs
        return [lr * (1.0 / self.factor) for lr in lrs]

    def _get_closed_form_lr(self) -> list:
        factor = 1.0 if self.last_epoch >= self.total_iters else self.factor
        return [base * factor for base in self.base_lrs]


class SequentialLR(LRScheduler):
    """Run ``schedulers[i]`` from ``milestones[i - 1]`` to ``milestones[i]``: a warm-up, then another schedule.

    Each scheduler restarts from its own epoch 0 at its milestone (closed form), as PyTorch.

    Args:
        optimizer: the optimizer all the schedulers drive.
        schedulers: the schedules, in order (not ``ReduceLROnPlateau``).
        milestones: the step at which each schedule after the first takes over (one fewer than schedulers).
        last_epoch: see ``LRScheduler``.
    """

    def __init__(self, optimizer: Optimizer, schedulers: list, milestones: list, last_epoch: int = -1):
        from convstack.optim.plateau import ReduceLROnPlateau

        if len(schedulers) < 1:
            raise invalid("SequentialLR", "schedulers", "at least one scheduler", schedulers)
        for index, scheduler in enumerate(schedulers):
            if isinstance(scheduler, ReduceLROnPlateau):
                raise invalid("SequentialLR", "schedulers", "schedules other than ReduceLROnPlateau (it needs a "
                              "metric in step())", f"ReduceLROnPlateau at index {index}")
            if getattr(scheduler, "optimizer", None) is not optimizer:
                raise invalid("SequentialLR", "schedulers", "schedules of the same optimizer",
                              f"{type(scheduler).__name__} of another optimizer at index {index}")
        milestones = list(milestones)
        if len(milestones) != len(schedulers) - 1:
            raise invalid("SequentialLR", "milestones", f"{len(schedulers) - 1} milestones (one fewer than "
                          f"the {len(schedulers)} schedulers)", milestones)
        self._schedulers = list(schedulers)
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        _undo_initial_step(self._schedulers)
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict:
        state = {key: value for key, value in super().state_dict().items() if key != "_schedulers"}
        state["_schedulers"] = [scheduler.state_dict() for scheduler in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        check_like(state_dict, self.state_dict(), "SequentialLR")
        inner = state_dict["_schedulers"]
        self.__dict__.update({key: _copy(value) for key, value in state_dict.items() if key != "_schedulers"})
        for scheduler, saved in zip(self._schedulers, inner):
            scheduler.load_state_dict(saved)
