"""Schedules given by a function of the epoch: ``LambdaLR`` (the rate is ``base_lr * f(epoch)``) and
``MultiplicativeLR`` (each step multiplies the rate by ``f(epoch)``), as ``torch.optim.lr_scheduler``.

Their ``state_dict()`` holds no function (functions cannot be saved as data): for each group
``None``, or, when the factor is a callable object rather than a function, that object's
attributes, restored into the object of the same position on load, as PyTorch does.

Examples:
    Linear warm-up over 5 epochs, then 0.95 per epoch:

    >>> scheduler = LambdaLR(optimizer, lambda epoch: (epoch + 1) / 5 if epoch < 5 else 0.95 ** (epoch - 4))
"""

from __future__ import annotations

import types

from convstack.nn.functional._utils import invalid
from convstack.optim.lr_scheduler import LRScheduler, _copy
from convstack.optim.optimizer import Optimizer


class _FactorSchedule(LRScheduler):
    """Holds one factor function per parameter group (``lr_lambdas``) and saves what of them is data."""

    def __init__(self, optimizer: Optimizer, lr_lambda, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        op = type(self).__name__
        groups = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != groups:
                raise invalid(op, "lr_lambda", f"a function, or one function per parameter group ({groups})",
                              f"a list of {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * groups
        for function in self.lr_lambdas:
            if not callable(function):
                raise TypeError(f"{op}: lr_lambda should be a function, but got {type(function).__name__}")
        super().__init__(optimizer, last_epoch)

    def state_dict(self) -> dict:
        state = {key: _copy(value) for key, value in self.__dict__.items() if key not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else _copy(dict(fn.__dict__))
                               for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state = dict(state_dict)
        saved = state.pop("lr_lambdas", [None] * len(self.lr_lambdas))
        self.__dict__.update({key: _copy(value) for key, value in state.items()})
        for function, attributes in zip(self.lr_lambdas, saved):
            if attributes is not None:
                function.__dict__.update(_copy(attributes))


class LambdaLR(_FactorSchedule):
    """``lr = base_lr * lr_lambda(epoch)``, one function for every group or one per group.

    Args:
        optimizer: the optimizer.
        lr_lambda: a function of the epoch (an int from 0) giving the factor, or a list of them.
        last_epoch: see ``LRScheduler``.

    Examples:
        >>> scheduler = LambdaLR(optimizer, lr_lambda=lambda epoch: 0.95 ** epoch)
    """

    def get_lr(self) -> list:
        return [base * function(self.last_epoch) for function, base in zip(self.lr_lambdas, self.base_lrs)]


class MultiplicativeLR(_FactorSchedule):
    """Multiply each group's rate by ``lr_lambda(epoch)`` at every step after the first (chainable).

    Examples:
        >>> scheduler = MultiplicativeLR(optimizer, lr_lambda=lambda epoch: 0.95)
    """

    def get_lr(self) -> list:
        if self._is_initial:
            return self._current_lrs()
        return [group["lr"] * function(self.last_epoch)
                for function, group in zip(self.lr_lambdas, self.optimizer.param_groups)]
