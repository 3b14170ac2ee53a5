"""Max and average pooling, compiled: one pass over the windows forward, one scatter backward, planes in parallel.

1-D, 2-D and 3-D pooling all run as 3-D: the input is viewed as (P, D, H, W) planes, P = N * C,
with unit dimensions (kernel 1, stride 1, no padding) in front of the real ones, so each kernel
compiles once per dtype. Every thread takes a contiguous run of planes.

Along each dimension, output ``o``'s window reads positions ``o * stride - padding + j * dilation``
for kernel offsets ``j``; the offsets that land inside the input form one range
``[first[o], stop[o])``, tabulated once per call (``_offset_ranges``), so the window loops test
no bounds. Padding is thus implicit: ``-inf`` for max pooling, zeros for average pooling.

Max pooling writes each window's maximum and, when a gradient or the indices are wanted, its
winner's flat position in the plane (``(d * H + h) * W + w``, int32, PyTorch's index) in the same
pass: the first maximum in window order wins, a NaN beats any number (the first NaN), and a window
that holds only ``-inf`` takes its first position. Backward adds each output's gradient at its
winner. Average pooling divides each window's sum by PyTorch's divisor (the window's size with
the padding but without ceil_mode's overhang, or only its part inside the input, or
``divisor_override``); backward spreads ``grad / divisor`` over the window.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy

from convstack.nn.kernels.compiled import runtime
from convstack.nn.kernels.compiled.parallel import FLOAT_DTYPES, chunk_count, launch
from convstack.nn.kernels.reference import average_pooling as average_reference
from convstack.nn.kernels.reference import max_pooling as max_reference

#: Planes up to this many elements; larger ones (their flat indices overflow int32) take the reference kernels.
MAX_PLANE = 2**31 - 1


@runtime.jit()
def _offset_ranges(size, out_size, kernel, stride, padding, dilation):
    """Per output position along one dimension, the kernel offsets ``[first, stop)`` whose input position is inside.

    Returns an (O, 3) int64 array: first offset, stop offset, and the window's start ``o * stride - padding``.
    """
    ranges = numpy.empty((out_size, 3), dtype=numpy.int64)
    for o in range(out_size):
        start = o * stride - padding
        first = 0
        while first < kernel and start + first * dilation < 0:
            first += 1
        stop = kernel
        while stop > first and start + (stop - 1) * dilation >= size:
            stop -= 1
        ranges[o, 0], ranges[o, 1], ranges[o, 2] = first, stop, start
    return ranges


@runtime.jit()
def _windows(sizes, out_sizes, kernel, stride, padding, dilation):
    """The tables every plane's windows are read through, for (D, H, W) planes and (OD, OH, OW) outputs.

    Returns ``(range_d, range_h, range_w, offsets, starts)``: the ``_offset_ranges`` of each dimension;
    the flat offsets of a window's positions from its first, in window (C) order; and per output (flat,
    C order) the flat position of its window's first position when the window lies wholly inside the
    input, else -1.
    """
    depth, height, width = sizes
    range_d = _offset_ranges(depth, out_sizes[0], kernel[0], stride[0], padding[0], dilation[0])
    range_h = _offset_ranges(height, out_sizes[1], kernel[1], stride[1], padding[1], dilation[1])
    range_w = _offset_ranges(width, out_sizes[2], kernel[2], stride[2], padding[2], dilation[2])
    offsets = numpy.empty(kernel[0] * kernel[1] * kernel[2], dtype=numpy.int64)
    n = 0
    for jd in range(kernel[0]):
        for jh in range(kernel[1]):
            for jw in range(kernel[2]):
                offsets[n] = (jd * dilation[0] * height + jh * dilation[1]) * width + jw * dilation[2]
                n += 1
    starts = numpy.full(out_sizes[0] * out_sizes[1] * out_sizes[2], -1, dtype=numpy.int64)
    o = 0
    for od in range(out_sizes[0]):
        for oh in range(out_sizes[1]):
            for ow in range(out_sizes[2]):
                if (range_d[od, 0] == 0 and range_d[od, 1] == kernel[0] and range_h[oh, 0] == 0
                        and range_h[oh, 1] == kernel[1] and range_w[ow, 0] == 0 and range_w[ow, 1] == kernel[2]):
                    starts[o] = (range_d[od, 2] * height + range_h[oh, 2]) * width + range_w[ow, 2]
                o += 1
    return range_d, range_h, range_w, offsets, starts


@runtime.jit()
def _has_nan(values):
    found = False
    for i in range(values.shape[0]):
        found |= values[i] != values[i]
    return found


@runtime.jit()
def _clipped_window_max(plane, range_d, range_h, range_w, o, sizes, dilation):
    """``(maximum, flat position)`` of window ``o`` (flat, C order) of a flat (D * H * W) plane, over its inside
    positions.

    The first maximum in window order wins; the first NaN beats any number; a window of ``-inf`` only
    takes its first inside position.
    """
    od, rest = divmod(o, range_h.shape[0] * range_w.shape[0])
    oh, ow = divmod(rest, range_w.shape[0])
    height, width = sizes[1], sizes[2]
    best = -numpy.inf
    where = -1
    for jd in range(range_d[od, 0], range_d[od, 1]):
        d = range_d[od, 2] + jd * dilation[0]
        for jh in range(range_h[oh, 0], range_h[oh, 1]):
            h = range_h[oh, 2] + jh * dilation[1]
            for jw in range(range_w[ow, 0], range_w[ow, 1]):
                position = (d * height + h) * width + range_w[ow, 2] + jw * dilation[2]
                value = plane[position]
                if where < 0 or value > best or (value != value and best == best):
                    best = value
                    where = position
    return best, where


@runtime.jit()
def _max_pool_plane(plane, out, index, with_index, windows, sizes, dilation):
    """Max pooling of one flat (D * H * W) plane into flat ``out`` (and ``index`` when ``with_index``).

    A window wholly inside the input reads its positions through the table of flat offsets, in one
    short loop; the others, and every window of a plane holding a NaN, go through ``_clipped_window_max``.
    """
    range_d, range_h, range_w, offsets, starts = windows
    careful = _has_nan(plane)
    for o in range(starts.shape[0]):
        start = starts[o]
        if start >= 0 and not careful:
            where = start + offsets[0]
            best = plane[where]
            for j in range(1, offsets.shape[0]):
                value = plane[start + offsets[j]]
                if value > best:
                    best = value
                    where = start + offsets[j]
        else:
            best, where = _clipped_window_max(plane, range_d, range_h, range_w, o, sizes, dilation)
        out[o] = best
        if with_index:
            index[o] = where


@runtime.jit(parallel=True)
def _max_pool(x, out, index, with_index, kernel, stride, padding, dilation):
    """Max pooling of ``x`` (P, D, H, W) into ``out`` (P, OD, OH, OW); winners' flat positions into ``index``
    (same shape, int32) when ``with_index`` (else a dummy of one plane). ``kernel``, ``stride``, ``padding``,
    ``dilation``: 3-tuples."""
    planes, depth, height, width = x.shape
    sizes = (depth, height, width)
    windows = _windows(sizes, (out.shape[1], out.shape[2], out.shape[3]), kernel, stride, padding, dilation)
    flat_x = x.reshape(planes, depth * height * width)
    flat_out = out.reshape(planes, out.shape[1] * out.shape[2] * out.shape[3])
    flat_index = index.reshape(index.shape[0], index.size // max(1, index.shape[0]))
    for p in numba.prange(planes):
        # p % rows: the dummy index (without with_index) has one row, written by no plane
        _max_pool_plane(flat_x[p], flat_out[p], flat_index[p % flat_index.shape[0]], with_index, windows, sizes,
                        dilation)


@runtime.jit(parallel=True)
def _max_pool_backward(grad, index, grad_input):
    """``grad_input[p]`` (P, S) = the sum of ``grad[p, o]`` (P, O) over the outputs ``o`` whose winner it is."""
    for p in numba.prange(grad_input.shape[0]):
        target = grad_input[p]
        target[:] = 0
        for o in range(grad.shape[1]):
            target[index[p, o]] += grad[p, o]


@runtime.jit()
def _window_size(ranges, o, size, kernel, padding, count_include_pad):
    """Along one dimension, the length of window ``o`` that PyTorch's average-pooling divisor counts."""
    if count_include_pad:  # the padding counts, ceil_mode's overhang past it does not
        return min(ranges[o, 2] + kernel, size + padding) - ranges[o, 2]
    return ranges[o, 1] - ranges[o, 0]  # the positions inside the input


@runtime.jit()
def _average_window(windows, o, sizes, kernel, padding, count_include_pad, divisor_override):
    """Window ``o``'s (flat, C order) divisor and its inside ``[first, stop)`` positions along D, H, W."""
    range_d, range_h, range_w = windows[0], windows[1], windows[2]
    od, rest = divmod(o, range_h.shape[0] * range_w.shape[0])
    oh, ow = divmod(rest, range_w.shape[0])
    if divisor_override != 0:
        divisor = divisor_override
    else:
        divisor = (_window_size(range_d, od, sizes[0], kernel[0], padding[0], count_include_pad)
                   * _window_size(range_h, oh, sizes[1], kernel[1], padding[1], count_include_pad)
                   * _window_size(range_w, ow, sizes[2], kernel[2], padding[2], count_include_pad))
    bounds = (range_d[od, 2] + range_d[od, 0], range_d[od, 2] + range_d[od, 1],
              range_h[oh, 2] + range_h[oh, 0], range_h[oh, 2] + range_h[oh, 1],
              range_w[ow, 2] + range_w[ow, 0], range_w[ow, 2] + range_w[ow, 1])
    return divisor, bounds


@runtime.jit()
def _avg_pool_plane(plane, result, forward, windows, sizes, kernel, padding, count_include_pad, divisor_override):
    """Average pooling of one flat (D * H * W) ``plane`` into flat ``result`` when ``forward``; else the adjoint,
    ``result`` (the gradient) over each divisor spread into ``plane``.

    A window wholly inside the input goes through the table of flat offsets (its divisor: its size, unless
    overridden); the others through their inside ranges.
    """
    offsets, starts = windows[3], windows[4]
    full = offsets.shape[0] if divisor_override == 0 else divisor_override
    height, width = sizes[1], sizes[2]
    if not forward:
        plane[:] = 0
    for o in range(starts.shape[0]):
        start = starts[o]
        if start >= 0:
            if forward:
                total = 0.0
                for j in range(offsets.shape[0]):
                    total += plane[start + offsets[j]]
                result[o] = total / full
            else:
                share = result[o] / full
                for j in range(offsets.shape[0]):
                    plane[start + offsets[j]] += share
            continue
        divisor, (d0, d1, h0, h1, w0, w1) = _average_window(windows, o, sizes, kernel, padding, count_include_pad,
                                                            divisor_override)
        if forward:
            total = 0.0
            for d in range(d0, d1):
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        total += plane[(d * height + h) * width + w]
            result[o] = total / divisor
        else:
            share = result[o] / divisor
            for d in range(d0, d1):
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        plane[(d * height + h) * width + w] += share


@runtime.jit(parallel=True)
def _avg_pool(planes, results, forward, kernel, stride, padding, count_include_pad, divisor_override):
    """Average pooling of ``planes`` (P, D, H, W) into ``results`` (P, OD, OH, OW) when ``forward``; else the
    adjoint, the gradient ``results`` spread into ``planes``. ``divisor_override``: 0 for none."""
    count, depth, height, width = planes.shape
    sizes = (depth, height, width)
    out_sizes = (results.shape[1], results.shape[2], results.shape[3])
    windows = _windows(sizes, out_sizes, kernel, stride, padding, (1, 1, 1))
    flat_planes = planes.reshape(count, depth * height * width)
    flat_results = results.reshape(count, out_sizes[0] * out_sizes[1] * out_sizes[2])
    for p in numba.prange(count):
        _avg_pool_plane(flat_planes[p], flat_results[p], forward, windows, sizes, kernel, padding,
                        count_include_pad, divisor_override)


def _as_3d(values, spatial, fill):
    """A D-tuple as a 3-tuple, ``fill`` in front for the missing dimensions."""
    return (fill,) * (3 - spatial) + tuple(values)


def _planes(x, spatial):
    """``x`` (N, C, *S) as contiguous (N * C, D, H, W) planes."""
    sizes = _as_3d(x.shape[2:], spatial, 1)
    return numpy.ascontiguousarray(x).reshape((x.shape[0] * x.shape[1],) + sizes)


class _MaxSaved(NamedTuple):
    index: numpy.ndarray  # (P, O) int32 winners
    shape: tuple  # the input's (N, C, *S)


def max_pool_forward(x, kernel, stride, padding, dilation, out_sizes, needs_grad, return_indices):
    """``max_reference.max_pool_forward``, compiled (same arguments and results; its own ``saved``)."""
    spatial = len(kernel)
    if x.dtype not in FLOAT_DTYPES or numpy.prod(x.shape[2:]) > MAX_PLANE:
        return max_reference.max_pool_forward(x, kernel, stride, padding, dilation, out_sizes, needs_grad,
                                              return_indices)
    planes = _planes(x, spatial)
    result_shape = x.shape[:2] + tuple(out_sizes)
    result = numpy.empty(result_shape, dtype=x.dtype)  # owns its memory (autograd may take it over)
    out = result.reshape(planes.shape[:1] + _as_3d(out_sizes, spatial, 1))
    with_index = bool(needs_grad or return_indices)
    index = numpy.empty(out.shape if with_index else (1, 1, 1, 1), dtype=numpy.int32)
    launch(_max_pool, planes, out, index, with_index, _as_3d(kernel, spatial, 1), _as_3d(stride, spatial, 1),
           _as_3d(padding, spatial, 0), _as_3d(dilation, spatial, 1), chunks=chunk_count(x.size))
    indices = index.astype(numpy.int64).reshape(result_shape) if return_indices else None
    saved = _MaxSaved(index.reshape(out.shape[0], int(numpy.prod(out_sizes))), x.shape) if needs_grad else None
    return result, indices, saved


def max_pool_backward(grad, saved):
    """``max_reference.max_pool_backward`` for what ``max_pool_forward`` saved."""
    if not isinstance(saved, _MaxSaved):  # the forward took the reference kernel
        return max_reference.max_pool_backward(grad, saved)
    index, shape = saved
    grad_input = numpy.empty(shape, dtype=grad.dtype)  # owns its memory: a leaf input takes it over uncopied
    launch(_max_pool_backward, numpy.ascontiguousarray(grad).reshape(index.shape), index,
           grad_input.reshape(index.shape[0], int(numpy.prod(shape[2:]))), chunks=chunk_count(grad_input.size))
    return grad_input


class _AverageSaved(NamedTuple):
    shape: tuple  # the input's (N, C, *S)
    geometry: tuple  # kernel, stride, padding as 3-tuples
    count_include_pad: bool
    divisor_override: int  # 0 for none


def avg_pool_forward(x, kernel, stride, padding, out_sizes, count_include_pad, divisor_override):
    """``average_reference.avg_pool_forward``, compiled (same arguments and results; its own ``saved``)."""
    spatial = len(kernel)
    if x.dtype not in FLOAT_DTYPES:
        return average_reference.avg_pool_forward(x, kernel, stride, padding, out_sizes, count_include_pad,
                                                  divisor_override)
    planes = _planes(x, spatial)
    result = numpy.empty(x.shape[:2] + tuple(out_sizes), dtype=x.dtype)
    out = result.reshape(planes.shape[:1] + _as_3d(out_sizes, spatial, 1))
    geometry = (_as_3d(kernel, spatial, 1), _as_3d(stride, spatial, 1), _as_3d(padding, spatial, 0))
    override = 0 if divisor_override is None else int(divisor_override)
    launch(_avg_pool, planes, out, True, *geometry, bool(count_include_pad), override, chunks=chunk_count(x.size))
    saved = _AverageSaved(x.shape, geometry, bool(count_include_pad), override)
    return result, saved


def avg_pool_backward(grad, saved):
    """``average_reference.avg_pool_backward`` for what ``avg_pool_forward`` saved."""
    if not isinstance(saved, _AverageSaved):  # the forward took the reference kernel
        return average_reference.avg_pool_backward(grad, saved)
    shape, geometry, count_include_pad, override = saved
    spatial = len(shape) - 2
    planes = numpy.ascontiguousarray(grad).reshape((shape[0] * shape[1],) + _as_3d(grad.shape[2:], spatial, 1))
    grad_input = numpy.empty(shape, dtype=grad.dtype)  # owns its memory: a leaf input takes it over uncopied
    grad_planes = grad_input.reshape((planes.shape[0],) + _as_3d(shape[2:], spatial, 1))  # a view: (P, D, H, W)
    launch(_avg_pool, grad_planes, planes, False, *geometry, count_include_pad, override,
           chunks=chunk_count(grad_input.size))
    return grad_input


def register(tier) -> None:
    tier.register(max_reference.max_pool_forward, max_pool_forward)
    tier.register(max_reference.max_pool_backward, max_pool_backward)
    tier.register(average_reference.avg_pool_forward, avg_pool_forward)
    tier.register(average_reference.avg_pool_backward, avg_pool_backward)
