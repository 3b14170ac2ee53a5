"""Inverted dropout (Srivastava et al. 2014): zero elements, or whole channels, with probability ``p``.

Survivors are scaled by ``1 / (1 - p)`` during training so that the expected activation is
unchanged and evaluation needs no rescaling. The mask is drawn from
``convstack.random.default_generator()`` unless a ``numpy.random.Generator`` is passed.
"""

from __future__ import annotations

import numbers

import numpy

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._utils import invalid
from convstack.random import default_generator
from convstack.tensor import Tensor, as_tensor


class Dropout(Function):
    """``x * mask`` where ``mask`` holds 0 or ``1 / (1 - p)`` (broadcast over a channel's elements)."""

    def forward(self, x, *, mask):
        self.mask = mask
        return x * mask

    def backward(self, grad):
        return (grad * self.mask,)


def _check(op: str, p, generator) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise invalid(op, "p", "a probability in [0, 1]", p)
    if generator is not None and not isinstance(generator, numpy.random.Generator):
        raise invalid(op, "generator", "a numpy.random.Generator or None", generator)
    return float(p)


def _apply_mask(input: Tensor, p: float, mask_shape: tuple, generator) -> Tensor:
    xp = get_array_module(input.data)
    dtype = input.dtype
    if p == 1.0:
        mask = xp.zeros(mask_shape, dtype=dtype)
    else:
        generator = default_generator() if generator is None else generator
        keep = generator.random(mask_shape, dtype=numpy.float32) >= p  # P(keep) = 1 - p
        mask = xp.asarray(keep, dtype=dtype) * dtype.type(1.0 / (1.0 - p))
    return Dropout.apply(input, mask=mask)


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False, generator=None) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Args:
        input: a float tensor of any shape.
        p: probability of an element being zeroed, in [0, 1]; ``p = 1`` gives zeros.
        training: apply dropout only when true; otherwise return ``input`` unchanged.
        inplace: accepted for PyTorch compatibility; the result is always a new tensor.
        generator: a ``numpy.random.Generator`` to draw the mask from (default: convstack's stream).

    Shape:
        - Input: any shape. Output: same shape.

    Examples:
        >>> F.dropout(cs.ones(2, 3), p=0.0).shape
        (2, 3)
    """
    p = _check("dropout", p, generator)
    input = as_tensor(input)
    if not training or p == 0.0:
        return input
    return _apply_mask(input, p, input.shape, generator)


def _feature_dropout(op: str, spatial_dims: int, input, p, training, generator) -> Tensor:
    p = _check(op, p, generator)
    input = as_tensor(input)
    if input.ndim not in (spatial_dims + 1, spatial_dims + 2):
        layout = ", ".join(f"D{i + 1}" for i in range(spatial_dims))
        raise ValueError(
            f"{op}: expected a {spatial_dims + 2}-D input (N, C, {layout}) or a {spatial_dims + 1}-D input "
            f"(C, {layout}), received a {input.ndim}-D input of shape {input.shape}"
        )
    if not training or p == 0.0:
        return input
    channel_dims = input.ndim - spatial_dims
    mask_shape = input.shape[:channel_dims] + (1,) * spatial_dims  # (N, C, 1, ..., 1) or (C, 1, ..., 1)
    return _apply_mask(input, p, mask_shape, generator)


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False, generator=None) -> Tensor:
    """Zero whole channels of a 2-D feature map with probability ``p`` (Tompson et al. 2015).

    A 3-D input is read as unbatched (C, H, W); PyTorch still reads it as (N, C, L) with a
    deprecation warning, and announces (C, H, W) as its future behaviour.

    Args:
        input: (N, C, H, W) or (C, H, W).
        p, training, inplace, generator: as in :func:`dropout`.

    Shape:
        - Input: (N, C, H, W) or (C, H, W). Output: same shape.

    Examples:
        >>> F.dropout2d(cs.ones(2, 3, 4, 4), p=0.5).shape
        (2, 3, 4, 4)
    """
    return _feature_dropout("dropout2d", 2, input, p, training, generator)


def dropout3d(input, p: float = 0.5, training: bool = True, inplace: bool = False, generator=None) -> Tensor:
    """Zero whole channels of a 3-D feature map (volume) with probability ``p``.

    Args:
        input: (N, C, D, H, W) or (C, D, H, W).
        p, training, inplace, generator: as in :func:`dropout`.

    Shape:
        - Input: (N, C, D, H, W) or (C, D, H, W). Output: same shape.

    Examples:
        >>> F.dropout3d(cs.ones(2, 3, 2, 4, 4), p=0.5).shape
        (2, 3, 2, 4, 4)
    """
    return _feature_dropout("dropout3d", 3, input, p, training, generator)
