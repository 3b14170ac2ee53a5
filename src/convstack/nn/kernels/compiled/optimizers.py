"""The optimizers' updates, compiled: one pass over each parameter, its gradient and its state, in place.

Each update reads every array once and writes the parameter and the state once, where the
NumPy reference makes a temporary per operation. A parameter of up to ``2 * GRAIN`` elements
(all of LeNet-5's and ResNet-20's) is updated in the calling thread: a dispatch costs about
as much as the pass; larger ones split into one chunk per thread. The arithmetic is in
float64, stored in the parameter's dtype. Arrays that are not all C-contiguous and of one
float dtype take the reference.
"""

from __future__ import annotations

import math

import numba
import numpy

from convstack.nn.kernels.compiled import parallel, runtime
from convstack.nn.kernels.compiled.parallel import chunk_bounds, chunk_count, compilable, launch
from convstack.nn.kernels.reference import optimizers as reference

#: Elements per chunk below which an update stays on one thread (``parallel.GRAIN``).
GRAIN = parallel.GRAIN


@runtime.jit()
def _sgd(param, grad, buffer, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    """``reference.sgd_step`` on 1-D arrays; ``buffer`` is written (``first``) or updated when ``momentum != 0``."""
    for i in range(param.shape[0]):
        g = -grad[i] if maximize else grad[i]
        if weight_decay != 0:
            g += weight_decay * param[i]
        if momentum != 0:
            b = g if first else momentum * buffer[i] + (1 - dampening) * g
            buffer[i] = b
            g = g + momentum * b if nesterov else b
        param[i] -= lr * g


@runtime.jit(parallel=True)
def _sgd_parallel(param, grad, buffer, lr, momentum, dampening, weight_decay, nesterov, maximize, first, chunks):
    for chunk in numba.prange(chunks):
        start, stop = chunk_bounds(chunk, chunks, param.shape[0])
        _sgd(param[start:stop], grad[start:stop], buffer[start:stop], lr, momentum, dampening, weight_decay,
             nesterov, maximize, first)


@runtime.jit()
def _adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize,
          decoupled, step):
    """``reference.adam_step`` on 1-D arrays (``max_exp_avg_sq`` is read and written only with ``amsgrad``)."""
    step_size = lr / (1 - beta1**step)
    correction = math.sqrt(1 - beta2**step)
    for i in range(param.shape[0]):
        g = -grad[i] if maximize else grad[i]
        p = param[i]
        if weight_decay != 0:
            if decoupled:
                p *= 1 - lr * weight_decay
            else:
                g += weight_decay * p
        m = exp_avg[i] + (1 - beta1) * (g - exp_avg[i])  # torch's lerp
        v = exp_avg_sq[i] * beta2 + (1 - beta2) * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        if amsgrad:
            largest = max_exp_avg_sq[i]
            v = largest if largest >= v or largest != largest else v  # NumPy's maximum: a NaN wins
            max_exp_avg_sq[i] = v
        param[i] = p - step_size * m / (math.sqrt(v) / correction + eps)


@runtime.jit(parallel=True)
def _adam_parallel(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps, weight_decay, amsgrad,
                   maximize, decoupled, step, chunks):
    for chunk in numba.prange(chunks):
        start, stop = chunk_bounds(chunk, chunks, param.shape[0])
        _adam(param[start:stop], grad[start:stop], exp_avg[start:stop], exp_avg_sq[start:stop],
              max_exp_avg_sq[start:stop], lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled, step)


def sgd_step(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """``reference.sgd_step``, compiled: the same update, in place, returning the momentum buffer."""
    arrays = (param, grad) if momentum_buffer is None else (param, grad, momentum_buffer)
    if not compilable(*arrays) or grad.shape != param.shape:
        return reference.sgd_step(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov,
                                  maximize)
    first = momentum != 0 and momentum_buffer is None
    if first:
        momentum_buffer = numpy.empty_like(param)
    flat = param.reshape(-1)
    buffer = flat if momentum_buffer is None else momentum_buffer.reshape(-1)
    arguments = (flat, grad.reshape(-1), buffer, float(lr), float(momentum), float(dampening), float(weight_decay),
                 bool(nesterov), bool(maximize), first)
    chunks = chunk_count(flat.shape[0], GRAIN)
    if chunks == 1:
        _sgd(*arguments)
    else:
        launch(_sgd_parallel, *arguments, chunks, chunks=chunks)
    return momentum_buffer


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
              amsgrad, maximize, decoupled_weight_decay):
    """``reference.adam_step``, compiled: the same update of the parameter and its state, in place."""
    arrays = (param, grad, exp_avg, exp_avg_sq) + ((max_exp_avg_sq,) if amsgrad else ())
    if not compilable(*arrays) or any(a.shape != param.shape for a in arrays):
        return reference.adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
                                   weight_decay, amsgrad, maximize, decoupled_weight_decay)
    flat = param.reshape(-1)
    largest = max_exp_avg_sq.reshape(-1) if amsgrad else flat
    arguments = (flat, grad.reshape(-1), exp_avg.reshape(-1), exp_avg_sq.reshape(-1), largest, float(lr),
                 float(beta1), float(beta2), float(eps), float(weight_decay), bool(amsgrad), bool(maximize),
                 bool(decoupled_weight_decay), int(step))
    chunks = chunk_count(flat.shape[0], GRAIN)
    if chunks == 1:
        _adam(*arguments)
    else:
        launch(_adam_parallel, *arguments, chunks, chunks=chunks)


def register(tier) -> None:
    tier.register(reference.sgd_step, sgd_step)
    tier.register(reference.adam_step, adam_step)
