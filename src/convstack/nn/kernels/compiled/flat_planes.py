"""Stride-1 convolution over flat padded planes, compiled: every column row one contiguous copy.

The reference's idea (``reference/flat_planes.py``): lay a block of samples out channel-major
and flat, ``(C, n * P)`` with P the padded plane (or volume), and the output at flat position p
reads ``flat[p + offset]`` for each kernel tap. A tap's row of columns is then one long slice,
where im2col copies one short run per output row (LeNet's 10-wide rows, a 3-D layer's 16-wide
ones), and col2im's scatter is one long add per tap. The price: every padded position gets an
output, those past the output's extent are dropped (their gradient held at zero), so the GEMMs
do P / L times the work (1.4x for 16^3 volumes padded by 1, 2x for LeNet's 10x10 outputs of
14x14 planes).

As in ``im2col``, each thread takes a block of samples from the input to the output in its
cache, multiplying with OpenBLAS called from the thread; a weight gradient is summed per
thread. 1-D and 2-D problems run as 3-D with leading sizes of one.
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_num_threads, prange

from convstack.backend import check_allocation
from convstack.nn.kernels.compiled import runtime
from convstack.nn.kernels.compiled.im2col import _as_3d, _three
from convstack.nn.kernels.compiled.runtime import index
from convstack.nn.kernels.geometry import ConvGeometry

# Bytes of a block's columns (C K x n P), and the columns a block spans at least.
BLOCK_BYTES = 1 * 2**20
BLOCK_COLUMNS = 1024


def applies(geometry: ConvGeometry) -> bool:
    """Stride 1, no groups, 1-D to 3-D, float32 or float64 (any padding and dilation)."""
    return (geometry.unit_stride and geometry.groups == 1 and 1 <= len(geometry.kernel) <= 3
            and geometry.dtype in ("float32", "float64"))


def _padded(geometry: ConvGeometry) -> tuple:
    return _three(geometry.padded_sizes, 1)


def plane(geometry: ConvGeometry) -> int:
    """P: the elements of one padded plane (volume)."""
    return math.prod(geometry.padded_sizes)


def offsets(geometry: ConvGeometry):
    """The flat offset in a padded plane of each kernel tap, in the weight's C order: (K,) int64."""
    dp, hp, wp = _padded(geometry)
    kd, kh, kw = _three(geometry.kernel, 1)
    dd, dh, dw = _three(geometry.dilation, 1)
    taps = [(z * dd * hp + y * dh) * wp + x * dw for z in range(kd) for y in range(kh) for x in range(kw)]
    return np.asarray(taps, dtype=np.int64)


def block_samples(geometry: ConvGeometry, threads: int) -> int:
    rows = geometry.in_channels * math.prod(geometry.kernel)
    per_sample = plane(geometry)
    wide = -(-BLOCK_COLUMNS // per_sample)
    fits = max(1, BLOCK_BYTES // max(1, rows * per_sample * geometry.itemsize))
    return max(1, min(wide, fits, -(-geometry.batch // threads)))


# ----------------------------------------------------------------------------- the flat planes
@runtime.jit()
def _fill_flat(x, n0, count, before, padded, flat):
    """flat[c, k P + (z, y, w)] = x[n0 + k, c] placed at ``before`` inside the padded planes, zero around."""
    channels, depth, height, width = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    dp, hp, wp = padded
    pd, ph, pw = before
    size = dp * hp * wp
    flat[:, :] = 0
    for c in range(channels):
        for k in range(count):
            for z in range(depth):
                for y in range(height):
                    start = index(k * size + ((z + pd) * hp + y + ph) * wp + pw)
                    for w in range(width):
                        flat[c, start + w] = x[n0 + k, c, z, y, w]


@runtime.jit()
def _columns(flat, taps, width, cols):
    """cols[c K + t, :width] = flat[c, taps[t] : taps[t] + width]: one contiguous copy per row."""
    kernel = taps.shape[0]
    for c in range(flat.shape[0]):
        for t in range(kernel):
            row = index(c * kernel + t)
            start = index(taps[t])
            for p in range(width):
                cols[row, p] = flat[c, start + p]


@runtime.jit()
def _padded_gradient(grad, n0, count, padded, g):
    """g[o, k P + (z, y, w)] = grad[n0 + k, o, z, y, w] inside the output's extent, zero elsewhere."""
    out_channels, od, oh, ow = grad.shape[1], grad.shape[2], grad.shape[3], grad.shape[4]
    dp, hp, wp = padded
    size = dp * hp * wp
    g[:, :] = 0
    for o in range(out_channels):
        for k in range(count):
            for z in range(od):
                for y in range(oh):
                    start = index(k * size + (z * hp + y) * wp)
                    for w in range(ow):
                        g[o, start + w] = grad[n0 + k, o, z, y, w]


# ----------------------------------------------------------------------------- the passes
@runtime.jit(parallel=True)
def _forward(x, weight, bias, relu, out, taps, before, padded, block, gemm, local_threads):
    """out (N, O, OD, OH, OW) = W @ cols + bias (then ReLU if ``relu``) over flat planes; weight (O, C K)."""
    batch, channels = x.shape[0], x.shape[1]
    out_channels, ck = weight.shape[0], weight.shape[1]
    od, oh, ow = out.shape[2], out.shape[3], out.shape[4]
    dp, hp, wp = padded
    size = dp * hp * wp
    span = taps[taps.shape[0] - 1]
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    for block_index in prange((batch + block - 1) // block):
        previous = runtime.single_threaded_blas(local_threads)
        n0 = block_index * block
        count = min(block, batch - n0)
        width = count * size
        flat = np.empty((channels, block * size + span), x.dtype)
        _fill_flat(x, n0, count, before, padded, flat)
        cols = np.empty((ck, width), x.dtype)
        _columns(flat, taps, width, cols)
        product = np.empty((out_channels, width), x.dtype)
        runtime.gemm(gemm, False, False, out_channels, width, ck, one, weight, 0, ck, cols, 0, width, zero,
                     product, 0, width)
        for k in range(count):  # the positions inside the output, plus the bias
            for o in range(out_channels):
                shift = bias[o]
                for z in range(od):
                    for y in range(oh):
                        start = index(k * size + (z * hp + y) * wp)
                        if relu:
                            for w in range(ow):
                                out[n0 + k, o, z, y, w] = max(product[o, start + w] + shift, zero)
                        else:
                            for w in range(ow):
                                out[n0 + k, o, z, y, w] = product[o, start + w] + shift
        runtime.restore_blas_threads(local_threads, previous)


@runtime.jit(parallel=True)
def _backward_weight(grad, x, dw, taps, before, padded, block, gemm, local_threads):
    """dw (threads, O, C K): each thread's sum over its blocks of the padded gradient @ cols^T."""
    batch, channels = x.shape[0], x.shape[1]
    workers, out_channels, ck = dw.shape[0], dw.shape[1], dw.shape[2]
    dp, hp, wp = padded
    size = dp * hp * wp
    span = taps[taps.shape[0] - 1]
    blocks = (batch + block - 1) // block
    one = x.dtype.type(1)
    for worker in prange(workers):
        previous = runtime.single_threaded_blas(local_threads)
        flat = np.empty((channels, block * size + span), x.dtype)
        cols = np.empty((ck, block * size), x.dtype)
        g = np.empty((out_channels, block * size), x.dtype)
        for block_index in range(worker, blocks, workers):
            n0 = block_index * block
            count = min(block, batch - n0)
            width = count * size
            _fill_flat(x, n0, count, before, padded, flat)
            _columns(flat, taps, width, cols)
            _padded_gradient(grad, n0, count, padded, g)
            runtime.gemm(gemm, False, True, out_channels, ck, width, one, g, 0, block * size, cols, 0,
                         block * size, one, dw, worker * out_channels * ck, ck)
        runtime.restore_blas_threads(local_threads, previous)


@runtime.jit(parallel=True)
def _backward_data(grad, weight, dx, taps, before, padded, block, gemm, local_threads):
    """dx (N, C, D, H, W): dcols = W^T @ the padded gradient, added back tap by tap, cropped; weight (O, C K)."""
    batch, channels = dx.shape[0], dx.shape[1]
    depth, height, width_ = dx.shape[2], dx.shape[3], dx.shape[4]
    out_channels, ck = weight.shape[0], weight.shape[1]
    kernel = taps.shape[0]
    dp, hp, wp = padded
    pd, ph, pw = before
    size = dp * hp * wp
    span = taps[kernel - 1]
    one = grad.dtype.type(1)
    zero = grad.dtype.type(0)
    for block_index in prange((batch + block - 1) // block):
        previous = runtime.single_threaded_blas(local_threads)
        n0 = block_index * block
        count = min(block, batch - n0)
        width = count * size
        g = np.empty((out_channels, width), grad.dtype)
        _padded_gradient(grad, n0, count, padded, g)
        dcols = np.empty((ck, width), grad.dtype)
        runtime.gemm(gemm, True, False, ck, width, out_channels, one, weight, 0, ck, g, 0, width, zero,
                     dcols, 0, width)
        flat = np.zeros((channels, width + span), grad.dtype)
        for c in range(channels):  # each tap's columns added back at its offset: one long add
            for t in range(kernel):
                row = index(c * kernel + t)
                start = index(taps[t])
                for p in range(width):
                    flat[c, start + p] += dcols[row, p]
        for k in range(count):  # the input's positions inside the padded planes
            for c in range(channels):
                for z in range(depth):
                    for y in range(height):
                        start = index(k * size + ((z + pd) * hp + y + ph) * wp + pw)
                        for w in range(width_):
                            dx[n0 + k, c, z, y, w] = flat[c, start + w]
        runtime.restore_blas_threads(local_threads, previous)


def _before(geometry: ConvGeometry) -> tuple:
    return _three(tuple(b for b, _ in geometry.pads), 0)


def _check_block(geometry: ConvGeometry, threads: int, block: int) -> None:
    """Refuse, before allocating, the blocks' columns that cannot fit in memory."""
    per_sample = geometry.in_channels * math.prod(geometry.kernel) * plane(geometry) * geometry.itemsize
    blocks = min(threads, -(-geometry.batch // block))
    check_allocation(per_sample * block * blocks, f"conv{len(geometry.kernel)}d: the flat-plane buffer",
                     f"input shape {geometry.input_shape}, weight shape {geometry.weight_shape}",
                     hint="reduce the input size or the number of channels")


def forward(x, weight, bias, geometry: ConvGeometry, relu: bool = False):
    """Cross-correlate ``x`` (N, C, *S), unpadded, stride 1, groups 1, with ``weight`` (O, C, *K), plus ``bias``."""
    spatial = len(geometry.kernel)
    out = np.empty((geometry.batch, geometry.out_channels) + geometry.out_sizes, dtype=x.dtype)
    bias = np.zeros(geometry.out_channels, x.dtype) if bias is None else np.ascontiguousarray(bias)
    with runtime.launch():
        threads = get_num_threads()
        block = block_samples(geometry, threads)
        _check_block(geometry, threads, block)
        _forward(_as_3d(np.ascontiguousarray(x), spatial), np.ascontiguousarray(weight).reshape(
            geometry.out_channels, -1), bias, relu, _as_3d(out, spatial), offsets(geometry), _before(geometry),
            _padded(geometry), block, runtime.gemm_address(geometry.dtype), runtime.local_threads_address())
    return out


def backward_weight(grad, x, geometry: ConvGeometry):
    """Weight gradient (O, C, *K) from ``grad`` (N, O, *O) and the unpadded input ``x`` (N, C, *S)."""
    spatial = len(geometry.kernel)
    out_channels = geometry.out_channels
    with runtime.launch():
        workers = min(get_num_threads(), geometry.batch)
        block = block_samples(geometry, workers)
        _check_block(geometry, workers, block)
        dw = np.zeros((workers, out_channels, math.prod(geometry.weight_shape[1:])), dtype=x.dtype)
        _backward_weight(_as_3d(np.ascontiguousarray(grad), spatial), _as_3d(np.ascontiguousarray(x), spatial), dw,
                         offsets(geometry), _before(geometry), _padded(geometry), block,
                         runtime.gemm_address(geometry.dtype), runtime.local_threads_address())
    return dw.sum(axis=0).reshape(geometry.weight_shape)


def backward_data(grad, weight, geometry: ConvGeometry):
    """Input gradient (N, C, *S) from ``grad`` (N, O, *O)."""
    spatial = len(geometry.kernel)
    dx = np.empty(geometry.input_shape, dtype=grad.dtype)
    with runtime.launch():
        threads = get_num_threads()
        block = block_samples(geometry, threads)
        _check_block(geometry, threads, block)
        _backward_data(_as_3d(np.ascontiguousarray(grad), spatial), np.ascontiguousarray(weight).reshape(
            geometry.out_channels, -1), _as_3d(dx, spatial), offsets(geometry), _before(geometry),
            _padded(geometry), block, runtime.gemm_address(geometry.dtype), runtime.local_threads_address())
    return dx
