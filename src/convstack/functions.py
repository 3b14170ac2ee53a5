"""Free functions over tensors: cat, stack, where, the element-wise maths, and the selection, sorting and
running-sum ops (``convstack.gather(t, dim, index)`` is ``t.gather(dim, index)``), as in ``torch``."""

from __future__ import annotations

from convstack import backend
from convstack.ops import elementwise, shape
from convstack.tensor import Tensor, _operand, as_tensor


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


def where(condition, input=None, other=None):  # noqa: A002 - PyTorch's argument names
    """``input`` where ``condition`` is True, ``other`` elsewhere (all three broadcast), as ``torch.where``.

    ``input`` and ``other`` may be numbers (they take the other operand's dtype). With the
    condition alone: the indices of its True elements, one int64 tensor per dimension.
    """
    condition = condition.data if isinstance(condition, Tensor) else backend.numpy.asarray(condition)
    if condition.dtype != bool:
        raise TypeError(f"where: expected a boolean condition, received dtype {condition.dtype}")
    if input is None and other is None:
        xp = backend.get_array_module(condition)
        return tuple(Tensor._make(i.astype(xp.int64, copy=False)) for i in xp.nonzero(condition))
    if input is None or other is None:
        raise TypeError("where: expected both `input` and `other`, or neither")
    if isinstance(input, Tensor) or not isinstance(other, Tensor):
        input = as_tensor(input) if not isinstance(input, Tensor) else input
        other = _operand(other, input)
    else:
        input = _operand(input, other)
    return elementwise.Where.apply(input, other, condition=condition)


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


clip = clamp


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


def gather(input, dim, index):  # noqa: A002 - PyTorch's argument names
    return as_tensor(input).gather(dim, index)


def scatter(input, dim, index, src=None, *, value=None):  # noqa: A002
    return as_tensor(input).scatter(dim, index, src, value=value)


def scatter_add(input, dim, index, src):  # noqa: A002
    return as_tensor(input).scatter_add(dim, index, src)


def index_select(input, dim, index):  # noqa: A002
    return as_tensor(input).index_select(dim, index)


def masked_fill(input, mask, value):  # noqa: A002
    return as_tensor(input).masked_fill(mask, value)


def sort(input, dim=-1, descending=False, stable=False):  # noqa: A002
    return as_tensor(input).sort(dim, descending, stable)


def argsort(input, dim=-1, descending=False, stable=False):  # noqa: A002
    return as_tensor(input).argsort(dim, descending, stable)


def topk(input, k, dim=-1, largest=True, sorted=True):  # noqa: A002
    return as_tensor(input).topk(k, dim, largest, sorted)


def cumsum(input, dim, *, dtype=None):  # noqa: A002
    return as_tensor(input).cumsum(dim, dtype=dtype)
