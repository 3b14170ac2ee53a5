"""Cubic convolution weights (Keys 1981, ``a = -0.75`` as PyTorch and OpenCV use) for bicubic resampling.

A sample at fractional offset ``t`` in [0, 1) past pixel ``i`` reads pixels ``i - 1 .. i + 2``
with weights ``W(t + 1), W(t), W(1 - t), W(2 - t)`` (they sum to 1), where
``W(x) = (a + 2)|x|^3 - (a + 3)|x|^2 + 1`` for ``|x| <= 1`` and
``W(x) = a|x|^3 - 5a|x|^2 + 8a|x| - 4a`` for ``1 < |x| < 2``.
"""

from __future__ import annotations

import numpy

A = -0.75


def _near(x):
    return ((A + 2) * x - (A + 3)) * x * x + 1


def _far(x):
    return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A


def _near_slope(x):
    return (3 * (A + 2) * x - 2 * (A + 3)) * x


def _far_slope(x):
    return (3 * A * x - 10 * A) * x + 8 * A


def cubic_weights(t):
    """The four weights of the pixels at offsets -1, 0, 1, 2 for fractional positions ``t`` (arrays)."""
    return _far(t + 1), _near(t), _near(1 - t), _far(2 - t)


def cubic_weight_slopes(t):
    """``d/dt`` of each of ``cubic_weights(t)``."""
    return _far_slope(t + 1), _near_slope(t), -_near_slope(1 - t), -_far_slope(2 - t)


def cubic_matrix(in_size: int, out_size: int, scale_factor, align_corners: bool, dtype):
    """The (out, in) bicubic resampling matrix (host array), four weights per row, as PyTorch's kernel.

    Source position ``src = dst * (in - 1) / (out - 1)`` (``align_corners``) or
    ``(dst + 0.5) * scale - 0.5`` (not clamped at 0, unlike linear); the taps past either end
    read the border pixel (their weights add up on it).
    """
    dtype = numpy.dtype(dtype)
    rows = numpy.arange(out_size)
    matrix = numpy.zeros((out_size, in_size), dtype=dtype)
    if align_corners:
        scale = dtype.type(in_size - 1) / dtype.type(out_size - 1) if out_size > 1 else dtype.type(0)
        source = rows.astype(dtype) * scale
    else:
        if scale_factor is not None and scale_factor > 0:
            scale = dtype.type(1.0 / scale_factor)
        else:
            scale = dtype.type(in_size) / dtype.type(out_size)
        source = scale * (rows.astype(dtype) + dtype.type(0.5)) - dtype.type(0.5)
    low = numpy.floor(source)
    for offset, weight in zip(range(-1, 3), cubic_weights((source - low).astype(dtype))):
        # one tap per row in each pass, so no two writes of a pass hit the same element
        matrix[rows, numpy.clip(low.astype(numpy.int64) + offset, 0, in_size - 1)] += weight
    return matrix
