"""Batch normalisation (and batch norm + ReLU), compiled: statistics in one pass, the output in another.

The input is viewed as (N, C, L) planes, L the product of the trailing dimensions; every pass
runs over the N * C planes in parallel, one contiguous run of planes per thread.

Forward, training: per plane the sums of ``d = x - s`` and ``d * d`` in float64, ``s`` the
channel's first element (shifted sums: ``var = mean(d^2) - mean(d)^2`` loses nothing to
cancellation when the data sit far from zero, as long as they sit near ``s``, which is one of
them); the planes' sums add up per channel serially. Then one pass writes
``(x - mean) * weight / sqrt(var + eps) + bias`` (and ``max(., 0)`` with ``relu``). Eval skips
the statistics and reads the running ones.

Backward: one pass sums ``g`` and ``g * (x - mean)`` per plane (``g`` zeroed where the
ReLU's output is 0), one writes ``dx = a g + b (x - mean) + k``, with ``a = weight * inv_std``,
``b = -a inv_std^2 sum(g (x - mean)) / count``, ``k = -a sum(g) / count`` (in eval ``b = k = 0``).
Backward keeps the input and the statistics, not a centred copy.

Arithmetic is in float64 inside the kernels, stored in the input's dtype. Planes shorter than
``MIN_PLANE`` (a (N, C) ``BatchNorm1d`` input has planes of one) take the reference kernels,
whose whole-array reductions suit them better than a pass per plane.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy

from convstack.nn.kernels.compiled import runtime
from convstack.nn.kernels.compiled.parallel import FLOAT_DTYPES, chunk_count, launch
from convstack.nn.kernels.reference import normalization as reference

MIN_PLANE = 16


# Reassociating the float64 sums lets them vectorise; the rounding stays far below float32's (and at
# float64's own level), inside every parity tolerance. No other fast-math flag: NaNs must propagate.
@runtime.jit(fastmath={"reassoc", "contract"})
def _shifted_sums(row, shift):
    """``(sum(row - shift), sum((row - shift)^2))`` in float64 over a 1-D array."""
    first = 0.0
    second = 0.0
    for i in range(row.shape[0]):
        d = row[i] - shift
        first += d
        second += d * d
    return first, second


@runtime.jit()
def _normalise(row, out, mean, scale, bias, relu):
    """``out = (row - mean) * scale + bias``, then ``max(., 0)`` with ``relu`` (a NaN stays NaN)."""
    if relu:
        for i in range(row.shape[0]):
            value = (row[i] - mean) * scale + bias
            out[i] = 0.0 if value < 0 else value
    else:
        for i in range(row.shape[0]):
            out[i] = (row[i] - mean) * scale + bias


@runtime.jit(fastmath={"reassoc", "contract"})  # float64 sums, as _shifted_sums
def _gradient_sums(grad, row, out, mean, relu):
    """``(sum(g), sum(g * (row - mean)))`` in float64, ``g`` the gradient, zeroed where ``out <= 0`` with ``relu``."""
    first = 0.0
    second = 0.0
    if relu:
        for i in range(row.shape[0]):
            g = grad[i] if out[i] > 0 else 0.0
            first += g
            second += g * (row[i] - mean)
    else:
        for i in range(row.shape[0]):
            g = grad[i]
            first += g
            second += g * (row[i] - mean)
    return first, second


@runtime.jit()
def _input_gradient(grad, row, out, grad_input, mean, a, b, k, relu):
    """``grad_input = a g + b (row - mean) + k``, ``g`` the gradient zeroed where ``out <= 0`` with ``relu``."""
    if relu:
        for i in range(row.shape[0]):
            g = grad[i] if out[i] > 0 else 0.0
            grad_input[i] = a * g + b * (row[i] - mean) + k
    else:
        for i in range(row.shape[0]):
            grad_input[i] = a * grad[i] + b * (row[i] - mean) + k


@runtime.jit(parallel=True)
def _forward(x, out, weight, bias, mean, var, inv_std, training, eps, relu, sums):
    """Batch norm of ``x`` (N, C, L) into ``out``.

    ``weight``, ``bias``: (C,) float64. ``mean``, ``var``: (C,) float64, written with the batch's
    statistics (biased variance) in training, read (the running ones) otherwise; ``inv_std`` (C,) is
    written. ``sums``: (N * C, 2) float64 scratch.
    """
    n, channels, length = x.shape
    planes = n * channels
    if training:
        for plane in numba.prange(planes):
            i, c = plane // channels, plane % channels
            sums[plane, 0], sums[plane, 1] = _shifted_sums(x[i, c], numpy.float64(x[0, c, 0]))
        count = n * length
        for c in range(channels):
            first = 0.0
            second = 0.0
            for i in range(n):
                first += sums[i * channels + c, 0]
                second += sums[i * channels + c, 1]
            first /= count
            mean[c] = x[0, c, 0] + first
            var[c] = max(second / count - first * first, 0.0)
    for c in range(channels):
        inv_std[c] = 1.0 / math.sqrt(var[c] + eps)
    for plane in numba.prange(planes):
        i, c = plane // channels, plane % channels
        _normalise(x[i, c], out[i, c], mean[c], inv_std[c] * weight[c], bias[c], relu)


@runtime.jit(parallel=True)
def _backward(grad, x, out, mean, inv_std, weight, training, relu, want_input, sums, grad_input, channel_sums):
    """Gradients of ``_forward``: ``grad_input`` (N, C, L) when ``want_input``; ``channel_sums`` (2, C) float64
    gets ``sum(g)`` (the bias's gradient) and ``inv_std * sum(g (x - mean))`` (the weight's)."""
    n, channels, length = x.shape
    planes = n * channels
    for plane in numba.prange(planes):
        i, c = plane // channels, plane % channels
        sums[plane, 0], sums[plane, 1] = _gradient_sums(grad[i, c], x[i, c], out[i, c], mean[c], relu)
    for c in range(channels):
        first = 0.0
        second = 0.0
        for i in range(n):
            first += sums[i * channels + c, 0]
            second += sums[i * channels + c, 1]
        channel_sums[0, c] = first
        channel_sums[1, c] = inv_std[c] * second
    if not want_input:
        return
    count = n * length
    for plane in numba.prange(planes):
        i, c = plane // channels, plane % channels
        a = weight[c] * inv_std[c]
        b = 0.0
        k = 0.0
        if training:
            b = -a * inv_std[c] * channel_sums[1, c] / count
            k = -a * channel_sums[0, c] / count
        _input_gradient(grad[i, c], x[i, c], out[i, c], grad_input[i, c], mean[c], a, b, k, relu)


def _channel_values(values, default, channels):
    """A (C,) float64 copy of ``values``, or ``default`` everywhere when it is None."""
    if values is None:
        return numpy.full(channels, default)
    return values.astype(numpy.float64)


class _Saved(NamedTuple):
    """What the compiled backward needs: the input as (N, C, L), the statistics, and the ReLU's output."""

    x: numpy.ndarray  # (N, C, L)
    mean: numpy.ndarray  # (C,) float64
    inv_std: numpy.ndarray  # (C,) float64
    weight: numpy.ndarray  # (C,) float64, ones without a weight
    training: bool
    out: numpy.ndarray | None  # (N, C, L) with relu, else None


def batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps, needs, relu):
    """``reference.batch_norm_forward``, compiled (same arguments and results; its own ``saved``)."""
    n, channels = x.shape[0], x.shape[1]
    length = x.size // max(1, n * channels)
    if length < MIN_PLANE or x.dtype not in FLOAT_DTYPES:
        return reference.batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps,
                                            needs, relu)
    x3 = numpy.ascontiguousarray(x).reshape(n, channels, length)  # (N, C, L)
    out = numpy.empty(x.shape, dtype=x.dtype)
    weight64, bias64 = _channel_values(weight, 1.0, channels), _channel_values(bias, 0.0, channels)
    if training:
        mean, var = numpy.empty(channels), numpy.empty(channels)
    else:
        mean, var = running_mean.astype(numpy.float64), running_var.astype(numpy.float64)
    inv_std = numpy.empty(channels)
    launch(_forward, x3, out.reshape(x3.shape), weight64, bias64, mean, var, inv_std, bool(training), float(eps),
           bool(relu), numpy.empty((n * channels, 2)), chunks=chunk_count(x.size))
    if training:
        count = n * length
        if running_mean is not None:
            running_mean *= 1.0 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1.0 - momentum
            running_var += momentum * var * (count / (count - 1))  # PyTorch stores the unbiased variance
    if not any(needs):
        return out, None
    return out, _Saved(x3, mean, inv_std, weight64, bool(training), out.reshape(x3.shape) if relu else None)


def batch_norm_backward(grad, saved, needs):
    """``reference.batch_norm_backward`` for what ``batch_norm_forward`` saved: ``(grad_input, grad_weight,
    grad_bias)``."""
    if not isinstance(saved, _Saved):  # the forward took the reference kernel
        return reference.batch_norm_backward(grad, saved, needs)
    x3 = saved.x
    g3 = numpy.ascontiguousarray(grad, dtype=x3.dtype).reshape(x3.shape)  # (N, C, L)
    grad_input = numpy.empty(grad.shape, dtype=x3.dtype) if needs[0] else None  # owns its memory (autograd)
    channel_sums = numpy.empty((2, x3.shape[1]))
    relu = saved.out is not None
    launch(_backward, g3, x3, saved.out if relu else x3, saved.mean, saved.inv_std, saved.weight, saved.training,
           relu, bool(needs[0]), numpy.empty((x3.shape[0] * x3.shape[1], 2)),
           g3 if grad_input is None else grad_input.reshape(x3.shape), channel_sums,
           chunks=chunk_count(x3.size))
    return (grad_input,
            channel_sums[1].astype(x3.dtype) if needs[1] else None,
            channel_sums[0].astype(x3.dtype) if needs[2] else None)


def register(tier) -> None:
    tier.register(reference.batch_norm_forward, batch_norm_forward)
    tier.register(reference.batch_norm_backward, batch_norm_backward)
