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
def _pack(x, n, stride, before, dilation, kernel, out_sizes, cols):
    """cols[(c, kd, kh, kw), (od, oh, ow)] = x[n, c, od*s + kd*d - p, ...], zero outside the input."""
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
            for kh in range(kh_):
                for kw in range(kw_):
                    column = 0
                    for od in range(od_):
                        z = od * sd + kd * dd - pd
                        for oh in range(oh_):
                            y = oh * sh + kh * dh - ph
                            if z < 0 or z >= depth or y < 0 or y >= height:
                                for ow in range(ow_):
                                    cols[row, column + ow] = zero
                            else:
                                offset = kw * dw - pw
                                # the outputs whose tap lands inside the row: lo <= ow < hi
                                lo = min(ow_, max(0, (-offset + sw - 1) // sw))
                                hi = max(lo, min(ow_, (width - 1 - offset) // sw + 1))
                                for ow in range(lo):
                                    cols[row, column + ow] = zero
                                for ow in range(lo, hi):
                                    cols[row, column + ow] = x[n, c, z, y, ow * sw + offset]
                                for ow in range(hi, ow_):
                                    cols[row, column + ow] = zero
                            column += ow_
                    row += 1


@runtime.jit()
def _unpack_add(cols, n, stride, before, dilation, kernel, out_sizes, dx):
    """The adjoint of ``_pack``: dx[n, c, ...] += every column value where its window tap lands inside."""
    channels, depth, height, width = dx.shape[1], dx.shape[2], dx.shape[3], dx.shape[4]
    kd_, kh_, kw_ = kernel
    od_, oh_, ow_ = out_sizes
    sd, sh, sw = stride
    pd, ph, pw = before
    dd, dh, dw = dilation
    row = 0
    for c in range(channels):
        for kd in range(kd_):
            for kh in range(kh_):
                for kw in range(kw_):
                    column = 0
                    for od in range(od_):
                        z = od * sd + kd * dd - pd
                        for oh in range(oh_):
                            y = oh * sh + kh * dh - ph
                            if 0 <= z < depth and 0 <= y < height:
                                offset = kw * dw - pw
                                lo = min(ow_, max(0, (-offset + sw - 1) // sw))
                                hi = max(lo, min(ow_, (width - 1 - offset) // sw + 1))
                                for ow in range(lo, hi):
                                    dx[n, c, z, y, ow * sw + offset] += cols[row, column + ow]
                            column += ow_
                    row += 1


# ----------------------------------------------------------------------------- the passes
@runtime.jit(parallel=True)
def _forward(x, weight, bias, out, stride, before, dilation, kernel, out_sizes, groups, gemm, local_threads):
    """out (N, O, L) = W @ cols + bias, sample by sample; weight (O, CgK)."""
    batch = x.shape[0]
    out_channels, cgk = weight.shape[0], weight.shape[1]
    og = out_channels // groups
    length = out.shape[2]
    one = x.dtype.type(1)
    for n in prange(batch):
        previous = runtime.single_threaded_blas(local_threads)
        cols = np.empty((groups * cgk, length), x.dtype)
        _pack(x, n, stride, before, dilation, kernel, out_sizes, cols)
        for o in range(out_channels):
            out[n, o, :] = bias[o]
        for g in range(groups):
            runtime.gemm(gemm, False, False, og, length, cgk, one, weight, g * og * cgk, cgk,
                         cols, g * cgk * length, length, one, out, (n * out_channels + g * og) * length, length)
        runtime.restore_blas_threads(local_threads, previous)


@runtime.jit(parallel=True)
def _backward_weight(grad, x, dw, stride, before, dilation, kernel, out_sizes, groups, gemm, local_threads):
    """dw (threads, O, CgK): each thread's sum over its samples of grad[n] @ cols^T."""
    batch = x.shape[0]
    workers, out_channels, cgk = dw.shape[0], dw.shape[1], dw.shape[2]
    og = out_channels // groups
    length = grad.shape[2]
    one = x.dtype.type(1)
    for worker in prange(workers):
        previous = runtime.single_threaded_blas(local_threads)
        cols = np.empty((groups * cgk, length), x.dtype)
        for n in range(worker, batch, workers):
            _pack(x, n, stride, before, dilation, kernel, out_sizes, cols)
            for g in range(groups):
                runtime.gemm(gemm, False, True, og, cgk, length, one, grad, (n * out_channels + g * og) * length,
                             length, cols, g * cgk * length, length, one, dw, (worker * out_channels + g * og) * cgk,
                             cgk)
        runtime.restore_blas_threads(local_threads, previous)


@runtime.jit(parallel=True)
def _backward_data(grad, weight, dx, stride, before, dilation, kernel, out_sizes, groups, gemm, local_threads):
    """dx (N, C, D, H, W) = col2im(W^T @ grad[n]) sample by sample; weight (O, CgK)."""
    batch = dx.shape[0]
    out_channels, cgk = weight.shape[0], weight.shape[1]
    og = out_channels // groups
    length = grad.shape[2]
    one = grad.dtype.type(1)
    zero = grad.dtype.type(0)
    for n in prange(batch):
        previous = runtime.single_threaded_blas(local_threads)
        dcols = np.empty((groups * cgk, length), grad.dtype)
        for g in range(groups):
            runtime.gemm(gemm, True, False, cgk, length, og, one, weight, g * og * cgk, cgk,
                         grad, (n * out_channels + g * og) * length, length, zero, dcols, g * cgk * length, length)
        dx[n] = 0
        _unpack_add(dcols, n, stride, before, dilation, kernel, out_sizes, dx)
        runtime.restore_blas_threads(local_threads, previous)


def _contiguous(array):
    return np.ascontiguousarray(array)


def _check_columns(geometry: ConvGeometry, threads: int) -> None:
    """Refuse, before allocating, columns (one sample a thread) that cannot fit in memory."""
    per_sample = geometry.in_channels * math.prod(geometry.kernel) * math.prod(geometry.out_sizes) * geometry.itemsize
    check_allocation(per_sample * min(threads, geometry.batch), f"conv{len(geometry.kernel)}d: the im2col buffer",
                     f"input shape {geometry.input_shape}, weight shape {geometry.weight_shape}",
                     hint="reduce the input size or the number of channels")


def forward(x, weight, bias, geometry: ConvGeometry):
    """Cross-correlate ``x`` (N, C, *S), unpadded, with ``weight`` (O, Cg, *K), plus ``bias``: (N, O, *O)."""
    spatial = len(geometry.kernel)
    stride, before, dilation, out_sizes = _settings(geometry)
    out_channels = geometry.out_channels
    out = np.empty((geometry.batch, out_channels, math.prod(geometry.out_sizes)), dtype=x.dtype)
    bias = np.zeros(out_channels, x.dtype) if bias is None else _contiguous(bias)
    with runtime.launch():
        _check_columns(geometry, get_num_threads())
        _forward(_as_3d(_contiguous(x), spatial), _contiguous(weight).reshape(out_channels, -1), bias, out, stride,
                 before, dilation, _three(geometry.kernel, 1), out_sizes, geometry.groups,
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
        _check_columns(geometry, workers)
        dw = np.zeros((workers, out_channels, cgk), dtype=x.dtype)
        _backward_weight(_contiguous(grad).reshape(geometry.batch, out_channels, -1), _as_3d(_contiguous(x), spatial),
                         dw, stride, before, dilation, _three(geometry.kernel, 1), out_sizes, geometry.groups,
                         runtime.gemm_address(geometry.dtype), runtime.local_threads_address())
    return dw.sum(axis=0).reshape(geometry.weight_shape)


def backward_data(grad, weight, geometry: ConvGeometry):
    """Input gradient (N, C, *S) from ``grad`` (N, O, *O): W^T @ grad, then col2im, sample by sample."""
    spatial = len(geometry.kernel)
    stride, before, dilation, out_sizes = _settings(geometry)
    out_channels = geometry.out_channels
    dx = np.empty(geometry.input_shape, dtype=grad.dtype)
    with runtime.launch():
        _check_columns(geometry, get_num_threads())
        _backward_data(_contiguous(grad).reshape(geometry.batch, out_channels, -1),
                       _contiguous(weight).reshape(out_channels, -1), _as_3d(dx, spatial), stride, before, dilation,
                       _three(geometry.kernel, 1), out_sizes, geometry.groups, runtime.gemm_address(geometry.dtype),
                       runtime.local_threads_address())
    return dx
