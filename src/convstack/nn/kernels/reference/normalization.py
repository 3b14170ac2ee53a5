"""Batch normalisation's kernels (Ioffe & Szegedy 2015), forward and backward, as NumPy array code.

The input is viewed as (N, C, L), L the product of the trailing dimensions. Per-channel
sums are GEMVs and inner products (``_channel_sums``, ``_channel_dots``); per-channel
factors broadcast as (C, L) blocks (``_rows``). Backward keeps the centred input
``c = x - mean`` (not ``x_hat``, not the output): with ``a = weight * inv_std`` the input
gradient is ``a * g + b * c + k`` per channel, from two per-channel sums. The batch mean
is corrected by the mean of ``c`` (``delta``, the shifted-data algorithm), so inputs far
from zero keep float32's accuracy.

``relu=True`` applies a rectifier to the output (and routes the gradient through it first):
the reference runs the two ops one after the other; a compiled tier fuses them.
"""

from __future__ import annotations

from convstack.backend import get_array_module
from convstack.nn.kernels.reference.activation import relu_backward


def _rows(values, length):
    """A per-channel (C,) array repeated along a (C, L) block, to broadcast over (N, C, L).

    NumPy's broadcast of a (C, 1) operand walks each row with a scalar, about 2x slower
    than a contiguous (C, L) operand that repeats over N; the block is small (C * L).
    """
    xp = get_array_module(values)
    return xp.repeat(values, length).reshape(values.shape[0], length)


def _channel_sums(x3):
    """Per-channel sums of an (N, C, L) array: one GEMV over L, then a sum over N.

    About 3x faster than ``sum(axis=(0, 2))``, whose reduction over two non-adjacent axes
    NumPy does not vectorise; short rows (L < 16) take the plain reduction.
    """
    xp = get_array_module(x3)
    if x3.shape[2] < 16:
        return x3.sum(axis=(0, 2))
    return (x3 @ xp.ones(x3.shape[2], dtype=x3.dtype)).sum(axis=0)  # (N, C) -> (C,)


def _channel_dots(a3, b3):
    """Per-channel ``sum(a * b)`` of two (N, C, L) arrays as N * C inner products, without an (N, C, L) product."""
    if a3.shape[2] < 16:
        return (a3 * b3).sum(axis=(0, 2))
    dots = get_array_module(a3).matmul(a3[:, :, None, :], b3[:, :, :, None])  # (N, C, 1, 1)
    return dots.reshape(a3.shape[:2]).sum(axis=0)


def batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps, needs, relu):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` per channel, then ``max(., 0)`` with ``relu``.

    Args:
        x: (N, C, *) input.
        weight, bias: (C,) arrays or None.
        running_mean, running_var: (C,) arrays or None; updated in place when ``training``
            (``running = (1 - momentum) * running + momentum * batch``, the unbiased variance),
            read otherwise.
        training: normalise with the batch's statistics (biased variance) instead of the running ones.
        needs: which of (input, weight, bias) will want a gradient; what backward needs is kept for them.

    Returns:
        ``(out, saved)``: out (N, C, *), and what ``batch_norm_backward`` takes (None when ``needs``
        asks for nothing).
    """
    xp = get_array_module(x)
    n, channels = x.shape[0], x.shape[1]
    x3 = x.reshape(n, channels, -1)  # (N, C, L)
    length = x3.shape[2]
    # the centred input enters the gradients of weight and, in training, of x (through the batch statistics)
    keep = (training and needs[0]) or (weight is not None and needs[1])
    delta = None
    if training:
        count = n * length
        mean = _channel_sums(x3) / count
        centred = x3 - _rows(mean, length)  # (N, C, L)
        delta = _channel_sums(centred) / count  # what the first mean missed
        var = _channel_dots(centred, centred) / count - delta * delta  # biased: the one that normalises
        mean += delta
        inv_std = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)
        if running_mean is not None:
            running_mean *= 1.0 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1.0 - momentum
            running_var += momentum * var * (count / (count - 1))  # PyTorch stores the unbiased variance
    else:
        mean = running_mean.astype(x.dtype)
        inv_std = (1.0 / xp.sqrt(running_var.astype(x.dtype) + eps)).astype(x.dtype, copy=False)
        centred = x3 - _rows(mean, length) if keep else None
    scale = inv_std if weight is None else inv_std * weight
    if centred is not None:
        shift = -delta * scale if delta is not None else xp.zeros_like(scale)
    else:
        shift = -mean * scale
    if bias is not None:
        shift = shift + bias
    out = (x3 if centred is None else centred) * _rows(scale, length)  # (N, C, L)
    out += _rows(shift, length)
    out = out.reshape(x.shape)
    if relu:
        xp.maximum(out, 0, out=out)
    if not any(needs):
        return out, None
    saved = (centred if keep else None, delta, inv_std, weight, training, out if relu else None)
    return out, saved


def batch_norm_backward(grad, saved, needs):
    """The gradients of ``batch_norm_forward``: ``(grad_input, grad_weight, grad_bias)``.

    Args:
        grad: (N, C, *) gradient of the output.
        saved: the forward's second result.
        needs: which of (input, weight, bias) want a gradient (the others come back None).

    In training, ``dx = a (g - mean(g) - x_hat mean(g x_hat)) = a g + b c + k`` per channel
    (means over (N, *)), with ``a = weight * inv_std``; in eval ``dx = a g``.
    """
    centred, delta, inv_std, weight, training, relu_out = saved
    if relu_out is not None:
        grad = relu_backward(grad, relu_out)
    n, channels = grad.shape[0], grad.shape[1]
    g3 = grad.reshape(n, channels, -1)  # (N, C, L)
    length = g3.shape[2]
    count = n * length
    want_gx_hat = needs[1] or (training and needs[0])
    sum_g = _channel_sums(g3) if needs[2] or want_gx_hat else None
    sum_g_x_hat = None
    if want_gx_hat:  # x_hat = (c - delta) * inv_std
        sum_g_c = _channel_dots(g3, centred)
        sum_g_x_hat = inv_std * (sum_g_c if delta is None else sum_g_c - delta * sum_g)
    grad_input = None
    if needs[0]:
        a = inv_std if weight is None else inv_std * weight
        grad_input = g3 * _rows(a, length)
        if training:
            b = -a * inv_std * sum_g_x_hat / count
            k = -a * sum_g / count - b * delta
            term = centred * _rows(b, length)
            term += _rows(k, length)
            grad_input += term
        grad_input = grad_input.reshape(grad.shape)
    return grad_input, sum_g_x_hat if needs[1] else None, sum_g if needs[2] else None
