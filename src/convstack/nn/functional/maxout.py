"""Maxout (Goodfellow et al. 2013, "Maxout Networks"): the maximum over groups of consecutive channels.

Also called cross-channel pooling (Goodfellow et al., Deep Learning §9.3): pooling over
``k`` feature maps rather than over space lets a layer learn which transformations to be
invariant to. Output channel ``c`` is ``max(x[c * k], ..., x[c * k + k - 1])``.
"""

from __future__ import annotations

import numbers

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._utils import invalid, shape_context
from convstack.tensor import Tensor, as_tensor


class Maxout(Function):
    """Max over groups of ``pool_size`` consecutive entries along ``dim``; the gradient goes to the first maximum."""

    def forward(self, x, *, pool_size, dim):
        groups = x.shape[dim] // pool_size
        grouped = x.reshape(x.shape[:dim] + (groups, pool_size) + x.shape[dim + 1 :])  # (..., C / k, k, ...)
        self.winner = grouped.argmax(axis=dim + 1)  # (..., C / k, ...)
        self.grouped_shape, self.dim = grouped.shape, dim
        return grouped.max(axis=dim + 1)

    def backward(self, grad):
        xp = get_array_module(grad)
        dim, pool_size = self.dim, self.grouped_shape[self.dim + 1]
        offsets = xp.arange(pool_size).reshape((pool_size,) + (1,) * (grad.ndim - dim - 1))  # (k, 1, ..., 1)
        one_hot = xp.expand_dims(self.winner, dim + 1) == offsets  # (..., C / k, k, ...)
        grad_grouped = xp.expand_dims(grad, dim + 1) * one_hot
        shape = self.grouped_shape
        return (grad_grouped.reshape(shape[: dim] + (shape[dim] * pool_size,) + shape[dim + 2 :]),)


def maxout(input, pool_size: int, dim: int = 1) -> Tensor:
    """The maximum over each group of ``pool_size`` consecutive channels (maxout / cross-channel pooling).

    Args:
        input: a float tensor, e.g. (N, C, *).
        pool_size: channels per group ``k``; must divide ``input.shape[dim]``.
        dim: the channel dimension (default 1).

    Shape:
        Input (N, C, *), output (N, C / k, *).

    Examples:
        >>> F.maxout(cs.tensor([[1.0, 3.0, -2.0, -5.0]]), 2)
        tensor([[ 3., -2.]])
    """
    op = "maxout"
    input = as_tensor(input)
    context = shape_context(input=input.shape)
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point input, received dtype {input.dtype}")
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not -input.ndim <= dim < input.ndim:
        raise invalid(op, "dim", f"an integer in [{-input.ndim}, {input.ndim - 1}]", dim, context)
    dim = int(dim) % input.ndim
    channels = input.shape[dim]
    if isinstance(pool_size, bool) or not isinstance(pool_size, numbers.Integral) or pool_size < 1:
        raise invalid(op, "pool_size", "a positive integer", pool_size, context)
    if channels % pool_size:
        raise invalid(op, "pool_size", f"a divisor of the {channels} entries of dimension {dim}", pool_size, context)
    return Maxout.apply(input, pool_size=int(pool_size), dim=dim)
