"""Element-wise maths: exp, log, sqrt, abs, clamp, where."""

from __future__ import annotations

from convstack.autograd import Function
from convstack.backend import get_array_module


class Exp(Function):
    def forward(self, a):
        self.out = get_array_module(a).exp(a)
        return self.out

    def backward(self, grad):
        return (grad * self.out,)


class Log(Function):
    def forward(self, a):
        self.a = a
        return get_array_module(a).log(a)

    def backward(self, grad):
        return (grad / self.a,)


class Sqrt(Function):
    def forward(self, a):
        self.out = get_array_module(a).sqrt(a)
        return self.out

    def backward(self, grad):
        return (grad / (2 * self.out),)


class Abs(Function):
    def forward(self, a):
        xp = get_array_module(a)
        self.sign = xp.sign(a)
        return xp.abs(a)

    def backward(self, grad):
        return (grad * self.sign,)


class Clamp(Function):
    """Clip to ``[min, max]``; the gradient passes where the input was inside (inclusive)."""

    def forward(self, a, *, min=None, max=None):  # noqa: A002 - PyTorch's argument names
        xp = get_array_module(a)
        mask = xp.ones(a.shape, dtype=bool)
        if min is not None:
            mask &= a >= min
        if max is not None:
            mask &= a <= max
        self.mask = mask
        return xp.clip(a, min, max).astype(a.dtype, copy=False)

    def backward(self, grad):
        return (grad * self.mask,)


class Where(Function):
    """``where(condition, a, b)``; ``condition`` is a fixed boolean array."""

    def forward(self, a, b, *, condition):
        xp = get_array_module(a, b)
        self.condition, self.a_shape, self.b_shape = condition, a.shape, b.shape
        return xp.where(condition, a, b)

    def backward(self, grad):
        from convstack.ops.arithmetic import unbroadcast

        xp = get_array_module(grad)
        zero = xp.zeros((), dtype=grad.dtype)
        grad_a = unbroadcast(xp.where(self.condition, grad, zero), self.a_shape)
        grad_b = unbroadcast(xp.where(self.condition, zero, grad), self.b_shape)
        return grad_a, grad_b
