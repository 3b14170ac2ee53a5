"""Antialiased resampling matrices (``interpolate(..., antialias=True)``), as PyTorch's ``_aa`` kernels.

Downsampling by a factor s > 1 with plain interpolation reads only the few pixels next to
each sample and aliases. The antialiased kernels stretch the interpolation filter by s
(PIL's resampling, which PyTorch copies): output i is centred at ``c = s (i + 0.5)`` in
input coordinates and averages the input pixels j within ``support = taps / 2 * s`` of it,
with weights ``filter((j + 0.5 - c) / s)`` normalised to sum to 1. Upsampling (s <= 1) keeps
the filter's own width. The filters: the triangle (``bilinear``), Keys' cubic with
a = -0.5 (``bicubic``, PIL's choice), and Lanczos-3, ``sinc(x) sinc(x / 3)`` (``lanczos``).
"""

from __future__ import annotations

import numpy


def _triangle(x):
    return numpy.maximum(1 - numpy.abs(x), 0)


def _cubic_half(x, a=-0.5):
    x = numpy.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return numpy.where(x < 1, near, numpy.where(x < 2, far, 0))


def _lanczos3(x):
    return numpy.where(numpy.abs(x) < 3, numpy.sinc(x) * numpy.sinc(x / 3), 0)


# mode -> (taps of the unstretched filter, filter)
FILTERS = {"bilinear": (2, _triangle), "bicubic": (4, _cubic_half), "lanczos": (6, _lanczos3)}


def antialias_matrix(in_size: int, out_size: int, scale_factor, align_corners: bool, mode: str, dtype):
    """The (out, in) antialiased resampling matrix (host array) of ``mode``, each row summing to 1."""
    taps, kernel = FILTERS[mode]
    if align_corners:
        scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    elif scale_factor is not None and scale_factor > 0:
        scale = 1.0 / scale_factor
    else:
        scale = in_size / out_size
    support = taps / 2 * scale if scale >= 1 else taps / 2
    stretch = 1 / scale if scale >= 1 else 1.0
    centres = scale * (numpy.arange(out_size) + 0.5)
    first = numpy.maximum(numpy.trunc(centres - support + 0.5).astype(numpy.int64), 0)
    stop = numpy.minimum(numpy.trunc(centres + support + 0.5).astype(numpy.int64), in_size)
    width = int(max((stop - first).max(initial=0), 0))
    columns = first[:, None] + numpy.arange(width)  # (out, width): candidate input pixels
    inside = columns < stop[:, None]
    weights = kernel((columns - centres[:, None] + 0.5) * stretch) * inside
    totals = weights.sum(axis=1, keepdims=True)
    weights = numpy.divide(weights, totals, out=numpy.zeros_like(weights), where=totals != 0)
    matrix = numpy.zeros((out_size, in_size), dtype=numpy.float64)
    rows = numpy.broadcast_to(numpy.arange(out_size)[:, None], columns.shape)
    matrix[rows[inside], columns[inside]] = weights[inside]  # distinct columns per row: no collisions
    return matrix.astype(dtype)
