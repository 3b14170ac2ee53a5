"""im2col + GEMM, compiled: each thread packs one sample's columns and multiplies them in its cache; any shape.

The arithmetic is the reference's (``reference/conv_gemm.py``, Chellapilla et al. 2006):

    forward          out[n, g]  = W[g] @ cols[g]            (Og, CgK) @ (CgK, L)
    backward-weight  dW[g]     += grad[n, g] @ cols[g]^T    summed over the samples
    backward-data    dcols[g]   = W[g]^T @ grad[n, g]       then col2im adds them back into dx[n]

with K = prod(kernel), L = prod(output sizes). The reference builds the columns of a chunk
of samples with one NumPy copy (one core) and multiplies them with one GEMM (two cores);
here the samples are spread over the threads, and each thread builds a sample's columns
straight from the unpadded input (zero where a window leaves it), multiplies them with
OpenBLAS called from the thread (``runtime.gemm``) straight into the output, whose rows
start as the bias, and moves on: the columns never leave its cache. col2im adds each
sample's column gradient into that sample's input gradient: no two threads write the same
place.

Every dimensionality runs as 3-D: a 1-D or 2-D problem is viewed with leading spatial
sizes of one.
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_num_threads, prange

from convstack.backend import check_allocation
from convstack.nn.kernels.compiled import runtime
from convstack.nn.kernels.compiled.runtime import index
from convstack.nn.kernels.geometry import ConvGeometry


def applies(geometry: ConvGeometry) -> bool:
    return 1 <= len(geometry.kernel) <= 3 and geometry.dtype in ("float32", "float64")


def _three(values, fill):
    """``values`` (one per spatial dimension) padded in front to three with ``fill``."""
    return (fill,) * (3 - len(values)) + tuple(values)


def _as_3d(array, spatial):
    """(N, C, *S) viewed as (N, C, D, H, W)."""
    return array.reshape(array.shape[:2] + _three(array.shape[2:], 1)) if spatial < 3 else array


def _settings(geometry: ConvGeometry):
    """stride, pads-before, dilation and output sizes, each as a 3-tuple."""
    return (_three(geometry.stride, 1), _three(tuple(b for b, _ in geometry.pads), 0),
            _three(geometry.dilation, 1), _three(geometry.out_sizes, 1))


# ----------------------------------------------------------------------------- columns and their adjoint
@runtime.jit()
def _inside(size_in, size_out, stride, offset):
    """The outputs o whose tap o * stride + offset lands inside [0, size_in), as [lo, hi)."""
    lo = min(size_out, max(0, (-offset + stride - 1) // stride))
    hi = max(lo, min(size_out, (size_in - 1 - offset) // stride + 1))
    return lo, hi


@runtime.jit()
def _pack(x, n, stride, before, dilation, kernel, out_sizes, cols, first):
    """cols[(c, kd, kh, kw), first + (od, oh, ow)] = x[n, c, od*s + kd*d - p, ...], zero outside the input."""
    channels, depth, height, width = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    kd_, kh_, kw_ = kernel
    od_, oh_, ow_ = out_sizes
    sd, sh, sw = stride
    pd, ph, pw = before
    dd, dh, dw = dilation
    zero = x.dtype.type(0)
    row = 0
    for c in range(channels):
        for kd in range(kd_):
            z_lo, z_hi = _inside(depth, od_, sd, kd * dd - pd)
            for kh in range(kh_):
                y_lo, y_hi = _inside(height, oh_, sh, kh * dh - ph)
                for kw in range(kw_):
                    offset = kw * dw - pw
                    lo, hi = _inside(width, ow_, sw, offset)
                    column = first
                    for od in range(od_):
                        z = od * sd + kd * dd - pd
                        for oh in range(oh_):
                            if od < z_lo or od >= z_hi or oh < y_lo or oh >= y_hi:
                                for ow in range(ow_):
                                    cols[row, index(column + ow)] = zero
                            else:
                                y = oh * sh + kh * dh - ph
                                for ow in range(lo):
                                    cols[row, index(column + ow)] = zero
                                if sw == 1:  # a unit stride the compiler can see: a vector copy
                                    for ow in range(lo, hi):
                                        cols[row, index(column + ow)] = x[n, c, z, y, index(ow + offset)]
                                else:
                                    for ow in range(lo, hi):
                                        cols[row, index(column + ow)] = x[n, c, z, y, index(ow * sw + offset)]
                                for ow in range(hi, ow_):
                                    cols[row, index(column + ow)] = zero
                            column += ow_
                    row += 1


@runtime.jit()
def _unpack_add(cols, first, n, stride, before, dilation, kernel, out_sizes, dx):
    """The adjoint of ``_pack``: dx[n, c, ...] += every column value (from column ``first``) whose tap lands inside."""
    channels, depth, height, width = dx.shape[1], dx.shape[2], dx.shape[3], dx.shape[4]
    kd_, kh_, kw_ = kernel
    od_, oh_, ow_ = out_sizes
    sd, sh, sw = stride
    pd, ph, pw = before
    dd, dh, dw = dilation
    row = 0
    for c in range(channels):
        for kd in range(kd_):
            z_lo, z_hi = _inside(depth, od_, sd, kd * dd - pd)
            for kh in range(kh_):
                y_lo, y_hi = _inside(height, oh_, sh, kh * dh - ph)
                for kw in range(kw_):
                    offset = kw * dw - pw
                    lo, hi = _inside(width, ow_, sw, offset)
                    for od in range(z_lo, z_hi):
                        z = od * sd + kd * dd - pd
                        for oh in range(y_lo, y_hi):
                            y = oh * sh + kh * dh - ph
                            column = first + (od * oh_ + oh) * ow_
                            if sw == 1:
                                for ow in range(lo, hi):
                                    dx[n, c, z, y, index(ow + offset)] += cols[row, index(column + ow)]
                            else:
                                for ow in range(lo, hi):
                                    dx[n, c, z, y, index(ow * sw + offset)] += cols[row, index(column + ow)]
                    row += 1


# ----------------------------------------------------------------------------- the passes
# A thread takes a block of ``block`` samples: their columns side by side, (G CgK, block L), one GEMM
# per group, so that small layers (LeNet's 10x10 outputs) still give OpenBLAS wide products.
@runtime.jit(parallel=True)
def _forward(x, weight, bias, relu, out, stride, before, dilation, kernel, out_sizes, groups, block, gemm,
             local_threads):
    """out (N, O, L) = W @ cols + bias (then ReLU if ``relu``), a block of samples at a time; weight (O, CgK)."""
    batch = x.shape[0]
    out_channels, cgk = weight.shape[0], weight.shape[1]
    og = out_channels // groups
    length = out.shape[2]
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    for block_index in prange((batch + block - 1) // block):
        previous = runtime.single_threaded_blas(local_threads)
        n0 = block_index * block
        count = min(block, batch - n0)
        width = count * length
        cols = np.empty((groups * cgk, width), x.dtype)
        for k in range(count):
            _pack(x, n0 + k, stride, before, dilation, kernel, out_sizes, cols, k * length)
        product = np.empty((out_channels, width), x.dtype)
        for g in range(groups):
            runtime.gemm(gemm, False, False, og, width, cgk, one, weight, g * og * cgk, cgk,
                         cols, g * cgk * width, width, zero, product, g * og * width, width)
        for k in range(count):  # (O, block, L) -> (block, O, L), plus the bias
            for o in range(out_channels):
                shift = bias[o]
                if relu:
                    for l in range(length):
                        out[n0 + k, o, l] = max(product[o, k * length + l] + shift, zero)
                else:
                    for l in range(length):
                        out[n0 + k, o, l] = product[o, k * length + l] + shift
        runtime.restore_blas_threads(local_threads, previous)


@runtime.jit()
def _gather_gradient(grad, n0, count, gathered):
    """gathered (O, count L) = grad[n0:n0 + count] (count, O, L) with the samples side by side."""
    length = grad.shape[2]
    for k in range(count):
        for o in range(grad.shape[1]):
            for l in range(length):
                gathered[o, k * length + l] = grad[n0 + k, o, l]


@runtime.jit(parallel=True)
def _backward_weight(grad, x, dw, stride, before, dilation, kernel, out_sizes, groups, block, gemm, local_threads):
    """dw (threads, O, CgK): each thread's sum over its blocks of samples of grad @ cols^T."""
    batch = x.shape[0]
    workers, out_channels, cgk = dw.shape[0], dw.shape[1], dw.shape[2]
    og = out_channels // groups
    length = grad.shape[2]
    one = x.dtype.type(1)
    blocks = (batch + block - 1) // block
    for worker in prange(workers):
        previous = runtime.single_threaded_blas(local_threads)
        cols = np.empty((groups * cgk, block * length), x.dtype)
        gathered = np.empty((out_channels, block * length), x.dtype)
        for block_index in range(worker, blocks, workers):
            n0 = block_index * block
            count = min(block, batch - n0)
            width = count * length
            for k in range(count):
                _pack(x, n0 + k, stride, before, dilation, kernel, out_sizes, cols, k * length)
            _gather_gradient(grad, n0, count, gathered)
            for g in range(groups):
                runtime.gemm(gemm, False, True, og, cgk, width, one, gathered, g * og * block * length,
                             block * length, cols, g * cgk * block * length, block * length, one,
                             dw, (worker * out_channels + g * og) * cgk, cgk)
        runtime.restore_blas_threads(local_threads, previous)


@runtime.jit(parallel=True)
def _backward_data(grad, weight, dx, stride, before, dilation, kernel, out_sizes, groups, block, gemm,
                   local_threads):
    """dx (N, C, D, H, W) = col2im(W^T @ grad), a block of samples at a time; weight (O, CgK)."""
    batch = dx.shape[0]
    out_channels, cgk = weight.shape[0], weight.shape[1]
    og = out_channels // groups
    length = grad.shape[2]
    one = grad.dtype.type(1)
    zero = grad.dtype.type(0)
    for block_index in prange((batch + block - 1) // block):
        previous = runtime.single_threaded_blas(local_threads)
        n0 = block_index * block
        count = min(block, batch - n0)
        width = count * length
        gathered = np.empty((out_channels, width), grad.dtype)
        _gather_gradient(grad, n0, count, gathered)
        dcols = np.empty((groups * cgk, width), grad.dtype)
        for g in range(groups):
            runtime.gemm(gemm, True, False, cgk, width, og, one, weight, g * og * cgk, cgk,
                         gathered, g * og * width, width, zero, dcols, g * cgk * width, width)
        for k in range(count):
            dx[n0 + k] = 0
            _unpack_add(dcols, k * length, n0 + k, stride, before, dilation, kernel, out_sizes, dx)
        runtime.restore_blas_threads(local_threads, previous)


# Columns a block of samples spans at least (the GEMMs' n), and the bytes its columns take at most.
BLOCK_COLUMNS = 512
BLOCK_BYTES = 1 * 2**20


def block_samples(geometry: ConvGeometry, threads: int) -> int:
    """Samples per block: columns at least ``BLOCK_COLUMNS`` wide within ``BLOCK_BYTES``, one block per thread at
    least, one sample at least."""
    length = math.prod(geometry.out_sizes)
    rows = geometry.in_channels * math.prod(geometry.kernel)
    wide = -(-BLOCK_COLUMNS // length)
    fits = max(1, BLOCK_BYTES // max(1, rows * length * geometry.itemsize))
    return max(1, min(wide, fits, -(-geometry.batch // threads)))


def _contiguous(array):
    return np.ascontiguousarray(array)


def _check_columns(geometry: ConvGeometry, threads: int, block: int) -> None:
    """Refuse, before allocating, the columns (a block of samples a thread) that cannot fit in memory."""
    per_sample = geometry.in_channels * math.prod(geometry.kernel) * math.prod(geometry.out_sizes) * geometry.itemsize
    blocks = min(threads, -(-geometry.batch // block))
    check_allocation(per_sample * block * blocks, f"conv{len(geometry.kernel)}d: the im2col buffer",
                     f"input shape {geometry.input_shape}, weight shape {geometry.weight_shape}",
                     hint="reduce the input size or the number of channels")


def forward(x, weight, bias, geometry: ConvGeometry, relu: bool = False):
    """Cross-correlate ``x`` (N, C, *S), unpadded, with ``weight`` (O, Cg, *K), plus ``bias`` (then ReLU if
    ``relu``): (N, O, *O)."""
    spatial = len(geometry.kernel)
    stride, before, dilation, out_sizes = _settings(geometry)
    out_channels = geometry.out_channels
    out = np.empty((geometry.batch, out_channels, math.prod(geometry.out_sizes)), dtype=x.dtype)
    bias = np.zeros(out_channels, x.dtype) if bias is None else _contiguous(bias)
    with runtime.launch():
        threads = get_num_threads()
        block = block_samples(geometry, threads)
        _check_columns(geometry, threads, block)
        _forward(_as_3d(_contiguous(x), spatial), _contiguous(weight).reshape(out_channels, -1), bias, relu, out,
                 stride, before, dilation, _three(geometry.kernel, 1), out_sizes, geometry.groups, block,
                 runtime.gemm_address(geometry.dtype), runtime.local_threads_address())
    return out.reshape((geometry.batch, out_channels) + geometry.out_sizes)


def backward_weight(grad, x, geometry: ConvGeometry):
    """Weight gradient (O, Cg, *K) from ``grad`` (N, O, *O) and the unpadded input ``x`` (N, C, *S)."""
    spatial = len(geometry.kernel)
    stride, before, dilation, out_sizes = _settings(geometry)
    out_channels = geometry.out_channels
    cgk = math.prod(geometry.weight_shape[1:])
    with runtime.launch():
        workers = min(get_num_threads(), geometry.batch)
        block = block_samples(geometry, workers)
        _check_columns(geometry, workers, block)
        dw = np.zeros((workers, out_channels, cgk), dtype=x.dtype)
        _backward_weight(_contiguous(grad).reshape(geometry.batch, out_channels, -1), _as_3d(_contiguous(x), spatial),
                         dw, stride, before, dilation, _three(geometry.kernel, 1), out_sizes, geometry.groups, block,
                         runtime.gemm_address(geometry.dtype), runtime.local_threads_address())
    return dw.sum(axis=0).reshape(geometry.weight_shape)


def backward_data(grad, weight, geometry: ConvGeometry):
    """Input gradient (N, C, *S) from ``grad`` (N, O, *O): W^T @ grad, then col2im, sample by sample."""
    spatial = len(geometry.kernel)
    stride, before, dilation, out_sizes = _settings(geometry)
    out_channels = geometry.out_channels
    dx = np.empty(geometry.input_shape, dtype=grad.dtype)
    with runtime.launch():
        threads = get_num_threads()
        block = block_samples(geometry, threads)
        _check_columns(geometry, threads, block)
        _backward_data(_contiguous(grad).reshape(geometry.batch, out_channels, -1),
                       _contiguous(weight).reshape(out_channels, -1), _as_3d(dx, spatial), stride, before, dilation,
                       _three(geometry.kernel, 1), out_sizes, geometry.groups, block,
                       runtime.gemm_address(geometry.dtype), runtime.local_threads_address())
    return dx
