"""Piecewise-linear activations: ``relu6``, ``hardsigmoid``, ``hardswish`` (MobileNets) and ``prelu`` (learned slope).

``relu6`` bounds ReLU at 6 (Krizhevsky 2010; MobileNet, Howard et al. 2017); ``hardsigmoid``
and ``hardswish`` are its cheap stand-ins for the sigmoid and SiLU (MobileNetV3, Howard et
al. 2019); ``prelu`` learns the negative slope, one per channel or shared (He et al. 2015).
At the kinks the gradients are PyTorch's: 0 at both ends of ``relu6``'s and ``hardsigmoid``'s
linear pieces, the left piece's slope at hardswish's -3 and the right one's at +3.
"""

from __future__ import annotations

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._utils import shape_context
from convstack.nn.functional.activation import _float_input
from convstack.tensor import Tensor, as_tensor


class ReLU6(Function):
    def forward(self, x):
        xp = get_array_module(x)
        self.inside = ((x > 0) & (x < 6)).astype(x.dtype)  # 1 on the linear piece (ends excluded)
        return xp.minimum(xp.maximum(x, 0), 6).astype(x.dtype, copy=False)

    def backward(self, grad):
        return (grad * self.inside,)


class Hardsigmoid(Function):
    """``relu6(x + 3) / 6``: 0 below -3, 1 above 3, linear with slope 1/6 between."""

    def forward(self, x):
        xp = get_array_module(x)
        self.inside = ((x > -3) & (x < 3)).astype(x.dtype)
        return (xp.clip(x, -3, 3) / 6 + 0.5).astype(x.dtype, copy=False)

    def backward(self, grad):
        return (grad * self.inside * (1 / 6),)


class Hardswish(Function):
    """``x * relu6(x + 3) / 6``: 0 below -3, x above 3, ``x (x + 3) / 6`` between."""

    def forward(self, x):
        xp = get_array_module(x)
        self.x = x
        return x * (xp.clip(x, -3, 3) / 6 + 0.5).astype(x.dtype, copy=False)

    def backward(self, grad):
        x = self.x
        # slope: 0 for x <= -3, x / 3 + 1/2 for -3 < x < 3, 1 for x >= 3
        slope = (x / 3 + 0.5) * ((x > -3) & (x < 3))
        slope += x >= 3
        return (grad * slope,)


class PReLU(Function):
    """``x`` for ``x > 0``, ``weight * x`` otherwise; ``weight`` is one value or one per channel (dim 1)."""

    def forward(self, x, weight):
        self.weight_shape = weight.shape
        slope_shape = (1,) * x.ndim if weight.size == 1 else (1, -1) + (1,) * (x.ndim - 2)
        weight = weight.reshape(slope_shape)
        self.positive = x > 0
        self.x, self.weight = x, weight
        return x * (self.positive + ~self.positive * weight)

    def backward(self, grad):
        grad_x = grad_weight = None
        if self.needs_input_grad[0]:
            grad_x = grad * (self.positive + ~self.positive * self.weight)
        if self.needs_input_grad[1]:
            from convstack.ops.arithmetic import unbroadcast

            grad_weight = unbroadcast(grad * self.x * ~self.positive, self.weight.shape).reshape(self.weight_shape)
        return grad_x, grad_weight


def relu6(input, inplace: bool = False) -> Tensor:
    """``min(max(0, x), 6)``, element-wise. ``inplace`` is accepted and ignored (the result is a new tensor).

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.relu6(cs.tensor([-1.0, 2.0, 8.0]))
        tensor([0., 2., 6.])
    """
    return ReLU6.apply(_float_input("relu6", input))


def hardsigmoid(input, inplace: bool = False) -> Tensor:
    """``0`` for x <= -3, ``1`` for x >= 3, ``x / 6 + 1/2`` between. ``inplace`` is accepted and ignored.

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.hardsigmoid(cs.tensor([-4.0, 0.0, 1.5]))
        tensor([0.  , 0.5 , 0.75])
    """
    return Hardsigmoid.apply(_float_input("hardsigmoid", input))


def hardswish(input, inplace: bool = False) -> Tensor:
    """``x * hardsigmoid(x)``: 0 for x <= -3, x for x >= 3, ``x (x + 3) / 6`` between. ``inplace`` is ignored.

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.hardswish(cs.tensor([-4.0, 1.0, 4.0]))
        tensor([-0.    ,  0.6667,  4.    ])
    """
    return Hardswish.apply(_float_input("hardswish", input))


def prelu(input, weight) -> Tensor:
    """Parametric ReLU: ``x`` for x > 0, ``weight * x`` otherwise, as ``torch.nn.functional.prelu``.

    Args:
        input: float tensor; its channel dimension is dim 1 (a 0-D or 1-D input has one channel).
        weight: the learned slopes, 1 value (shared) or C values (one per channel).

    Shape:
        - Input: (N, C, *) or any shape with a single weight. Output: same shape.

    Examples:
        >>> F.prelu(cs.tensor([[-2.0, 3.0]]), cs.tensor([0.25]))
        tensor([[-0.5,  3. ]])
    """
    input = _float_input("prelu", input)
    weight = as_tensor(weight)
    channels = input.shape[1] if input.ndim >= 2 else 1
    if weight.ndim > 1 or weight.numel() not in (1, channels) or weight.dtype != input.dtype:
        raise ValueError(
            f"prelu: invalid value for argument `weight`: expected a 1-D {input.dtype} tensor of 1 or {channels} "
            f"values (one per channel, dim 1), received {weight.dtype} of shape {weight.shape} "
            f"({shape_context(input=input.shape)})"
        )
    return PReLU.apply(input, weight)
