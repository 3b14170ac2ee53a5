"""``Parameter``: a tensor that a ``Module`` registers as one of its learnable weights."""

from __future__ import annotations

import math

import numpy

from convstack.backend import check_allocation, format_bytes
from convstack.tensor import Tensor


class Parameter(Tensor):
    """A tensor that, assigned as a module attribute, joins ``module.parameters()``.

    It shares memory with ``data`` (no copy) and requires grad unless told otherwise.
    Ops applied to a parameter return plain tensors: only the leaf is a ``Parameter``.

    Args:
        data: a tensor or array-like (``None``: an empty float32 tensor).
        requires_grad: whether the optimiser will train it (default ``True``).

    Examples:
        >>> import convstack as cs
        >>> w = cs.nn.Parameter(cs.ones(2))
        >>> w
        Parameter containing:
        tensor([1., 1.], requires_grad=True)
    """

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = []
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        copied = Parameter(self.data.copy(), requires_grad=self.requires_grad)
        if self.grad is not None:
            copied.grad = Tensor._make(self.grad.data.copy())
        memo[id(self)] = copied
        return copied


def empty_parameter(shape: tuple, dtype, layer: str, arguments: str) -> Parameter:
    """An uninitialised ``Parameter`` of ``shape``, refused with ``MemoryError`` before allocating if it cannot fit.

    The check counts the weight and the float64 random draw that initialises it (``nn.init``).

    Args:
        layer: the layer's type, named in the message (``"Linear"``).
        arguments: the constructor arguments that make it that big (``"in_features 100000, out_features 100000"``).
    """
    count = math.prod(shape)
    nbytes = count * numpy.dtype(dtype).itemsize
    check_allocation(nbytes + count * 8, f"{layer}: a weight of shape {tuple(shape)} ({format_bytes(nbytes)}) with "
                     "its float64 initial draw", arguments, hint="choose smaller sizes")
    return Parameter(numpy.empty(shape, dtype=dtype))
