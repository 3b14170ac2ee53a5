"""What every loss shares: the ``reduction`` argument, its application, and the shape checks on targets."""

from __future__ import annotations

import numpy

from convstack.backend import get_array_module
from convstack.nn.functional._utils import invalid, shape_context
from convstack.tensor import Tensor, as_tensor

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(op: str, reduction, choices: tuple = REDUCTIONS) -> None:
    if reduction not in choices:
        expected = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
        raise invalid(op, "reduction", expected, reduction)


def apply_reduction(loss: Tensor, reduction: str, denominator=None) -> Tensor:
    """``loss`` summed, averaged (over elements, or divided by ``denominator``) or left as is."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if denominator is None:
        return loss.mean()
    return loss.sum() / Tensor._make(get_array_module(loss.data).asarray(denominator, dtype=loss.dtype))


def check_same_shape(op: str, input: Tensor, target: Tensor) -> None:
    if input.shape != target.shape:
        raise ValueError(
            f"{op}: input and target must have the same shape, received "
            f"{shape_context(input=input.shape, target=target.shape)}"
        )


def float_target(op: str, input: Tensor, target) -> Tensor:
    """``target`` as a tensor of the input's float dtype, checked to have the input's shape."""
    target = as_tensor(target)
    check_same_shape(op, input, target)
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point input, received dtype {input.dtype}")
    return target if target.dtype == input.dtype else target.to(input.dtype)


def broadcast_option(op: str, name: str, value, input: Tensor):
    """An optional weight as an array of the input's dtype that broadcasts to the input's shape, or None."""
    if value is None:
        return None
    array = as_tensor(value).data.astype(input.dtype, copy=False)
    try:
        broadcast = numpy.broadcast_shapes(array.shape, input.shape)  # shape arithmetic only
    except ValueError:
        broadcast = None
    if broadcast != input.shape:
        raise ValueError(
            f"{op}: {name} must broadcast to the input's shape, received "
            f"{shape_context(input=input.shape, **{name: array.shape})}"
        )
    return array
