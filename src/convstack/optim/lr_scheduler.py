"""Learning-rate schedules: the ``LRScheduler`` base and the step, multi-step, exponential and cosine decays.

Semantics are PyTorch's: a scheduler is created after its optimizer, sets each group's
``lr`` for epoch 0 at construction, and ``step()`` (called after ``optimizer.step()``)
advances ``last_epoch`` and sets the next rates. Rates are computed *chainably* from
each group's current ``lr`` (so two schedulers on one optimizer compose, and a rate
changed by hand is respected), exactly as ``torch.optim.lr_scheduler`` computes them.
``state_dict()`` holds only numbers, strings, lists and dicts (JSON-friendly).
"""

from __future__ import annotations

import math
from bisect import bisect_right

from convstack.nn.functional._utils import invalid
from convstack.optim.optimizer import Optimizer
from convstack.structure import check_like


def per_group(name: str, optimizer: Optimizer, value, op: str) -> list:
    """``value`` repeated for every parameter group, or checked to have one entry per group."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise invalid(op, name, f"one value per parameter group ({len(optimizer.param_groups)})", value)
        return list(value)
    return [value] * len(optimizer.param_groups)


class LRScheduler:
    """Base of the schedules: subclasses define ``get_lr()`` (chainable) and may define
    ``_get_closed_form_lr()`` (the rate as a function of ``last_epoch`` alone).

    Args:
        optimizer: the optimizer whose groups' ``lr`` this schedule sets.
        last_epoch: index of the last epoch; ``-1`` starts afresh. Resuming with another value
            needs ``initial_lr`` in every group (a loaded optimizer state dict has it).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for index, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{index}] when resuming "
                                   f"a scheduler with last_epoch={last_epoch}")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """Set the epoch-0 rates (the constructor's step)."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define get_lr")

    def get_last_lr(self) -> list:
        """The rates set by the last ``step()``, one per parameter group."""
        return list(self._last_lr)

    def step(self) -> None:
        """Advance one epoch (or iteration) and set the optimizer's rates."""
        self._step_count += 1
        self._update_lr()

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            closed_form = getattr(self, "_get_closed_form_lr", None)
            values = closed_form() if closed_form is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _current_lrs(self) -> list:
        return [group["lr"] for group in self.optimizer.param_groups]

    def replan(self, **settings) -> None:
        """Change the schedule's settings mid-run (``T_max``, ``step_size`` ...), keeping its epoch.

        The rates become what the new plan gives at the current epoch (the closed form) and
        later steps follow the new plan: resuming a 10-epoch cosine run with
        ``replan(T_max=20)`` continues as a run planned for 20 epochs would from there.

        Raises:
            ValueError: for a setting the schedule does not have, or of another kind.
            TypeError: for a schedule without a closed form.
        """
        if getattr(self, "_get_closed_form_lr", None) is None:
            raise TypeError(f"{type(self).__name__} cannot be re-planned (its rate has no closed form)")
        for name, value in settings.items():
            if name.startswith("_") or name not in self.__dict__:
                raise ValueError(f"{type(self).__name__}.replan: no setting {name!r}")
            check_like(value, self.__dict__[name], f"{type(self).__name__}.replan: {name}")
        self.__dict__.update(settings)
        self._update_lr(self.last_epoch)

    def state_dict(self) -> dict:
        """Every attribute but the optimizer (numbers, strings, lists, dicts)."""
        return {key: _copy(value) for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore ``state_dict()``'s attributes; a state of another shape (another scheduler's) raises ValueError."""
        check_like(state_dict, self.state_dict(), type(self).__name__)
        self.__dict__.update({key: _copy(value) for key, value in state_dict.items()})


def _copy(value):
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs: ``lr = base_lr * gamma ** (epoch // step_size)``.

    Examples:
        >>> scheduler = StepLR(optimizer, step_size=30, gamma=0.1)
        >>> for epoch in range(100):
        ...     train(...); scheduler.step()
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise invalid("StepLR", "step_size", "a positive integer", step_size)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the rate by ``gamma`` at each milestone epoch (a milestone listed twice applies twice).

    Examples:
        >>> scheduler = MultiStepLR(optimizer, milestones=[30, 80], gamma=0.1)
    """

    def __init__(self, optimizer: Optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        milestones = list(milestones)
        if not all(isinstance(m, int) and not isinstance(m, bool) for m in milestones):
            raise invalid("MultiStepLR", "milestones", "a list of integers", milestones)
        self.milestones = sorted(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        times = self.milestones.count(self.last_epoch)
        if times == 0:
            return self._current_lrs()
        return [lr * self.gamma**times for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list:
        return [base * self.gamma ** bisect_right(self.milestones, self.last_epoch) for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the rate by ``gamma`` every epoch: ``lr = base_lr * gamma ** epoch``."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list:
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing (Loshchilov & Hutter 2017, SGDR without restarts).

    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``, computed with
    PyTorch's recursive form (so the values match ``torch`` exactly, and past ``T_max`` the
    rate climbs back as a cosine of period ``2 * T_max``).

    Args:
        optimizer: the optimizer.
        T_max: half-period, in epochs (positive).
        eta_min: the lowest rate.
        last_epoch: see ``LRScheduler``.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):  # noqa: N803
        if isinstance(T_max, bool) or not isinstance(T_max, int) or T_max < 1:
            raise invalid("CosineAnnealingLR", "T_max", "a positive integer", T_max)
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        epoch, period, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and epoch > 0:
            return [eta_min + (base - eta_min) * (1 + math.cos(epoch * math.pi / period)) / 2 for base in self.base_lrs]
        if (epoch - 1 - period) % (2 * period) == 0:
            return [
                lr + (base - eta_min) * (1 - math.cos(math.pi / period)) / 2
                for base, lr in zip(self.base_lrs, self._current_lrs())
            ]
        ratio = (1 + math.cos(math.pi * epoch / period)) / (1 + math.cos(math.pi * (epoch - 1) / period))
        return [ratio * (lr - eta_min) + eta_min for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list:
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]
