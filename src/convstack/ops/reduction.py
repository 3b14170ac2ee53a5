"""Reductions over dimensions: sum, mean, max/min (with indices), var; and the running sum cumsum."""

from __future__ import annotations

from convstack.autograd import Function
from convstack.backend import get_array_module


def normalize_dims(dim, ndim: int, op: str):
    """``dim`` (None, int or sequence) as a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    resolved = []
    for d in dims:
        if not isinstance(d, int) or not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(
                f"{op}: dimension out of range (expected to be in range of "
                f"[{-max(ndim, 1)}, {max(ndim, 1) - 1}], but got {d})"
            )
        resolved.append(d % ndim if ndim else 0)
    return tuple(sorted(set(resolved)))


def _expand_reduced(grad, shape, axes, keepdim):
    """Reshape a reduced gradient so it broadcasts against the input ``shape``."""
    if not keepdim and shape:
        grad = grad.reshape([1 if i in axes else s for i, s in enumerate(shape)])
    return grad


class Sum(Function):
    def forward(self, a, *, axes, keepdim):
        self.shape, self.axes, self.keepdim = a.shape, axes, keepdim
        return a.sum(axis=axes, keepdims=keepdim)

    def backward(self, grad):
        xp = get_array_module(grad)
        grad = _expand_reduced(grad, self.shape, self.axes, self.keepdim)
        return (xp.broadcast_to(grad, self.shape),)


class Mean(Function):
    def forward(self, a, *, axes, keepdim):
        self.shape, self.axes, self.keepdim = a.shape, axes, keepdim
        self.count = 1
        for ax in axes:
            self.count *= a.shape[ax]
        return a.mean(axis=axes, keepdims=keepdim)

    def backward(self, grad):
        xp = get_array_module(grad)
        grad = _expand_reduced(grad, self.shape, self.axes, self.keepdim)
        return (xp.broadcast_to(grad / self.count, self.shape),)


class Var(Function):
    """Variance with Bessel-style ``correction`` (1 = unbiased, as PyTorch's default)."""

    def forward(self, a, *, axes, keepdim, correction):
        xp = get_array_module(a)
        self.axes, self.keepdim, self.shape = axes, keepdim, a.shape
        count = 1
        for ax in axes:
            count *= a.shape[ax]
        self.centered = a - a.mean(axis=axes, keepdims=True)
        self.divisor = max(count - correction, 0)
        with_nan = xp.errstate(divide="ignore", invalid="ignore") if xp.__name__ == "numpy" else _null()
        with with_nan:
            return (self.centered**2).sum(axis=axes, keepdims=keepdim) / self.divisor

    def backward(self, grad):
        grad = _expand_reduced(grad, self.shape, self.axes, self.keepdim)
        return (grad * 2 * self.centered / self.divisor,)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class MaxMin(Function):
    """Max or min over one dimension, with the indices of the winners.

    The gradient goes to the first winning element, as ``torch.max(x, dim)`` does.
    Reducing over all elements (``dim=None``) splits the gradient evenly among ties,
    as ``torch.max(x)`` does.
    """

    def forward(self, a, *, dim, keepdim, largest):
        xp = get_array_module(a)
        self.shape, self.dim, self.keepdim = a.shape, dim, keepdim
        if dim is None:
            value = a.max() if largest else a.min()
            self.mask = a == value
            return value
        arg = a.argmax(axis=dim) if largest else a.argmin(axis=dim)
        arg_kept = xp.expand_dims(arg, dim)
        values = xp.take_along_axis(a, arg_kept, axis=dim)
        self.arg_kept = arg_kept
        if not keepdim:
            values = values.squeeze(dim)
            return values, arg
        return values, arg_kept

    def backward(self, grad):
        xp = get_array_module(grad)
        if self.dim is None:
            return (self.mask * (grad / self.mask.sum()),)
        if not self.keepdim:
            grad = xp.expand_dims(grad, self.dim)
        out = xp.zeros(self.shape, dtype=grad.dtype)
        xp.put_along_axis(out, self.arg_kept, grad, axis=self.dim)
        return (out,)


class Cumsum(Function):
    """Running sum along ``dim``; its gradient is the running sum of the gradient taken from the other end."""

    def forward(self, a, *, dim, dtype):
        xp = get_array_module(a)
        self.dim = dim
        if dtype is None and a.dtype.kind in "biu":
            dtype = xp.int64  # PyTorch sums integers and booleans in int64
        return xp.cumsum(a, axis=dim, dtype=dtype)

    def backward(self, grad):
        xp = get_array_module(grad)
        return (xp.flip(xp.cumsum(xp.flip(grad, axis=self.dim), axis=self.dim), axis=self.dim),)
