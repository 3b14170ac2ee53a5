"""Max pooling's kernels, forward and backward, as NumPy array code: (N, C, *S) -> (N, C, *O), any D.

Without ``return_indices`` the windows are reduced one dimension at a time, with the padding
implicit (``separable_max``). Winners are kept only when the input needs a gradient: for
windows that tile the input (2x2 stride 2) as a mask of first maxima, backward
``upsample(grad) * mask``; otherwise as per-dimension offsets. With ``return_indices``, or
when a NaN reaches an output whose gradient is needed, the padded input is reduced offset
by offset over the whole window, which yields flat offsets for PyTorch's indices (a window
holding only ``-inf`` takes its first position inside the input, as PyTorch's).
"""

from __future__ import annotations

from convstack.backend import get_array_module
from convstack.nn.kernels.reference import pooling
from convstack.nn.kernels.reference.separable_max import separable_max, separable_max_backward
from convstack.nn.kernels.reference.windows import pad_spatial, sliding_windows


def crop_padding(x, padding, sizes):
    """The (N, C, *S) interior of a padded (N, C, *S + padding) array."""
    return x[(Ellipsis,) + tuple(slice(p, p + n) for p, n in zip(padding, sizes))]


def max_pool_forward(x, kernel, stride, padding, dilation, out_sizes, needs_grad, return_indices):
    """The maximum of every window of ``x`` (N, C, *S); the first maximum in window order wins ties.

    Args:
        kernel, stride, padding, dilation: tuples of D ints (padding at most ``kernel // 2``).
        out_sizes: the D output sizes (ceil_mode already applied).
        needs_grad: keep what ``max_pool_backward`` needs.
        return_indices: also return each winner's flat int64 position in its (*S) plane.

    Returns:
        ``(output, indices, saved)``: output (N, C, *O); indices (N, C, *O) int64 or None;
        saved for ``max_pool_backward`` (None without ``needs_grad``).
    """
    xp = get_array_module(x)
    sizes = x.shape[2:]
    if not return_indices:
        tiled = needs_grad and pooling.tiles_exactly(sizes, kernel, stride, padding, dilation)
        output, args = separable_max(x, kernel, stride, padding, dilation, out_sizes, needs_grad and not tiled)
        if not needs_grad:
            return output, None, None
        if not xp.isnan(output).any():
            if tiled:
                return output, None, ("mask", pooling.first_winner_mask(x, output, kernel), kernel)
            return output, None, ("separable", args, (sizes, kernel, stride, padding, dilation))
    extra = pooling.ceil_extra_padding(sizes, kernel, stride, padding, dilation, out_sizes)
    padded = pad_spatial(x, [(p, p + e) for p, e in zip(padding, extra)], value=-float("inf"))
    windows = sliding_windows(padded, kernel, stride, dilation)  # (N, C, *O, *K)
    output, arg = pooling.window_max_by_offsets(windows, len(kernel))  # (N, C, *O) each
    unfilled = output == -xp.inf
    if unfilled.any():  # a window of -inf only: its first position inside the input wins, not the padding
        first = pooling.first_inside_offsets(out_sizes, kernel, stride, padding, dilation, xp)
        arg = xp.where(unfilled, first, arg)
    indices = pooling.window_flat_indices(arg, kernel, stride, padding, dilation, sizes) if return_indices else None
    saved = ("offsets", arg, (padded.shape, kernel, stride, padding, dilation, sizes)) if needs_grad else None
    return output, indices, saved


def max_pool_backward(grad, saved):
    """The adjoint of ``max_pool_forward``: each output's gradient goes to its winner, (N, C, *O) -> (N, C, *S)."""
    kind, winners, geometry = saved
    if kind == "mask":
        return pooling.route_through_mask(grad, winners, geometry)
    if kind == "separable":
        return separable_max_backward(grad, winners, *geometry)
    padded_shape, kernel, stride, padding, dilation, sizes = geometry
    padded = pooling.scatter_to_winners(grad, winners, padded_shape, kernel, stride, dilation)
    return crop_padding(padded, padding, sizes)
