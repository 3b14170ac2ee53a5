"""The optimizers' per-parameter updates, in place on the parameter's array, as NumPy array code.

Each takes one parameter's array, its gradient and its state arrays, and updates the
parameter (and the state) in place: ``p.data`` keeps its array across steps.
"""

from __future__ import annotations

from convstack.backend import get_array_module


def sgd_step(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """One ``torch.optim.SGD`` update of ``param``; returns the momentum buffer (None without momentum).

    With ``g`` the gradient (negated when ``maximize``)::

        g = g + weight_decay * p
        b = g                                   (first step: ``momentum_buffer`` is None)
        b = momentum * b + (1 - dampening) * g  (later steps, in place)
        g = g + momentum * b if nesterov else b (when momentum != 0)
        p = p - lr * g
    """
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad + weight_decay * param
    if momentum != 0:
        if momentum_buffer is None:
            momentum_buffer = grad.copy()
        else:
            momentum_buffer *= momentum
            momentum_buffer += grad if dampening == 0 else (1 - dampening) * grad
        grad = grad + momentum * momentum_buffer if nesterov else momentum_buffer
    param -= lr * grad
    return momentum_buffer


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
              amsgrad, maximize, decoupled_weight_decay):
    """One ``torch.optim.Adam`` / ``AdamW`` update of ``param`` at step ``step`` (from 1), state in place.

    With ``g`` the gradient (negated when ``maximize``)::

        g = g + weight_decay * p                 (coupled L2; decoupled: p *= 1 - lr * weight_decay)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)                    (amsgrad; v_max replaces v below)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    ``max_exp_avg_sq`` is read only with ``amsgrad``.
    """
    xp = get_array_module(param)
    if maximize:
        grad = -grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param *= 1 - lr * weight_decay
        else:
            grad = grad + weight_decay * param
    exp_avg += (1 - beta1) * (grad - exp_avg)  # torch's lerp_(grad, 1 - beta1)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * grad * grad
    second = exp_avg_sq
    if amsgrad:
        second = max_exp_avg_sq
        xp.maximum(second, exp_avg_sq, out=second)
    step_size = lr / (1 - beta1**step)
    denominator = xp.sqrt(second)  # the one temporary per parameter, reused below
    denominator /= (1 - beta2**step) ** 0.5
    denominator += eps
    xp.divide(exp_avg, denominator, out=denominator)
    denominator *= step_size
    param -= denominator
