"""In-place operations with gradients: ``add_``, ``sub_``, ``mul_``, ``div_``, ``clamp_``, ``relu_``, ``fill_``,
``copy_`` and item assignment.

Each is a ``Function`` run by ``Function.apply_inplace``: ``forward`` overwrites its first
array and returns it. Where an out-of-place op has the same derivative, the in-place one
subclasses it (and the ONNX exporter converts it the same way); ``forward`` saves only
what ``backward`` needs and cannot recompute, copying the overwritten values first when
the derivative needs them (``mul_`` and ``div_`` by a tensor that requires grad).

``check_operand`` refuses, before anything changes, what PyTorch refuses: an operand
that does not broadcast to the target's shape, a result whose type cannot be cast to
the target's dtype.
"""

from __future__ import annotations

import numpy

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional.activation import ReLU
from convstack.nn.kernels import tiers
from convstack.nn.kernels.reference import activation as activation_kernels
from convstack.ops.arithmetic import Add, Div, Mul, Sub, unbroadcast
from convstack.ops.elementwise import Clamp
from convstack.ops.indexing import _is_basic


def check_operand(target, other, op: str, cast: bool = False) -> None:
    """PyTorch's checks: ``other`` broadcasts to ``target``'s shape; the result type casts to its dtype
    (any cast with ``cast``, as ``copy_`` and item assignment)."""
    shape = tuple(other.shape)
    try:
        broadcast = numpy.broadcast_shapes(target.shape, shape)
    except ValueError:
        broadcast = None
    if broadcast != tuple(target.shape):
        raise RuntimeError(f"{op}: output with shape {list(target.shape)} doesn't match the broadcast shape "
                           f"{list(broadcast) if broadcast is not None else 'of ' + str(list(shape))}")
    result = numpy.result_type(target.dtype, other.dtype)
    if not cast and not numpy.can_cast(result, target.dtype, casting="same_kind"):
        raise RuntimeError(f"{op}: result type {result} can't be cast to the desired output type {target.dtype}")


class AddInplace(Add):
    """``a += b``; the gradient of ``Add``."""

    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        a += b
        return a


class SubInplace(Sub):
    """``a -= b``; the gradient of ``Sub``."""

    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        a -= b
        return a


class MulInplace(Mul):
    """``a *= b``; ``Mul``'s gradient, with ``a`` as it was before (copied only when ``b`` needs a gradient)."""

    def forward(self, a, b):
        needs = self.needs_input_grad
        self.a, self.b = (a.copy() if needs[1] else None), (b if needs[0] else None)
        self.a_shape, self.b_shape = a.shape, b.shape
        a *= b
        return a


class DivInplace(Div):
    """``a /= b``; ``Div``'s gradient, with ``a`` as it was before (copied only when ``b`` needs a gradient)."""

    def forward(self, a, b):
        self.a, self.b, self.a_shape = (a.copy() if self.needs_input_grad[1] else None), b, a.shape
        a /= b
        return a


class ClampInplace(Clamp):
    """Clip ``a`` to ``[min, max]`` in place; the gradient passes where ``a`` was inside."""

    def forward(self, a, *, min=None, max=None):  # noqa: A002 - PyTorch's argument names
        self.mask = self.inside(a, min, max)
        get_array_module(a).clip(a, min, max, out=a)
        return a


class ReLUInplace(ReLU):
    """``max(0, a)`` in place; ``ReLU``'s gradient, from the output it keeps (as PyTorch's ``threshold_``)."""

    def forward(self, a):
        tiers.tier_for(a).implementation(activation_kernels.relu_inplace)(a)
        self.keep_output(a)
        return a


class FillInplace(Function):
    """Every element of ``a`` set to ``value`` (a 0-d array): no gradient to ``a``; all of it to ``value``."""

    def forward(self, a, value):
        a[...] = value
        self.value_shape = value.shape
        return a

    def backward(self, grad):
        xp = get_array_module(grad)
        grad_value = grad.sum().reshape(self.value_shape) if self.needs_input_grad[1] else None
        return (xp.zeros_like(grad) if self.needs_input_grad[0] else None), grad_value


class CopyInplace(Function):
    """``a[...] = src`` (broadcast, cast): no gradient to ``a``; ``src`` gets the gradient, summed where broadcast."""

    def forward(self, a, src):
        a[...] = src
        self.src_shape, self.src_dtype = src.shape, src.dtype
        return a

    def backward(self, grad):
        xp = get_array_module(grad)
        grad_src = unbroadcast(grad, self.src_shape).astype(self.src_dtype, copy=False) \
            if self.needs_input_grad[1] else None
        return (xp.zeros_like(grad) if self.needs_input_grad[0] else None), grad_src


class SetItemInplace(Function):
    """``a[index] = value``: the gradient to ``a`` is zero at ``index``; ``value`` gets the gradient there."""

    def forward(self, a, value, *, index):
        a[index] = value
        self.index, self.value_shape = index, value.shape
        return a

    def backward(self, grad):
        grad_value = None
        if self.needs_input_grad[1]:
            selected = grad[self.index]
            if not _is_basic(self.index):
                selected = selected.copy()
            grad_value = unbroadcast(selected, self.value_shape)
        grad_a = None
        if self.needs_input_grad[0]:
            grad_a = grad.copy()
            grad_a[self.index] = 0
        return grad_a, grad_value
