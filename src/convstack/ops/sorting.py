"""Sorting along a dimension, with gradients: sort, argsort, topk.

Orders are PyTorch's: NaN sorts as the largest value (last ascending, first descending), and
the sort is stable either way (equal elements keep their order), so ``stable=True`` and
``stable=False`` give the same, reproducible, result. The values' gradient goes back to the
positions they came from (a permutation, so no two outputs share an input).
"""

from __future__ import annotations

import numbers

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.ops.selection import axis, invalid


def sorted_indices(a, dim: int, descending: bool):
    """Stable argsort of ``a`` along ``dim``, ascending or descending, NaN counted as the largest.

    Descending without negating (which would break unsigned and boolean dtypes and move NaN):
    a stable ascending sort of the reversed array, reversed back, keeps equal elements in
    their original order.
    """
    xp = get_array_module(a)
    if not descending:
        return xp.argsort(a, axis=dim, kind="stable")
    size = a.shape[dim]
    backwards = xp.flip(a, axis=dim)
    order = xp.flip(xp.argsort(backwards, axis=dim, kind="stable"), axis=dim)
    return (size - 1) - order


def _select(a, dim: int, largest: bool, count: int):
    """The indices of the ``count`` largest (smallest) elements along ``dim``, in sorted order: a linear-time
    partition, then a sort of the ``count`` candidates only. Candidates are put in index order before the
    stable sort, so equal values among them come out in their original order."""
    xp = get_array_module(a)
    size = a.shape[dim]
    kth = size - count if largest else count - 1
    partitioned = xp.argpartition(a, kth, axis=dim)
    keep = xp.arange(size - count, size) if largest else xp.arange(count)
    candidates = xp.sort(xp.take(partitioned, keep, axis=dim), axis=dim)
    order = sorted_indices(xp.take_along_axis(a, candidates, axis=dim), dim, largest)
    return xp.take_along_axis(candidates, order, axis=dim)


class Sort(Function):
    """Values sorted along ``dim`` and the int64 indices they came from."""

    def forward(self, a, *, dim, descending, count):
        xp = get_array_module(a)
        if count is not None and 0 < count < a.shape[dim]:
            indices = _select(a, dim, descending, count)
        else:
            indices = sorted_indices(a, dim, descending)
            if count is not None:  # topk of all (or none): the first ``count`` of the order
                indices = xp.take(indices, xp.arange(count), axis=dim)
        self.shape, self.dim, self.indices = a.shape, dim, indices
        return xp.take_along_axis(a, indices, axis=dim), indices.astype(xp.int64, copy=False)

    def backward(self, grad):
        xp = get_array_module(grad)
        out = xp.zeros(self.shape, dtype=grad.dtype)
        xp.put_along_axis(out, self.indices, grad, axis=self.dim)
        return (out,)


def _check_flag(op: str, name: str, value) -> None:
    if not isinstance(value, bool):
        raise invalid(op, name, "True or False", value)


def _sortable(op: str, input, dim, flags: dict):
    for name, value in flags.items():
        _check_flag(op, name, value)
    if input.ndim == 0:
        return None  # a 0-D tensor is its own sorted order
    return axis(op, dim, input.ndim)


def sort(input, dim=-1, descending: bool = False, stable: bool = False):
    """``(values, indices)``: ``input`` sorted along ``dim``, as ``torch.sort`` (always stable here)."""
    dim = _sortable("sort", input, dim, {"descending": descending, "stable": stable})
    if dim is None:
        return _zero_d(input)
    return Sort.apply(input, dim=dim, descending=descending, count=None)


def _zero_d(input):
    """``sort``/``topk`` of a 0-D tensor: the tensor itself (differentiably) and index 0."""
    values, indices = Sort.apply(input.reshape(1), dim=0, descending=False, count=None)
    return values.reshape(()), indices.reshape(())


def argsort(input, dim=-1, descending: bool = False, stable: bool = False):
    """The int64 indices that sort ``input`` along ``dim`` (no gradient), as ``torch.argsort``."""
    from convstack.autograd import no_grad

    with no_grad():
        return sort(input, dim, descending, stable)[1]


def topk(input, k, dim=-1, largest: bool = True, sorted: bool = True):  # noqa: A002 - PyTorch's argument name
    """``(values, indices)`` of the ``k`` largest (or smallest) elements along ``dim``, in order, as ``torch.topk``.

    ``sorted=False`` is accepted; the values come sorted either way. Found by a linear-time
    partition: when several elements equal the k-th value, which of them are kept is
    unspecified (as in PyTorch); those kept come in index order.
    """
    op = "topk"
    dim = _sortable(op, input, dim, {"largest": largest, "sorted": sorted})
    size = 1 if dim is None else input.shape[dim]
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 <= k <= size:
        raise invalid(op, "k", f"an integer in [0, {size}] (the size of dimension {dim})", k,
                      f"input shape {input.shape}")
    if dim is None:
        return _zero_d(input)
    return Sort.apply(input, dim=dim, descending=bool(largest), count=int(k))
