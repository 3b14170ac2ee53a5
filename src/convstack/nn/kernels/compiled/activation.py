"""The rectifier, compiled: one pass over the array, vectorised, on every core for large arrays.

Both directions go through one point-wise kernel (``_pointwise``, an operation code and up to
two operands), so that a run compiles one serial and one parallel kernel per dtype for them.
"""

from __future__ import annotations

import numba
import numpy

from convstack.nn.kernels.compiled import parallel, runtime
from convstack.nn.kernels.compiled.parallel import chunk_bounds, chunk_count, compilable, launch
from convstack.nn.kernels.reference import activation as reference

RELU_FORWARD, RELU_BACKWARD = 0, 1
#: Elements per chunk below which a point-wise pass stays on one thread (``parallel.GRAIN``).
GRAIN = parallel.GRAIN


@runtime.jit()
def _pointwise(op, a, b, out):
    """``out = op(a, b)`` element-wise over 1-D arrays.

    RELU_FORWARD: ``max(a, 0)``, a NaN stays NaN (as NumPy's maximum); ``b`` unused.
    RELU_BACKWARD: ``a`` (the gradient) where ``b`` (the forward's output) is > 0, else 0.
    """
    if op == RELU_FORWARD:
        for i in range(out.shape[0]):
            value = a[i]
            out[i] = 0.0 if value < 0 else value
    else:
        for i in range(out.shape[0]):
            out[i] = a[i] if b[i] > 0 else 0.0


@runtime.jit(parallel=True)
def _pointwise_parallel(op, a, b, out, chunks):
    """``_pointwise`` over ``chunks`` contiguous chunks, one per thread (slices: the chunk loop vectorises)."""
    for chunk in numba.prange(chunks):
        start, stop = chunk_bounds(chunk, chunks, out.shape[0])
        _pointwise(op, a[start:stop], b[start:stop], out[start:stop])


def pointwise(op, a, b, out) -> None:
    """Run ``_pointwise`` on 1-D arrays, on one thread or on every one, as their size says."""
    chunks = chunk_count(out.shape[0], GRAIN)
    if chunks == 1:
        _pointwise(op, a, b, out)
        return
    launch(_pointwise_parallel, op, a, b, out, chunks, chunks=chunks)


def relu_forward(x):
    """``maximum(x, 0)`` as ``reference.relu_forward``."""
    if not compilable(x):
        return reference.relu_forward(x)
    out = numpy.empty_like(x)
    flat = x.reshape(-1)
    pointwise(RELU_FORWARD, flat, flat, out.reshape(-1))
    return out


def relu_inplace(x):
    """``x`` rectified in place, as ``reference.relu_inplace``."""
    if not compilable(x) or not x.flags.c_contiguous:
        return reference.relu_inplace(x)
    flat = x.reshape(-1)
    pointwise(RELU_FORWARD, flat, flat, flat)
    return x


def relu_backward(grad, out):
    """``grad`` where ``out > 0``, else 0, as ``reference.relu_backward`` (a NaN gradient there gives 0, as PyTorch)."""
    if not compilable(grad, out):
        return reference.relu_backward(grad, out)
    grad_input = numpy.empty_like(grad)
    pointwise(RELU_BACKWARD, grad.reshape(-1), out.reshape(-1), grad_input.reshape(-1))
    return grad_input


def register(tier) -> None:
    tier.register(reference.relu_forward, relu_forward)
    tier.register(reference.relu_backward, relu_backward)
    tier.register(reference.relu_inplace, relu_inplace)
