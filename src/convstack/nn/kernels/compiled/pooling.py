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
from convstack.nn.kernels.compiled.parallel import FLOAT_DTYPES
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
def _window_offsets(kernel, dilation, height, width):
    """The flat offsets in a (D, H, W) plane of a window's positions from its first, in window (C) order."""
    offsets = numpy.empty(kernel[0] * kernel[1] * kernel[2], dtype=numpy.int64)
    n = 0
    for jd in range(kernel[0]):
        for jh in range(kernel[1]):
            for jw in range(kernel[2]):
                offsets[n] = (jd * dilation[0] * height + jh * dilation[1]) * width + jw * dilation[2]
                n += 1
    return offsets


@runtime.jit()
def _inside(ranges, o, kernel):
    """Whether window ``o`` lies wholly inside the input along this dimension."""
    return ranges[o, 0] == 0 and ranges[o, 1] == kernel


@runtime.jit()
def _clipped_window_max(plane, range_d, range_h, range_w, od, oh, ow, height, width, dilation):
    """``(maximum, flat position)`` of window (od, oh, ow) of a flat (D * H * W) plane, over its inside positions.

    The first maximum in window order wins; the first NaN beats any number; a window of ``-inf`` only
    takes its first inside position.
    """
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
def _max_pool_plane(plane, out, index, with_index, offsets, range_d, range_h, range_w, kernel, sizes, dilation):
    """Max pooling of one flat (D * H * W) plane into flat ``out`` (and ``index`` when ``with_index``).

    A window wholly inside the input reads its positions through the table of flat ``offsets`` (one
    short loop, a NaN only noted); the others, and windows holding a NaN, go through
    ``_clipped_window_max``.
    """
    height, width = sizes[1], sizes[2]
    o = 0
    for od in range(range_d.shape[0]):
        for oh in range(range_h.shape[0]):
            inside_dh = _inside(range_d, od, kernel[0]) and _inside(range_h, oh, kernel[1])
            for ow in range(range_w.shape[0]):
                nan = True
                if inside_dh and _inside(range_w, ow, kernel[2]):
                    start = (range_d[od, 2] * height + range_h[oh, 2]) * width + range_w[ow, 2]
                    best = -numpy.inf
                    where = start
                    nan = False
                    for j in range(offsets.shape[0]):
                        value = plane[start + offsets[j]]
                        nan |= value != value
                        if value > best:
                            best = value
                            where = start + offsets[j]
                if nan:  # a window in the padding, or one with a NaN
                    best, where = _clipped_window_max(plane, range_d, range_h, range_w, od, oh, ow, height, width,
                                                      dilation)
                out[o] = best
                if with_index:
                    index[o] = where
                o += 1


@runtime.jit(parallel=True)
def _max_pool(x, out, index, with_index, kernel, stride, padding, dilation):
    """Max pooling of ``x`` (P, D, H, W) into ``out`` (P, OD, OH, OW); winners' flat positions into ``index``
    (same shape, int32) when ``with_index`` (else a dummy of one plane). ``kernel``, ``stride``, ``padding``,
    ``dilation``: 3-tuples."""
    planes, depth, height, width = x.shape
    out_d, out_h, out_w = out.shape[1], out.shape[2], out.shape[3]
    range_d = _offset_ranges(depth, out_d, kernel[0], stride[0], padding[0], dilation[0])
    range_h = _offset_ranges(height, out_h, kernel[1], stride[1], padding[1], dilation[1])
    range_w = _offset_ranges(width, out_w, kernel[2], stride[2], padding[2], dilation[2])
    offsets = _window_offsets(kernel, dilation, height, width)
    flat_x = x.reshape(planes, depth * height * width)
    flat_out = out.reshape(planes, out_d * out_h * out_w)
    flat_index = index.reshape(index.shape[0], index.size // max(1, index.shape[0]))
    for p in numba.prange(planes):
        # p % rows: the dummy index (without with_index) has one row, written by no plane
        _max_pool_plane(flat_x[p], flat_out[p], flat_index[p % flat_index.shape[0]], with_index, offsets, range_d,
                        range_h, range_w, kernel, (depth, height, width), dilation)


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
def _average_window(ranges_dhw, o_dhw, sizes, kernel, padding, count_include_pad, divisor_override):
    """Window (od, oh, ow)'s divisor and its inside ``[first, stop)`` positions along D, H, W (6 values)."""
    range_d, range_h, range_w = ranges_dhw
    od, oh, ow = o_dhw
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


@runtime.jit(parallel=True)
def _avg_pool(x, out, grad, grad_input, forward, kernel, stride, padding, count_include_pad, divisor_override):
    """Average pooling of ``x`` (P, D, H, W) into ``out`` (P, OD, OH, OW) when ``forward``; else its adjoint,
    ``grad`` (P, OD, OH, OW) over each divisor spread into ``grad_input`` (P, D, H, W) (``x`` and ``out``
    unused). ``divisor_override``: 0 for none.

    Windows wholly inside the input go through a table of flat offsets (divisor: the window's size, unless
    overridden); the others through their inside ranges.
    """
    source = x if forward else grad_input
    planes, depth, height, width = source.shape
    result = out if forward else grad
    out_d, out_h, out_w = result.shape[1], result.shape[2], result.shape[3]
    ranges = (_offset_ranges(depth, out_d, kernel[0], stride[0], padding[0], 1),
              _offset_ranges(height, out_h, kernel[1], stride[1], padding[1], 1),
              _offset_ranges(width, out_w, kernel[2], stride[2], padding[2], 1))
    offsets = _window_offsets(kernel, (1, 1, 1), height, width)
    full = kernel[0] * kernel[1] * kernel[2] if divisor_override == 0 else divisor_override
    flat_source = source.reshape(planes, depth * height * width)
    flat_result = result.reshape(planes, out_d * out_h * out_w)
    for p in numba.prange(planes):
        plane = flat_source[p]
        if not forward:
            plane[:] = 0
        o = 0
        for od in range(out_d):
            for oh in range(out_h):
                inside_dh = _inside(ranges[0], od, kernel[0]) and _inside(ranges[1], oh, kernel[1])
                for ow in range(out_w):
                    if inside_dh and _inside(ranges[2], ow, kernel[2]):
                        start = (ranges[0][od, 2] * height + ranges[1][oh, 2]) * width + ranges[2][ow, 2]
                        if forward:
                            total = 0.0
                            for j in range(offsets.shape[0]):
                                total += plane[start + offsets[j]]
                            flat_result[p, o] = total / full
                        else:
                            share = flat_result[p, o] / full
                            for j in range(offsets.shape[0]):
                                plane[start + offsets[j]] += share
                    else:
                        divisor, (d0, d1, h0, h1, w0, w1) = _average_window(
                            ranges, (od, oh, ow), (depth, height, width), kernel, padding, count_include_pad,
                            divisor_override)
                        if forward:
                            total = 0.0
                            for d in range(d0, d1):
                                for h in range(h0, h1):
                                    for w in range(w0, w1):
                                        total += plane[(d * height + h) * width + w]
                            flat_result[p, o] = total / divisor
                        else:
                            share = flat_result[p, o] / divisor
                            for d in range(d0, d1):
                                for h in range(h0, h1):
                                    for w in range(w0, w1):
                                        plane[(d * height + h) * width + w] += share
                    o += 1


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
    out = numpy.empty(planes.shape[:1] + _as_3d(out_sizes, spatial, 1), dtype=x.dtype)
    with_index = bool(needs_grad or return_indices)
    index = numpy.empty(out.shape if with_index else (1, 1, 1, 1), dtype=numpy.int32)
    with runtime.launch():
        _max_pool(planes, out, index, with_index, _as_3d(kernel, spatial, 1), _as_3d(stride, spatial, 1),
                  _as_3d(padding, spatial, 0), _as_3d(dilation, spatial, 1))
    result_shape = x.shape[:2] + tuple(out_sizes)
    indices = index.astype(numpy.int64).reshape(result_shape) if return_indices else None
    saved = _MaxSaved(index.reshape(out.shape[0], int(numpy.prod(out_sizes))), x.shape) if needs_grad else None
    return out.reshape(result_shape), indices, saved


def max_pool_backward(grad, saved):
    """``max_reference.max_pool_backward`` for what ``max_pool_forward`` saved."""
    if not isinstance(saved, _MaxSaved):  # the forward took the reference kernel
        return max_reference.max_pool_backward(grad, saved)
    index, shape = saved
    grad_input = numpy.empty((index.shape[0], int(numpy.prod(shape[2:]))), dtype=grad.dtype)
    with runtime.launch():
        _max_pool_backward(numpy.ascontiguousarray(grad).reshape(index.shape), index, grad_input)
    return grad_input.reshape(shape)


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
    out = numpy.empty(planes.shape[:1] + _as_3d(out_sizes, spatial, 1), dtype=x.dtype)
    geometry = (_as_3d(kernel, spatial, 1), _as_3d(stride, spatial, 1), _as_3d(padding, spatial, 0))
    override = 0 if divisor_override is None else int(divisor_override)
    with runtime.launch():
        _avg_pool(planes, out, out, planes, True, *geometry, bool(count_include_pad), override)
    saved = _AverageSaved(x.shape, geometry, bool(count_include_pad), override)
    return out.reshape(x.shape[:2] + tuple(out_sizes)), saved


def avg_pool_backward(grad, saved):
    """``average_reference.avg_pool_backward`` for what ``avg_pool_forward`` saved."""
    if not isinstance(saved, _AverageSaved):  # the forward took the reference kernel
        return average_reference.avg_pool_backward(grad, saved)
    shape, geometry, count_include_pad, override = saved
    spatial = len(shape) - 2
    planes = numpy.ascontiguousarray(grad).reshape((shape[0] * shape[1],) + _as_3d(grad.shape[2:], spatial, 1))
    grad_input = numpy.empty((planes.shape[0],) + _as_3d(shape[2:], spatial, 1), dtype=grad.dtype)
    with runtime.launch():
        _avg_pool(grad_input, planes, planes, grad_input, False, *geometry, count_include_pad, override)
    return grad_input.reshape(shape)


def register(tier) -> None:
    tier.register(max_reference.max_pool_forward, max_pool_forward)
    tier.register(max_reference.max_pool_backward, max_pool_backward)
    tier.register(average_reference.avg_pool_forward, avg_pool_forward)
    tier.register(average_reference.avg_pool_backward, avg_pool_backward)
