"""Sliding windows over the spatial dimensions of an (N, C, *spatial) array, any number of them.

These are the plain array algorithms that convolution and pooling stand on; they know
nothing of autograd. ``sliding_windows`` is im2col without the copy (a strided view);
``scatter_windows`` is its adjoint (col2im), written as one strided slice-add per
kernel offset so that no Python loop runs over the batch, the channels or the pixels
and no ``np.add.at`` is needed.
"""

from __future__ import annotations

import math

from convstack.backend import as_strided, get_array_module


def output_size(size: int, kernel: int, stride: int, padding_total: int, dilation: int) -> int:
    """Output length of a sliding window along one dimension (the lectures' formula).

    ``floor((size + padding_total - dilation * (kernel - 1) - 1) / stride) + 1``,
    which for ``dilation = 1`` and symmetric padding P is ``floor((W + 2P - K) / S) + 1``.
    """
    return (size + padding_total - dilation * (kernel - 1) - 1) // stride + 1


def pooling_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size: ceil_mode rounds up, but no window may start in the right padding."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def pad_spatial(x, pads, value=0):
    """Pad the trailing ``len(pads)`` dimensions of ``x``; ``pads`` holds (before, after) pairs."""
    if all(before == 0 and after == 0 for before, after in pads):
        return x
    xp = get_array_module(x)
    width = [(0, 0)] * (x.ndim - len(pads)) + [tuple(p) for p in pads]
    return xp.pad(x, width, mode="constant", constant_values=value)


def sliding_windows(x, kernel, stride, dilation):
    """A read-only strided view of every window of ``x``.

    Shape: ``x`` is (N, C, *S) (already padded); the result is (N, C, *O, *K) with
    ``O[i] = (S[i] - dilation[i] * (K[i] - 1) - 1) // stride[i] + 1``. No copy is made.
    """
    lead = x.ndim - len(kernel)
    spatial_strides = x.strides[lead:]
    out = tuple((size - d * (k - 1) - 1) // s + 1 for size, k, s, d in zip(x.shape[lead:], kernel, stride, dilation))
    shape = x.shape[:lead] + out + tuple(kernel)
    strides = (
        x.strides[:lead]
        + tuple(st * s for st, s in zip(spatial_strides, stride))
        + tuple(st * d for st, d in zip(spatial_strides, dilation))
    )
    return as_strided(x, shape, strides)


def scatter_windows(windows, padded_shape, stride, dilation):
    """The adjoint of ``sliding_windows``: sum window values back into an input-shaped array.

    Shape: ``windows`` is (N, C, *O, *K); the result is ``padded_shape`` = (N, C, *S).
    One strided slice-add per kernel offset (prod(K) of them): positions that several
    windows cover receive the sum of their contributions.
    """
    xp = get_array_module(windows)
    spatial = len(stride)
    out = xp.zeros(padded_shape, dtype=windows.dtype)
    lead = windows.ndim - 2 * spatial
    out_sizes = windows.shape[lead : lead + spatial]
    kernel = windows.shape[lead + spatial :]
    for offset in _offsets(kernel):
        target = tuple(
            slice(o * d, o * d + (n - 1) * s + 1, s) for o, d, n, s in zip(offset, dilation, out_sizes, stride)
        )
        out[(Ellipsis,) + target] += windows[(Ellipsis,) + tuple(offset)]
    return out


def _offsets(kernel):
    """Every kernel offset tuple, in C order."""
    total = math.prod(kernel)
    for flat in range(total):
        offset, rest = [], flat
        for k in reversed(kernel):
            offset.append(rest % k)
            rest //= k
        yield tuple(reversed(offset))
