"""1x1(x1) convolution at stride 1 without padding, compiled: one GEMM per sample, the samples spread over the threads.

A kernel of ones mixes the channels of each position and nothing else, so a sample's output
is one product, ``out[n] = W @ x[n]`` ((O, C) @ (C, L) per group), read straight from the
input and written straight into the output: no columns, no transposes. The reference
(``reference/pointwise.py``) runs it as NumPy's batched matmul, a GEMM call per sample in
turn, each split over the BLAS threads; here each thread takes whole samples.

    forward          out[n, g] = W[g] @ x[n, g] + bias
    backward-data    dx[n, g] = W[g]^T @ grad[n, g]
    backward-weight  dW[g] += grad[n, g] @ x[n, g]^T, summed per thread
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_num_threads, prange

from convstack.nn.kernels.compiled import runtime
from convstack.nn.kernels.geometry import ConvGeometry


def applies(geometry: ConvGeometry) -> bool:
    """1x1(x1) kernels at stride 1 without padding (strided or padded ones run the reference's pointwise)."""
    return (all(k == 1 for k in geometry.kernel) and geometry.unit_stride
            and all(b == 0 and a == 0 for b, a in geometry.pads) and geometry.dtype in ("float32", "float64"))


@runtime.jit(parallel=True)
def _forward(x, weight, bias, relu, out, groups, gemm, local_threads):
    """out (N, O, L) = W @ x[n] + bias (then ReLU if ``relu``); x (N, C, L), weight (O, Cg)."""
    batch, channels, length = x.shape[0], x.shape[1], x.shape[2]
    out_channels, cg = weight.shape[0], weight.shape[1]
    og = out_channels // groups
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    for n in prange(batch):
        previous = runtime.single_threaded_blas(local_threads)
        for o in range(out_channels):
            out[n, o, :] = bias[o]
        for g in range(groups):
            runtime.gemm(gemm, False, False, og, length, cg, one, weight, g * og * cg, cg,
                         x, (n * channels + g * cg) * length, length, one, out, (n * out_channels + g * og) * length,
                         length)
        if relu:
            for o in range(out_channels):
                for position in range(length):
                    out[n, o, position] = max(out[n, o, position], zero)
        runtime.restore_blas_threads(local_threads, previous)


@runtime.jit(parallel=True)
def _backward_data(grad, weight, dx, groups, gemm, local_threads):
    """dx (N, C, L) = W^T @ grad[n]; grad (N, O, L), weight (O, Cg)."""
    batch, channels, length = dx.shape[0], dx.shape[1], dx.shape[2]
    out_channels, cg = weight.shape[0], weight.shape[1]
    og = out_channels // groups
    one = grad.dtype.type(1)
    zero = grad.dtype.type(0)
    for n in prange(batch):
        previous = runtime.single_threaded_blas(local_threads)
        for g in range(groups):
            runtime.gemm(gemm, True, False, cg, length, og, one, weight, g * og * cg, cg,
                         grad, (n * out_channels + g * og) * length, length, zero, dx,
                         (n * channels + g * cg) * length, length)
        runtime.restore_blas_threads(local_threads, previous)


@runtime.jit(parallel=True)
def _backward_weight(grad, x, dw, groups, gemm, local_threads):
    """dw (threads, O, Cg): each thread's sum over its samples of grad[n] @ x[n]^T."""
    batch, channels, length = x.shape[0], x.shape[1], x.shape[2]
    workers, out_channels, cg = dw.shape[0], dw.shape[1], dw.shape[2]
    og = out_channels // groups
    one = x.dtype.type(1)
    for worker in prange(workers):
        previous = runtime.single_threaded_blas(local_threads)
        for n in range(worker, batch, workers):
            for g in range(groups):
                runtime.gemm(gemm, False, True, og, cg, length, one, grad, (n * out_channels + g * og) * length,
                             length, x, (n * channels + g * cg) * length, length, one, dw,
                             (worker * out_channels + g * og) * cg, cg)
        runtime.restore_blas_threads(local_threads, previous)


def _flat(array):
    """(N, C, *S) as a contiguous (N, C, L)."""
    return np.ascontiguousarray(array).reshape(array.shape[0], array.shape[1], -1)


def forward(x, weight, bias, geometry: ConvGeometry, relu: bool = False):
    out = np.empty((geometry.batch, geometry.out_channels, math.prod(geometry.out_sizes)), dtype=x.dtype)
    bias = np.zeros(geometry.out_channels, x.dtype) if bias is None else np.ascontiguousarray(bias)
    with runtime.launch():
        _forward(_flat(x), np.ascontiguousarray(weight).reshape(geometry.out_channels, -1), bias, relu, out,
                 geometry.groups, runtime.gemm_address(geometry.dtype), runtime.local_threads_address())
    return out.reshape((geometry.batch, geometry.out_channels) + geometry.out_sizes)


def backward_data(grad, weight, geometry: ConvGeometry):
    dx = np.empty(geometry.input_shape, dtype=grad.dtype)
    with runtime.launch():
        _backward_data(_flat(grad), np.ascontiguousarray(weight).reshape(geometry.out_channels, -1),
                       dx.reshape(geometry.batch, geometry.in_channels, -1), geometry.groups,
                       runtime.gemm_address(geometry.dtype), runtime.local_threads_address())
    return dx


def backward_weight(grad, x, geometry: ConvGeometry):
    with runtime.launch():
        workers = min(get_num_threads(), geometry.batch)
        dw = np.zeros((workers, geometry.out_channels, geometry.weight_shape[1]), dtype=x.dtype)
        _backward_weight(_flat(grad), _flat(x), dw, geometry.groups, runtime.gemm_address(geometry.dtype),
                         runtime.local_threads_address())
    return dw.sum(axis=0).reshape(geometry.weight_shape)
