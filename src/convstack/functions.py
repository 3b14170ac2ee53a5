"""Free functions over tensors: cat, stack, where, and the element-wise maths."""

from __future__ import annotations

from convstack.ops import elementwise, shape
from convstack.tensor import Tensor, as_tensor


def _check_join(tensors, dim, op):
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    return tensors


def cat(tensors, dim: int = 0) -> Tensor:
    """Join tensors along an existing dimension ``dim``."""
    tensors = _check_join(tensors, dim, "cat")
    ndim = tensors[0].ndim
    axis = dim % ndim
    for i, t in enumerate(tensors):
        if (
            t.ndim != ndim
            or t.shape[:axis] + t.shape[axis + 1 :] != tensors[0].shape[:axis] + tensors[0].shape[axis + 1 :]
        ):
            raise ValueError(
                f"cat: sizes of tensors must match except in dimension {dim}; "
                f"tensor 0 has shape {tensors[0].shape}, tensor {i} has shape {t.shape}"
            )
    return shape.Cat.apply(*tensors, dim=axis)


def stack(tensors, dim: int = 0) -> Tensor:
    """Join tensors of equal shape along a new dimension ``dim``."""
    tensors = _check_join(tensors, dim, "stack")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(
                f"stack: expects each tensor to be equal size, but got {tensors[0].shape} "
                f"at entry 0 and {t.shape} at entry {i}"
            )
    return shape.Stack.apply(*tensors, dim=dim % (tensors[0].ndim + 1))


def where(condition, input, other) -> Tensor:  # noqa: A002 - PyTorch's argument names
    condition = condition.data if isinstance(condition, Tensor) else condition
    a, b = as_tensor(input), as_tensor(other)
    return elementwise.Where.apply(a, b, condition=condition)


def exp(t):
    return as_tensor(t).exp()


def log(t):
    return as_tensor(t).log()


def sqrt(t):
    return as_tensor(t).sqrt()


def abs(t):  # noqa: A001 - PyTorch's name
    return as_tensor(t).abs()


def clamp(t, min=None, max=None):  # noqa: A002
    return as_tensor(t).clamp(min, max)


def sum(t, dim=None, keepdim=False):  # noqa: A001
    return as_tensor(t).sum(dim, keepdim)


def mean(t, dim=None, keepdim=False):
    return as_tensor(t).mean(dim, keepdim)


def flatten(t, start_dim=0, end_dim=-1):
    return as_tensor(t).flatten(start_dim, end_dim)


def matmul(a, b):
    return as_tensor(a) @ as_tensor(b)


def argmax(t, dim=None, keepdim=False):
    return as_tensor(t).argmax(dim, keepdim)
