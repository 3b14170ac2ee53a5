"""Smooth ReLU-like activations: ``softplus``, ``silu`` (swish) and ``mish``, each forward beside its backward.

``softplus`` (Dugas et al. 2001) is the smooth ReLU ``log(1 + e^x)``; ``silu`` ``x sigmoid(x)``
(Elfwing et al. 2018, "swish" in Ramachandran et al. 2017) gates x by its own sigmoid;
``mish`` ``x tanh(softplus(x))`` (Misra 2019) does so with a tanh. All are evaluated so that
no exponential overflows: ``softplus(z) = max(z, 0) + log1p(exp(-|z|))``.
"""

from __future__ import annotations

import numbers

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._utils import invalid
from convstack.nn.functional.activation import _float_input
from convstack.tensor import Tensor


def _softplus(z):
    """``log(1 + e^z)`` for any z, without overflow."""
    xp = get_array_module(z)
    return xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))


def _sigmoid(z):
    """``1 / (1 + e^-z)`` as ``exp(min(z, 0)) / (1 + exp(-|z|))``: never overflows."""
    xp = get_array_module(z)
    return xp.exp(xp.minimum(z, 0)) / (1 + xp.exp(-xp.abs(z)))


class Softplus(Function):
    """``log(1 + exp(beta x)) / beta``, and ``x`` itself where ``beta x > threshold`` (as PyTorch)."""

    def forward(self, x, *, beta, threshold):
        z = x * beta
        self.linear = z > threshold
        self.z = z
        return (x * self.linear + ~self.linear * (_softplus(z) / beta)).astype(x.dtype, copy=False)

    def backward(self, grad):
        # d/dx softplus(beta x) / beta = sigmoid(beta x); 1 on the linear part
        return (grad * (self.linear + ~self.linear * _sigmoid(self.z)),)


class SiLU(Function):
    def forward(self, x):
        self.x, self.sigmoid = x, _sigmoid(x)
        return x * self.sigmoid

    def backward(self, grad):
        s = self.sigmoid
        return (grad * s * (1 + self.x * (1 - s)),)


class Mish(Function):
    def forward(self, x):
        xp = get_array_module(x)
        self.x, self.tanh = x, xp.tanh(_softplus(x))
        return x * self.tanh

    def backward(self, grad):
        t = self.tanh
        # d/dx x tanh(sp(x)) = tanh(sp) + x (1 - tanh(sp)^2) sigmoid(x)
        return (grad * (t + self.x * (1 - t * t) * _sigmoid(self.x)),)


def softplus(input, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta * x)) / beta``, element-wise; linear (``x``) where ``beta * x > threshold``.

    Args:
        input: float tensor of any shape.
        beta: sharpness; larger values approach ReLU.
        threshold: above ``beta * x > threshold`` the result is ``x`` (the difference is below float precision).

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.softplus(cs.tensor([0.0, 30.0]))
        tensor([ 0.6931, 30.    ])
    """
    for name, value in (("beta", beta), ("threshold", threshold)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise invalid("softplus", name, "a number", value)
    if beta == 0:
        raise invalid("softplus", "beta", "a non-zero number", beta)
    return Softplus.apply(_float_input("softplus", input), beta=float(beta), threshold=float(threshold))


def silu(input, inplace: bool = False) -> Tensor:
    """``x * sigmoid(x)`` (SiLU, also called swish), element-wise. ``inplace`` is accepted and ignored.

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.silu(cs.tensor([0.0, 1.0]))
        tensor([0.    , 0.7311])
    """
    return SiLU.apply(_float_input("silu", input))


def mish(input, inplace: bool = False) -> Tensor:
    """``x * tanh(softplus(x))``, element-wise. ``inplace`` is accepted and ignored.

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.mish(cs.tensor([0.0, 1.0]))
        tensor([0.    , 0.8651])
    """
    return Mish.apply(_float_input("mish", input))
