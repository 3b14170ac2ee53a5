"""Softmax cross-entropy's kernels, forward and backward, as NumPy array code (no autograd inside).

Scores are (N, C, *spatial) with the classes on axis 1; targets (N, *spatial) class indices.
"""

from __future__ import annotations

from convstack.backend import get_array_module


def cross_entropy_forward(x, target, target_weight, denominator):
    """``-sum(w[t] log softmax(x)[t]) / denominator`` over every position, as a 0-d array of ``x``'s dtype.

    Args:
        x: (N, C, *spatial) scores.
        target: (N, *spatial) integer class indices in [0, C) (ignored positions hold any valid class).
        target_weight: (N, *spatial) weight of each position's target (0 where ignored).
        denominator: the number the weighted sum is divided by.

    Returns:
        ``(loss, saved)``. Log-softmax, pick, weight and reduction in one pass: the max-shifted
        scores are exponentiated in place and become the softmax that backward keeps.
    """
    xp = get_array_module(x)
    e = x - x.max(axis=1, keepdims=True)  # (N, C, *spatial): shifted scores, exponentiated below
    picked = xp.take_along_axis(e, target[:, None], axis=1)[:, 0]  # (N, *spatial)
    xp.exp(e, out=e)
    total = e.sum(axis=1, keepdims=True)  # (N, 1, *spatial)
    log_p = picked - xp.log(total[:, 0])  # log-probability of each target
    loss = -(target_weight * log_p).sum() / denominator
    e /= total  # the softmax
    return xp.asarray(loss, dtype=x.dtype), (e, target, target_weight / denominator)


def cross_entropy_backward(grad, saved):
    """``(softmax - onehot(target)) * w[t] * grad / denominator``, (N, C, *spatial); ``grad`` is 0-d."""
    xp = get_array_module(grad)
    softmax, target, scale = saved
    scale = (scale * grad)[:, None]  # (N, 1, *spatial)
    grad_input = softmax * scale
    index = target[:, None]
    xp.put_along_axis(grad_input, index, xp.take_along_axis(grad_input, index, axis=1) - scale, axis=1)
    return grad_input
