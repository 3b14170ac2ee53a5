"""Softmax cross-entropy, compiled: loss and gradient in one pass over the scores.

The scores are viewed as (N, C, L), L the product of the spatial dimensions (1 for (N, C)
scores). For each of the N * L positions: the maximum over the classes, ``e = exp(x - max)``
(kept in the gradient's array), ``lse = max + log(sum(e))``, the loss term
``w (lse - x[t])``, and the gradient of the reduced loss ``(e / sum(e) - onehot(t)) w /
denominator``: the forward writes the gradient for a unit upstream gradient, the backward
scales it. Rows (samples) split into one chunk per thread when the scores are large; the
per-position scratch (maxima, sums) is allocated once per chunk. Arithmetic in float64.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy

from convstack.nn.kernels.compiled import runtime
from convstack.nn.kernels.compiled.parallel import FLOAT_DTYPES, chunk_bounds, chunk_count, launch
from convstack.nn.kernels.reference import loss as reference

#: Scores below this many elements per chunk stay on one thread (an exp and a few flops each).
GRAIN = 1 << 14


@runtime.jit()
def _cross_entropy_rows(x, target, target_weight, denominator, grad, losses, scratch):
    """Rows of ``x`` (n, C, L): ``losses`` (n,) float64 the rows' weighted loss sums, ``grad`` (n, C, L) the
    unit gradient. ``target``, ``target_weight``: (n, L). ``scratch``: (2, L) float64."""
    rows, classes, length = x.shape
    maxima, sums = scratch[0], scratch[1]
    for i in range(rows):
        for position in range(length):
            maxima[position] = x[i, 0, position]
            sums[position] = 0.0
        for c in range(1, classes):
            for position in range(length):
                if x[i, c, position] > maxima[position]:  # a NaN score is skipped here but poisons the sum below
                    maxima[position] = x[i, c, position]
        for c in range(classes):
            for position in range(length):
                e = math.exp(x[i, c, position] - maxima[position])
                grad[i, c, position] = e
                sums[position] += e
        total = 0.0
        for position in range(length):
            t, w = target[i, position], target_weight[i, position]
            total += w * (maxima[position] + math.log(sums[position]) - x[i, t, position])
            sums[position] = w / denominator / sums[position]  # now the softmax's factor
        for c in range(classes):
            for position in range(length):
                grad[i, c, position] *= sums[position]
        for position in range(length):
            grad[i, target[i, position], position] -= target_weight[i, position] / denominator
        losses[i] = total


@runtime.jit(parallel=True)
def _cross_entropy_parallel(x, target, target_weight, denominator, grad, losses, scratch):
    """``_cross_entropy_rows`` over one chunk of rows per thread; ``scratch``: (chunks, 2, L) float64."""
    chunks = scratch.shape[0]
    for chunk in numba.prange(chunks):
        start, stop = chunk_bounds(chunk, chunks, x.shape[0])
        _cross_entropy_rows(x[start:stop], target[start:stop], target_weight[start:stop], denominator,
                            grad[start:stop], losses[start:stop], scratch[chunk])


class _Saved(NamedTuple):
    unit_grad: numpy.ndarray  # the gradient for an upstream gradient of 1, the scores' shape


def cross_entropy_forward(x, target, target_weight, denominator):
    """``reference.cross_entropy_forward``, compiled (same arguments and results; its own ``saved``)."""
    if x.dtype not in FLOAT_DTYPES:
        return reference.cross_entropy_forward(x, target, target_weight, denominator)
    n, classes = x.shape[0], x.shape[1]
    length = x.size // max(1, n * classes)
    x3 = numpy.ascontiguousarray(x).reshape(n, classes, length)  # (N, C, L)
    target2 = numpy.ascontiguousarray(target, dtype=numpy.int64).reshape(n, length)
    weight2 = numpy.ascontiguousarray(target_weight, dtype=numpy.float64).reshape(n, length)
    grad = numpy.empty(x3.shape, dtype=x.dtype)
    losses = numpy.empty(n)
    chunks = min(chunk_count(x.size, GRAIN), max(1, n))
    if chunks == 1:
        _cross_entropy_rows(x3, target2, weight2, float(denominator), grad, losses, numpy.empty((2, length)))
    else:
        launch(_cross_entropy_parallel, x3, target2, weight2, float(denominator), grad, losses,
               numpy.empty((chunks, 2, length)), chunks=chunks)
    loss = numpy.asarray(losses.sum() / numpy.float64(denominator), dtype=x.dtype)
    return loss, _Saved(grad.reshape(x.shape))


def cross_entropy_backward(grad, saved):
    """``reference.cross_entropy_backward`` for what ``cross_entropy_forward`` saved."""
    if not isinstance(saved, _Saved):  # the forward took the reference kernel
        return reference.cross_entropy_backward(grad, saved)
    return saved.unit_grad * grad


def register(tier) -> None:
    tier.register(reference.cross_entropy_forward, cross_entropy_forward)
    tier.register(reference.cross_entropy_backward, cross_entropy_backward)
