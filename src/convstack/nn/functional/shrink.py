"""Shrinkage activations: hardshrink, softshrink and tanhshrink, each forward beside its backward.

``hardshrink`` and ``softshrink`` zero the band ``[-lambd, lambd]`` (the proximal operators of
the L0 and L1 penalties, the latter as in ISTA's soft thresholding); their gradient is 1
strictly outside the band and 0 inside it and on its edges, as in PyTorch.
"""

from __future__ import annotations

import numbers

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._utils import invalid
from convstack.nn.functional.activation import _float_input
from convstack.tensor import Tensor


class Hardshrink(Function):
    def forward(self, x, *, lambd):
        xp = get_array_module(x)
        self.outside = xp.abs(x) > lambd
        return x * self.outside

    def backward(self, grad):
        return (grad * self.outside,)


class Softshrink(Function):
    def forward(self, x, *, lambd):
        xp = get_array_module(x)
        self.outside = xp.abs(x) > lambd
        return x - xp.clip(x, -lambd, lambd).astype(x.dtype, copy=False)  # x - lambd sign(x) outside, 0 inside

    def backward(self, grad):
        return (grad * self.outside,)


class Tanhshrink(Function):
    def forward(self, x):
        self.tanh = get_array_module(x).tanh(x)
        return x - self.tanh

    def backward(self, grad):
        return (grad * (self.tanh * self.tanh),)  # 1 - (1 - tanh^2)


def _lambd(op: str, value, minimum=None) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or (minimum is not None and value < minimum):
        raise invalid(op, "lambd", "a real number" if minimum is None else f"a number >= {minimum}", value)
    return float(value)


def hardshrink(input, lambd: float = 0.5) -> Tensor:
    """``x`` where ``|x| > lambd``, 0 elsewhere.

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.hardshrink(cs.tensor([-1.0, 0.25, 0.75]))
        tensor([-1.  ,  0.  ,  0.75])
    """
    return Hardshrink.apply(_float_input("hardshrink", input), lambd=_lambd("hardshrink", lambd))


def softshrink(input, lambd: float = 0.5) -> Tensor:
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, 0 between; ``lambd >= 0``.

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.softshrink(cs.tensor([-1.0, 0.25, 0.75]))
        tensor([-0.5 ,  0.  ,  0.25])
    """
    return Softshrink.apply(_float_input("softshrink", input), lambd=_lambd("softshrink", lambd, minimum=0))


def tanhshrink(input) -> Tensor:
    """``x - tanh(x)``.

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.tanhshrink(cs.tensor([0.0]))
        tensor([0.])
    """
    return Tanhshrink.apply(_float_input("tanhshrink", input))
