"""Average pooling's kernels, forward and backward, as NumPy array code: (N, C, *S) -> (N, C, *O), any D.

Windows are read from a strided view of the zero-padded input (``windows.sliding_windows``)
and summed one kernel offset at a time; backward spreads ``grad / divisor`` over each window
with one strided slice-add per offset (``windows.scatter_windows``).
"""

from __future__ import annotations

from convstack.backend import get_array_module
from convstack.nn.kernels.reference import pooling
from convstack.nn.kernels.reference.max_pooling import crop_padding
from convstack.nn.kernels.reference.windows import pad_spatial, scatter_windows, sliding_windows


def avg_pool_forward(x, kernel, stride, padding, out_sizes, count_include_pad, divisor_override):
    """Window sums of ``x`` (N, C, *S) over PyTorch's divisor; returns ``(output (N, C, *O), saved)``.

    Args:
        kernel, stride, padding: tuples of D ints (padding at most ``kernel // 2``).
        out_sizes: the D output sizes (ceil_mode already applied).
        count_include_pad: the divisor counts the padding (not ceil_mode's overhang), else only the input.
        divisor_override: an int that replaces every divisor, or None.
    """
    xp = get_array_module(x)
    spatial = len(kernel)
    sizes = x.shape[2:]
    ones = (1,) * spatial
    extra = pooling.ceil_extra_padding(sizes, kernel, stride, padding, ones, out_sizes)
    padded = pad_spatial(x, [(p, p + e) for p, e in zip(padding, extra)], value=0)
    windows = sliding_windows(padded, kernel, stride, ones)  # (N, C, *O, *K)
    if divisor_override is None:
        divisor = pooling.average_divisor(sizes, out_sizes, kernel, stride, padding, count_include_pad, xp, x.dtype)
    else:
        divisor = xp.asarray(divisor_override, dtype=x.dtype)
    output = pooling.window_sum(windows, spatial) / divisor  # (N, C, *O)
    return output, (divisor, padded.shape, kernel, stride, padding, sizes)


def avg_pool_backward(grad, saved):
    """The adjoint of ``avg_pool_forward``: ``grad / divisor`` (N, C, *O) spread over every window, (N, C, *S)."""
    xp = get_array_module(grad)
    divisor, padded_shape, kernel, stride, padding, sizes = saved
    spatial = len(kernel)
    grad = grad / divisor  # (N, C, *O)
    windows = xp.broadcast_to(grad.reshape(grad.shape + (1,) * spatial), grad.shape + kernel)  # (N, C, *O, *K)
    return crop_padding(scatter_windows(windows, padded_shape, stride, (1,) * spatial), padding, sizes)
