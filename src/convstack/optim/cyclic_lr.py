"""Schedules that cycle: ``CyclicLR`` (Smith 2017, triangular cycles between two rates, momentum the other way)
and ``CosineAnnealingWarmRestarts`` (SGDR, Loshchilov & Hutter 2017: cosine decays restarted every period,
the periods growing by ``T_mult``). Both are stepped per batch; values are PyTorch's, step by step.
"""

from __future__ import annotations

import math
import numbers
import types

from convstack.nn.functional._utils import invalid
from convstack.optim.lr_scheduler import LRScheduler, _copy, per_group
from convstack.optim.optimizer import Optimizer


class CyclicLR(LRScheduler):
    """Cyclical learning rates (Smith 2017): the rate climbs from ``base_lr`` to ``max_lr`` in
    ``step_size_up`` steps and falls back in ``step_size_down``, cycle after cycle.

    ``mode`` scales each cycle's amplitude: ``'triangular'`` keeps it, ``'triangular2'`` halves it
    every cycle, ``'exp_range'`` multiplies it by ``gamma ** iteration``. A custom ``scale_fn(x)``
    (in [0, 1]) of the cycle number or of the iteration (``scale_mode``) replaces the mode. With
    ``cycle_momentum`` the momentum (SGD, RMSprop) or ``beta1`` (Adam) moves the opposite way,
    between ``max_momentum`` (at ``base_lr``) and ``base_momentum`` (at ``max_lr``).

    Args:
        optimizer: the optimizer.
        base_lr, max_lr: the lower and upper rates, one number or one per group.
        step_size_up: steps of the rising half of a cycle.
        step_size_down: steps of the falling half (default: ``step_size_up``).
        mode: ``'triangular'``, ``'triangular2'`` or ``'exp_range'``.
        gamma: the factor of ``'exp_range'``.
        scale_fn: a custom amplitude scale (replaces ``mode``).
        scale_mode: ``'cycle'`` or ``'iterations'``: what ``scale_fn`` is a function of.
        cycle_momentum: cycle the momentum inversely to the rate.
        base_momentum, max_momentum: the momentum bounds, one number or one per group.
        last_epoch: the index of the last batch; see ``LRScheduler``.

    Examples:
        >>> scheduler = CyclicLR(optimizer, base_lr=0.01, max_lr=0.1, step_size_up=2000)
        >>> for batch in loader: ...; optimizer.step(); scheduler.step()
    """

    def __init__(self, optimizer: Optimizer, base_lr, max_lr, step_size_up: int = 2000, step_size_down=None,
                 mode: str = "triangular", gamma: float = 1.0, scale_fn=None, scale_mode: str = "cycle",
                 cycle_momentum: bool = True, base_momentum=0.8, max_momentum=0.9, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        op = "CyclicLR"
        base_lrs = per_group("base_lr", optimizer, base_lr, op)
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups):
                group["lr"] = lr
        self.max_lrs = per_group("max_lr", optimizer, max_lr, op)
        for name, value in (("step_size_up", step_size_up), ("step_size_down", step_size_down)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real) or value <= 0):
                raise invalid(op, name, "a positive number of steps", value)
        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        if scale_fn is None and mode not in ("triangular", "triangular2", "exp_range"):
            raise invalid(op, "mode", "'triangular', 'triangular2' or 'exp_range' (or a scale_fn)", mode)
        if scale_mode not in ("cycle", "iterations"):
            raise invalid(op, "scale_mode", "'cycle' or 'iterations'", scale_mode)
        if scale_fn is not None and not callable(scale_fn):
            raise TypeError(f"{op}: scale_fn should be a function, but got {type(scale_fn).__name__}")
        self.mode, self.gamma = mode, gamma
        self._scale_fn_custom = scale_fn
        # the built-in modes fix what they scale by, as PyTorch's do
        self.scale_mode = scale_mode if scale_fn is not None else ("iterations" if mode == "exp_range" else "cycle")
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise invalid(op, "cycle_momentum", "False for an optimizer without momentum or betas",
                              cycle_momentum, type(optimizer).__name__)
            self.use_beta1 = "betas" in optimizer.defaults
            self.base_momentums = per_group("base_momentum", optimizer, base_momentum, op)
            self.max_momentums = per_group("max_momentum", optimizer, max_momentum, op)
            if last_epoch == -1:
                for high, low, group in zip(self.max_momentums, self.base_momentums, optimizer.param_groups):
                    self._set_momentum(group, high)
                    group["max_momentum"], group["base_momentum"] = high, low
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _set_momentum(self, group: dict, value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def scale_fn(self, x) -> float:
        """The amplitude's scale at cycle (or iteration) ``x``."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma**x

    def get_lr(self) -> list:
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle  # position within the cycle, in [0, 1)
        scale_factor = x / self.step_ratio if x <= self.step_ratio else (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        lrs = [base + (peak - base) * scale_factor * scale for base, peak in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            for low, high, group in zip(self.base_momentums, self.max_momentums, self.optimizer.param_groups):
                self._set_momentum(group, high - (high - low) * scale_factor * scale)
        return lrs

    def state_dict(self) -> dict:
        """As the base's, with a custom ``scale_fn`` saved only as its attributes (when it is a callable object)."""
        state = {key: _copy(value) for key, value in self.__dict__.items()
                 if key not in ("optimizer", "_scale_fn_custom")}
        fn = self._scale_fn_custom
        state["_scale_fn_custom"] = None if fn is None or isinstance(fn, types.FunctionType) else _copy(
            dict(fn.__dict__))
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state = dict(state_dict)
        attributes = state.pop("_scale_fn_custom", None)
        self.__dict__.update({key: _copy(value) for key, value in state.items()})
        if attributes is not None and self._scale_fn_custom is not None:
            self._scale_fn_custom.__dict__.update(_copy(attributes))


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR (Loshchilov & Hutter 2017): ``lr = eta_min + (base_lr - eta_min) (1 + cos(pi T_cur / T_i)) / 2``,
    with ``T_cur`` the epochs since the last restart and ``T_i`` the current period (``T_0``, then times ``T_mult``
    after each restart).

    ``step()`` advances one epoch; ``step(epoch)`` jumps to a (possibly fractional) epoch, so that
    calling ``scheduler.step(epoch + i / iterations)`` after each batch anneals within the epoch.

    Args:
        optimizer: the optimizer.
        T_0: the first period, in epochs (a positive integer).
        T_mult: the factor by which each period grows (an integer >= 1).
        eta_min: the lowest rate.
        last_epoch: see ``LRScheduler``.

    Examples:
        >>> scheduler = CosineAnnealingWarmRestarts(optimizer, T_0=10, T_mult=2)
    """

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0,  # noqa: N803
                 last_epoch: int = -1):
        op = "CosineAnnealingWarmRestarts"
        if isinstance(T_0, bool) or not isinstance(T_0, int) or T_0 <= 0:
            raise invalid(op, "T_0", "a positive integer", T_0)
        if isinstance(T_mult, bool) or not isinstance(T_mult, int) or T_mult < 1:
            raise invalid(op, "T_mult", "an integer >= 1", T_mult)
        if isinstance(eta_min, bool) or not isinstance(eta_min, numbers.Real):
            raise invalid(op, "eta_min", "a number", eta_min)
        self.T_0, self.T_i, self.T_mult, self.eta_min = T_0, T_0, T_mult, eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        cosine = (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]

    def step(self, epoch=None) -> None:
        """Advance one epoch, or (with ``epoch``, a non-negative number) go to that epoch."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i *= self.T_mult
        else:
            if isinstance(epoch, bool) or not isinstance(epoch, numbers.Real) or epoch < 0:
                raise invalid("CosineAnnealingWarmRestarts.step", "epoch", "a non-negative number", epoch)
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:  # the restart n with T_0 (T_mult^n - 1) / (T_mult - 1) <= epoch
                    n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult**n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
