"""Indexing and slicing with gradient."""

from __future__ import annotations

from convstack.autograd import Function
from convstack.backend import get_array_module


def _is_basic(index) -> bool:
    """True when ``index`` uses only ints, slices, None and Ellipsis (a view, no repeats)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(item is None or item is Ellipsis or isinstance(item, (int, slice)) for item in items)


class GetItem(Function):
    def forward(self, a, *, index):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        return a[index]

    def backward(self, grad):
        xp = get_array_module(grad)
        out = xp.zeros(self.shape, dtype=grad.dtype)
        if _is_basic(self.index):
            out[self.index] = grad
        else:
            # Advanced indices may repeat an element: accumulate, don't overwrite.
            xp.add.at(out, self.index, grad)
        return (out,)
