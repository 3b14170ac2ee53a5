"""Element-wise maths: exp, log, sqrt, abs, clamp (to numbers or to tensors), where."""

from __future__ import annotations

import numbers

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
        self.mask = self.inside(a, min, max)
        return get_array_module(a).clip(a, min, max).astype(a.dtype, copy=False)

    @staticmethod
    def inside(a, low, high):
        """Where ``low <= a <= high`` (either bound None: open): where the gradient passes."""
        mask = get_array_module(a).ones(a.shape, dtype=bool)
        if low is not None:
            mask &= a >= low
        if high is not None:
            mask &= a <= high
        return mask

    def backward(self, grad):
        return (grad * self.mask,)


class ClampTensor(Function):
    """Clip to tensor bounds (broadcasting); inputs ``a`` then ``min`` and/or ``max`` (``has_min``/``has_max``).

    Gradients as PyTorch's ``clamp.Tensor``: ``a`` where ``min <= a <= max``; ``min`` where
    ``a < min`` (and ``min < max`` when both are given); ``max`` where ``a > max`` (or wherever
    ``max < min``, since then the output is ``max``).
    """

    def forward(self, a, *bounds, has_min, has_max):
        xp = get_array_module(a, *bounds)
        low = bounds[0] if has_min else None
        high = bounds[-1] if has_max else None
        self.a, self.low, self.high = a, low, high
        out = a
        if low is not None:
            out = xp.maximum(out, low)
        if high is not None:
            out = xp.minimum(out, high)
        return out

    def backward(self, grad):
        from convstack.ops.arithmetic import unbroadcast

        a, low, high = self.a, self.low, self.high
        grads = []
        inside = True
        if low is not None:
            inside = inside & (a >= low)
        if high is not None:
            inside = inside & (a <= high)
        grads.append(unbroadcast(grad * inside, a.shape) if self.needs_input_grad[0] else None)
        if low is not None:
            below = a < low if high is None else (a < low) & (low < high)
            grads.append(unbroadcast(grad * below, low.shape) if self.needs_input_grad[1] else None)
        if high is not None:
            above = a > high if low is None else (a > high) | (high < low)
            grads.append(unbroadcast(grad * above, high.shape) if self.needs_input_grad[-1] else None)
        return tuple(grads)


def clamp(input, min=None, max=None):  # noqa: A002 - PyTorch's argument names
    """``input`` clipped to ``[min, max]``: numbers (``Clamp``) or tensors that broadcast (``ClampTensor``)."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of `min` and `max` must be given")
    if all(bound is None or isinstance(bound, numbers.Number) for bound in (min, max)):
        return Clamp.apply(input, min=min, max=max)
    xp = get_array_module(input.data)
    bounds = [xp.asarray(bound, dtype=input.dtype) if isinstance(bound, numbers.Number) else bound
              for bound in (min, max) if bound is not None]
    return ClampTensor.apply(input, *bounds, has_min=min is not None, has_max=max is not None)


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
