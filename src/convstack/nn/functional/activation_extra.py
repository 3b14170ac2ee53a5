"""More point-wise activations, PyTorch's names and signatures: hardtanh, threshold, celu, selu,
logsigmoid, softsign, glu and softmin, each forward beside its backward.

Backward passes multiply by 0/1 masks, as in ``activation`` (NumPy's ``where`` is slow on
unpredictable masks). Kinks follow PyTorch's choices, so gradients agree at the break points too: ``hardtanh``
passes the gradient strictly inside ``(min_val, max_val)``, ``threshold`` strictly above
``threshold``, and ``celu``/``selu`` take their negative branch at ``x = 0``.
``inplace=True`` is accepted and ignored, as by the other activations.
"""

from __future__ import annotations

import numbers

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._utils import invalid
from convstack.nn.functional.activation import Softmax, _float_input, _softmax_family
from convstack.tensor import Tensor

# Klambauer et al., "Self-Normalizing Neural Networks" (2017), the fixed point of mean 0 / variance 1.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _number(op: str, argument: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise invalid(op, argument, "a real number", value)
    return float(value)


class Hardtanh(Function):
    def forward(self, x, *, min_val, max_val):
        xp = get_array_module(x)
        self.inside = (x > min_val) & (x < max_val)
        return xp.clip(x, min_val, max_val).astype(x.dtype, copy=False)

    def backward(self, grad):
        return (grad * self.inside,)


class Threshold(Function):
    def forward(self, x, *, threshold, value):
        xp = get_array_module(x)
        self.above = x > threshold
        return xp.where(self.above, x, xp.asarray(value, dtype=x.dtype))

    def backward(self, grad):
        return (grad * self.above,)


class CELU(Function):
    """``max(0, x) + min(0, alpha (exp(x / alpha) - 1))`` (Barron 2017): ELU made continuously differentiable."""

    def forward(self, x, *, alpha):
        xp = get_array_module(x)
        self.negative_part = alpha * xp.expm1(xp.minimum(x, 0) / alpha)  # 0 where x > 0
        self.alpha = alpha
        return xp.maximum(x, 0) + self.negative_part

    def backward(self, grad):
        # exp(min(x, 0) / alpha) = negative_part / alpha + 1: exp(x / alpha) below 0, and 1 above
        return (grad * (self.negative_part / self.alpha + 1),)


class SELU(Function):
    """``scale * (max(0, x) + min(0, alpha (exp(x) - 1)))`` with the constants of Klambauer et al."""

    def forward(self, x):
        xp = get_array_module(x)
        self.negative_part = SELU_ALPHA * xp.expm1(xp.minimum(x, 0))
        self.positive = x > 0
        return SELU_SCALE * (xp.maximum(x, 0) + self.negative_part)

    def backward(self, grad):
        # x > 0: scale; otherwise scale * alpha * exp(x) = scale * (negative_part + alpha)
        slope = self.negative_part + SELU_ALPHA
        slope += self.positive * (1 - SELU_ALPHA)
        return (grad * (SELU_SCALE * slope),)


class LogSigmoid(Function):
    """``log(1 / (1 + exp(-x))) = min(x, 0) - log(1 + exp(-|x|))``: no overflow for any x."""

    def forward(self, x):
        xp = get_array_module(x)
        self.decay = xp.exp(-xp.abs(x))  # exp(-|x|) in (0, 1]
        self.negative = x < 0
        return xp.minimum(x, 0) - xp.log1p(self.decay)

    def backward(self, grad):
        # d/dx = sigmoid(-x) = (1 if x < 0 else exp(-|x|)) / (1 + exp(-|x|))
        numerator = self.decay + self.negative * (1 - self.decay)
        return (grad * numerator / (1 + self.decay),)


class Softsign(Function):
    def forward(self, x):
        xp = get_array_module(x)
        self.denominator = 1 + xp.abs(x)
        return x / self.denominator

    def backward(self, grad):
        return (grad / (self.denominator * self.denominator),)


class GLU(Function):
    """Gated linear unit (Dauphin et al. 2017): ``a * sigmoid(b)`` with (a, b) the halves of ``dim``."""

    def forward(self, x, *, dim):
        xp = get_array_module(x)
        half = x.shape[dim] // 2
        a, b = xp.split(x, [half], axis=dim)
        # stable sigmoid: exp(min(b, 0)) / (1 + exp(-|b|))
        self.gate = xp.exp(xp.minimum(b, 0)) / (1 + xp.exp(-xp.abs(b)))
        self.a, self.dim = a, dim
        return a * self.gate

    def backward(self, grad):
        xp = get_array_module(grad)
        grad_a = grad * self.gate
        grad_b = grad_a * self.a * (1 - self.gate)
        return (xp.concatenate([grad_a, grad_b], axis=self.dim),)


class Softmin(Softmax):
    """``softmax(-x)``; its backward is softmax's with the sign of the input flipped."""

    def forward(self, x, *, dim):
        return super().forward(-x, dim=dim)

    def backward(self, grad):
        (grad_negated,) = super().backward(grad)
        return (-grad_negated,)


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """``x`` clipped to ``[min_val, max_val]``; the gradient is 1 strictly inside, 0 elsewhere.

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.hardtanh(cs.tensor([-2.0, 0.5, 3.0]))
        tensor([-1. ,  0.5,  1. ])
    """
    min_val, max_val = _number("hardtanh", "min_val", min_val), _number("hardtanh", "max_val", max_val)
    if min_val > max_val:
        raise invalid("hardtanh", "max_val", f"a number >= min_val ({min_val})", max_val)
    return Hardtanh.apply(_float_input("hardtanh", input), min_val=min_val, max_val=max_val)


def threshold(input, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """``x`` where ``x > threshold``, ``value`` elsewhere.

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.threshold(cs.tensor([0.05, 0.5]), 0.1, 20.0)
        tensor([20. ,  0.5])
    """
    threshold_value = _number("threshold", "threshold", threshold)
    replacement = _number("threshold", "value", value)
    return Threshold.apply(_float_input("threshold", input), threshold=threshold_value, value=replacement)


def celu(input, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`` (Barron 2017); ``alpha`` must not be 0.

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.celu(cs.tensor([0.0, 1.0]))
        tensor([0., 1.])
    """
    alpha = _number("celu", "alpha", alpha)
    if alpha == 0:
        raise invalid("celu", "alpha", "a non-zero number", alpha)
    return CELU.apply(_float_input("celu", input), alpha=alpha)


def selu(input, inplace: bool = False) -> Tensor:
    """Scaled ELU ``scale * (max(0, x) + min(0, alpha * (exp(x) - 1)))``, alpha ≈ 1.6733, scale ≈ 1.0507.

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.selu(cs.tensor([0.0, 1.0]))
        tensor([0.    , 1.0507])
    """
    return SELU.apply(_float_input("selu", input))


def logsigmoid(input) -> Tensor:
    """``log(sigmoid(x))``, computed as ``min(x, 0) - log1p(exp(-|x|))`` (finite for every x).

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.logsigmoid(cs.tensor([0.0]))
        tensor([-0.6931])
    """
    return LogSigmoid.apply(_float_input("logsigmoid", input))


def softsign(input) -> Tensor:
    """``x / (1 + |x|)``.

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.softsign(cs.tensor([-1.0, 3.0]))
        tensor([-0.5 ,  0.75])
    """
    return Softsign.apply(_float_input("softsign", input))


def glu(input, dim: int = -1) -> Tensor:
    """Gated linear unit: split ``dim`` into halves (a, b) and return ``a * sigmoid(b)``.

    Args:
        input: a float tensor with an even size along ``dim``.
        dim: the dimension split in two (default the last).

    Shape:
        - Input: (*, 2M, *). Output: (*, M, *).

    Examples:
        >>> F.glu(cs.tensor([2.0, 0.0]))
        tensor([1.])
    """
    input = _float_input("glu", input)
    if input.ndim == 0:
        raise ValueError("glu: expected an input with at least 1 dimension to halve, received a 0-D input")
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not -input.ndim <= dim < input.ndim:
        raise invalid("glu", "dim", f"an integer in [{-input.ndim}, {input.ndim - 1}]", dim,
                      f"input shape {input.shape}")
    axis = int(dim) % input.ndim
    if input.shape[axis] % 2:
        raise ValueError(f"glu: expected an even size along dim {dim} to halve, received {input.shape[axis]} "
                         f"(input shape {input.shape})")
    return GLU.apply(input, dim=axis)


def softmin(input, dim=None, *, dtype=None) -> Tensor:
    """``exp(-x_i) / sum_j exp(-x_j)`` along ``dim``: softmax of the negated input.

    Args:
        input: a float tensor.
        dim: the dimension summing to one (required).
        dtype: cast the input to this dtype first.

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.softmin(cs.tensor([[0.0, 0.0]]), dim=1)
        tensor([[0.5, 0.5]])
    """
    return _softmax_family(Softmin, "softmin", input, dim, dtype)
