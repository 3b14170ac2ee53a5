"""Regression losses on ``input - target``: squared (MSE), absolute (L1), and the two that join them,
Huber (Huber 1964) and smooth L1 (Girshick 2015, Fast R-CNN's box regression).

Huber is quadratic near zero and linear beyond ``delta``; smooth L1 is Huber divided by its
``beta``, so its linear part has slope 1 whatever ``beta`` (and ``beta = 0`` is L1). Both are
one op, with gradients for the input and the target.
"""

from __future__ import annotations

import numbers

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._reduction import apply_reduction, check_reduction, check_same_shape, float_target
from convstack.nn.functional._utils import invalid
from convstack.tensor import Tensor, as_tensor


class Huber(Function):
    """``scale * (0.5 d^2 if |d| < delta else delta (|d| - delta / 2))`` with ``d = input - target``."""

    def forward(self, input, target, *, delta, scale):
        xp = get_array_module(input)
        difference = input - target
        magnitude = xp.abs(difference)
        self.quadratic = magnitude < delta
        # slope d/d(difference): d inside, delta * sign(d) outside
        self.slope = xp.where(self.quadratic, difference, delta * xp.sign(difference)) * scale
        linear = delta * (magnitude - 0.5 * delta)
        return xp.where(self.quadratic, 0.5 * difference * difference, linear) * scale

    def backward(self, grad):
        grad_input = grad * self.slope
        return grad_input, (-grad_input if self.needs_input_grad[1] else None)


def _positive(op: str, name: str, value, allow_zero: bool) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise invalid(op, name, "a non-negative number" if allow_zero else "a positive number", value)
    return float(value)


def mse_loss(input, target, reduction: str = "mean") -> Tensor:
    """Squared error ``(input - target) ** 2``, reduced.

    Shape:
        - Input and target: the same shape. Output: scalar, or that shape with ``reduction='none'``.

    Examples:
        >>> F.mse_loss(cs.tensor([1.0, 2.0]), cs.tensor([0.0, 0.0]))
        tensor(2.5)
    """
    input, target = as_tensor(input), as_tensor(target)
    check_reduction("mse_loss", reduction)
    check_same_shape("mse_loss", input, target)
    difference = input - target
    return apply_reduction(difference * difference, reduction)


def l1_loss(input, target, reduction: str = "mean") -> Tensor:
    """Absolute error ``|input - target|``, reduced.

    Shape:
        - Input and target: the same shape. Output: scalar, or that shape with ``reduction='none'``.

    Examples:
        >>> F.l1_loss(cs.tensor([1.0, -2.0]), cs.tensor([0.0, 0.0]))
        tensor(1.5)
    """
    input, target = as_tensor(input), as_tensor(target)
    check_reduction("l1_loss", reduction)
    check_same_shape("l1_loss", input, target)
    return apply_reduction((input - target).abs(), reduction)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """Huber loss: ``0.5 d^2`` for ``|d| < delta``, ``delta (|d| - delta / 2)`` beyond, ``d = input - target``.

    Squared error for small residuals, absolute error (scaled by ``delta``) for outliers.

    Args:
        input, target: float tensors of the same shape.
        reduction: ``'mean'``, ``'sum'`` or ``'none'``.
        delta: where the quadratic part gives way to the linear one (positive).

    Shape:
        - Output: scalar, or the input's shape with ``reduction='none'``.

    Examples:
        >>> F.huber_loss(cs.tensor([0.5, 3.0]), cs.zeros(2), reduction="none")
        tensor([0.125, 2.5  ])
    """
    op = "huber_loss"
    input = as_tensor(input)
    check_reduction(op, reduction)
    target = float_target(op, input, target)
    loss = Huber.apply(input, target, delta=_positive(op, "delta", delta, False), scale=1.0)
    return apply_reduction(loss, reduction)


def smooth_l1_loss(input, target, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """Smooth L1 loss: ``0.5 d^2 / beta`` for ``|d| < beta``, ``|d| - beta / 2`` beyond, ``d = input - target``.

    Equal to ``huber_loss(input, target, delta=beta) / beta``; ``beta = 0`` gives the L1 loss.

    Args:
        input, target: float tensors of the same shape.
        reduction: ``'mean'``, ``'sum'`` or ``'none'``.
        beta: the width of the quadratic part (non-negative).

    Shape:
        - Output: scalar, or the input's shape with ``reduction='none'``.

    Examples:
        >>> F.smooth_l1_loss(cs.tensor([0.5, 3.0]), cs.zeros(2), reduction="none", beta=2.0)
        tensor([0.0625, 2.    ])
    """
    op = "smooth_l1_loss"
    input = as_tensor(input)
    check_reduction(op, reduction)
    target = float_target(op, input, target)
    beta = _positive(op, "beta", beta, True)
    if beta == 0:
        return apply_reduction((input - target).abs(), reduction)
    return apply_reduction(Huber.apply(input, target, delta=beta, scale=1.0 / beta), reduction)
