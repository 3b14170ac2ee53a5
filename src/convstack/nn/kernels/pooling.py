"""Plain array algorithms behind max, average and adaptive pooling (no autograd inside).

Arrays are (N, C, *S) with any number of spatial dimensions D. Windows come from
``windows.sliding_windows`` (a strided view); everything written back to the input
goes through one strided slice-add per kernel offset, or one ``bincount`` over flat
indices where windows have uneven sizes (adaptive max), never ``np.add.at``.
"""

from __future__ import annotations

import itertools
import math

from convstack.backend import get_array_module


def ceil_extra_padding(sizes, kernel, stride, padding, dilation, out_sizes):
    """Right padding beyond ``padding`` that ceil_mode's last window needs to fit, per dimension."""
    return tuple(
        max(0, (o - 1) * s + d * (k - 1) + 1 - (n + 2 * p))
        for n, k, s, p, d, o in zip(sizes, kernel, stride, padding, dilation, out_sizes)
    )


def unravel(flat, shape):
    """Split flat C-order offsets into ``shape`` into one array of coordinates per dimension."""
    coordinates, rest = [], flat
    for size in reversed(shape):
        coordinates.append(rest % size)
        rest = rest // size
    return coordinates[::-1]


def _along(values, axis, ndim):
    """``values`` (1-D) reshaped to broadcast along ``axis`` of an ``ndim``-D array."""
    return values.reshape((1,) * axis + (-1,) + (1,) * (ndim - axis - 1))


def window_argmax(windows, spatial):
    """Maximum of every window and its flat offset inside the window (first maximum wins, as PyTorch).

    Shape: ``windows`` is (N, C, *O, *K); both results are (N, C, *O). One argmax over
    a flattened copy: right for large windows (adaptive pooling), where a pass per
    kernel offset would loop too long in Python. A NaN wins over numbers.
    """
    xp = get_array_module(windows)
    lead = windows.ndim - spatial
    flat = windows.reshape(windows.shape[:lead] + (-1,))  # (N, C, *O, prod(K)): one copy
    arg = flat.argmax(axis=-1)
    values = xp.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
    return values, arg


def window_max_by_offsets(windows, spatial):
    """``window_argmax`` for small kernels, in passes over output-sized arrays, one per kernel offset.

    About twice as fast as a flattened argmax for 2x2 and 3x3 windows: the strided view
    is read in place instead of being copied, and NumPy's argmax over a length-4 axis
    is slow. A running maximum first; then, from the last offset to the first, each
    offset holding that maximum claims it, so the first one in window order wins.
    The offsets are uint8 where the window has at most 256 positions.
    """
    xp = get_array_module(windows)
    kernel = windows.shape[windows.ndim - spatial :]
    offsets = list(itertools.product(*(range(k) for k in kernel)))
    values = windows[(Ellipsis,) + offsets[0]].copy()  # (N, C, *O)
    for offset in offsets[1:]:
        xp.maximum(values, windows[(Ellipsis,) + offset], out=values)
    if xp.isnan(values).any():  # NaN equals nothing: let the flattened argmax find it
        return window_argmax(windows, spatial)
    arg = xp.full(values.shape, len(offsets) - 1, dtype=xp.uint8 if len(offsets) <= 256 else xp.int64)
    for flat in range(len(offsets) - 2, -1, -1):
        # arg >= flat here, so this sets arg to flat where this offset holds the maximum
        # (arithmetic: a masked copyto is ~100x slower on random masks)
        arg -= (arg - arg.dtype.type(flat)) * (windows[(Ellipsis,) + offsets[flat]] == values)
    return values, arg


def _stage_view(array, axis, start, count, step):
    """``array`` sliced along ``axis`` to ``count`` positions from ``start`` every ``step`` (a view)."""
    index = [slice(None)] * array.ndim
    index[axis] = slice(start, start + (count - 1) * step + 1, step)
    return array[tuple(index)]


def separable_max(x, kernel, stride, dilation):
    """Max pooling of a padded (N, C, *S) array one spatial dimension at a time, innermost first.

    The maximum over a box is the maximum over its rows of the row maxima, and the first
    maximum in the box's C order lies in the first row whose maximum attains it, at that
    row's first maximum: so each pass keeps, beside the running maximum, the first offset
    reaching it (strict ``>``), and the passes compose into PyTorch's tie rule. Per
    dimension K - 1 ``maximum`` passes instead of prod(K) - 1 over the whole window;
    for a 2x2 window the first pass halves W, the second H.

    Returns the maxima (N, C, *O) and, per dimension ``a``, the winning offsets shaped as
    that pass's output (padded sizes before ``a``, output sizes from ``a`` on): a bool
    array for K = 2 (True: the second position), uint8 for up to 256, ``None`` for K = 1.
    A NaN propagates to the maxima but not into the offsets: callers check the maxima.
    """
    xp = get_array_module(x)
    spatial = len(kernel)
    lead = x.ndim - spatial
    args = [None] * spatial
    values = x
    for axis in range(spatial - 1, -1, -1):
        k, s, d = kernel[axis], stride[axis], dilation[axis]
        dim = lead + axis
        count = (values.shape[dim] - d * (k - 1) - 1) // s + 1
        if k == 1:
            values = _stage_view(values, dim, 0, count, s)
            continue
        first, second = _stage_view(values, dim, 0, count, s), _stage_view(values, dim, d, count, s)
        if k == 2:
            args[axis] = xp.greater(second, first)  # (N, C, ..., O_axis, ...)
            values = xp.maximum(first, second)
            continue
        best = xp.maximum(first, second)
        arg = xp.greater(second, first).astype(xp.uint8 if k <= 256 else xp.int64)
        for j in range(2, k):
            view = _stage_view(values, dim, j * d, count, s)
            # offsets rise, so "j wins here" is a maximum: a masked copyto is ~100x slower on random masks
            xp.maximum(arg, xp.greater(view, best) * arg.dtype.type(j), out=arg)
            xp.maximum(best, view, out=best)
        args[axis], values = arg, best
    if values is x or not values.flags.owndata:
        values = values.copy()  # a 1x..x1 kernel: the result must not alias the input
    return values, args


def separable_max_backward(grad, args, padded_shape, kernel, stride, dilation):
    """The adjoint of ``separable_max``: route ``grad`` (N, C, *O) to the winners, outermost dimension first.

    Each pass widens one dimension from its output size back to its padded size, writing
    ``grad`` times "this offset won" into the strided slice of every offset. With dilation 1
    and stride S <= K, the first S offsets tile ``[0, O * S)`` without overlap and are written
    in place (``multiply(..., out=)``, no zeroing); the later ones, which land on positions
    already written, are added; only positions no window reaches are zeroed.
    """
    xp = get_array_module(grad)
    spatial = len(kernel)
    lead = grad.ndim - spatial
    for axis in range(spatial):
        k, s, d, arg = kernel[axis], stride[axis], dilation[axis], args[axis]
        dim = lead + axis
        count, length = grad.shape[dim], padded_shape[dim]
        shape = grad.shape[:dim] + (length,) + grad.shape[dim + 1 :]
        tiling = s if d == 1 and s <= k else 0  # offsets [0, tiling) write [0, count * s) exactly once
        if tiling:
            out = xp.empty(shape, dtype=grad.dtype)
            if count * s < length:
                _stage_view(out, dim, count * s, length - count * s, 1)[...] = 0
        else:
            out = xp.zeros(shape, dtype=grad.dtype)
        for j in range(k):
            view = _stage_view(out, dim, j * d, count, s)
            if arg is None:
                view[...] = grad
                continue
            won = (arg if j == 1 else xp.logical_not(arg)) if k == 2 else arg == j
            if j < tiling:
                xp.multiply(grad, won, out=view)
            else:
                view += grad * won
        grad = out
    return grad


def window_sum(windows, spatial):
    """Sum of every window, (N, C, *O) from (N, C, *O, *K): one add per kernel offset.

    Reading the strided view offset by offset is an order of magnitude faster than
    ``sum`` over its small trailing axes, which NumPy walks element by element.
    """
    kernel = windows.shape[windows.ndim - spatial :]
    offsets = itertools.product(*(range(k) for k in kernel))
    total = windows[(Ellipsis,) + next(offsets)].copy()
    for offset in offsets:
        total += windows[(Ellipsis,) + offset]
    return total


def window_flat_indices(arg, kernel, stride, padding, dilation, sizes):
    """PyTorch's max-pool indices: the flat position, in each unpadded input plane, of every window's winner.

    ``arg`` (N, C, *O) holds the winner's flat offset inside its window; the result is int64 (N, C, *O)
    indexing the (*S) plane in C order, e.g. ``h * W + w`` in 2-D.
    """
    xp = get_array_module(arg)
    spatial = len(kernel)
    lead = arg.ndim - spatial
    index = xp.zeros(arg.shape, dtype=xp.int64)
    arg = arg.astype(xp.int64, copy=False)
    for axis, (offset, s, p, d) in enumerate(zip(unravel(arg, kernel), stride, padding, dilation)):
        starts = xp.arange(arg.shape[lead + axis], dtype=xp.int64) * s - p
        coordinate = _along(starts, lead + axis, arg.ndim) + offset * d
        index += coordinate * math.prod(sizes[axis + 1 :])
    return index


def scatter_to_winners(grad, arg, padded_shape, kernel, stride, dilation):
    """The adjoint of max pooling: each window's gradient goes to its winner, summed where windows overlap.

    Shape: ``grad`` and ``arg`` are (N, C, *O); the result is ``padded_shape`` (N, C, *S + padding).
    One masked strided slice-add per kernel offset (prod(K) of them).
    """
    xp = get_array_module(grad)
    spatial = len(kernel)
    out_sizes = grad.shape[grad.ndim - spatial :]
    out = xp.zeros(padded_shape, dtype=grad.dtype)
    zero = xp.zeros((), dtype=grad.dtype)
    for flat, offset in enumerate(itertools.product(*(range(k) for k in kernel))):
        target = tuple(
            slice(o * d, o * d + (n - 1) * s + 1, s) for o, d, n, s in zip(offset, dilation, out_sizes, stride)
        )
        out[(Ellipsis,) + target] += xp.where(arg == flat, grad, zero)
    return out


def average_divisor(sizes, out_sizes, kernel, stride, padding, count_include_pad, xp, dtype):
    """PyTorch's average-pooling divisor for every output position, shape (*O).

    Along each dimension a window spans ``[o*s - p, min(o*s - p + k, S + p))``: with
    ``count_include_pad`` its length counts padding (but not the extra right padding of
    ceil_mode); without, only the part inside the input counts. The divisor is the product.
    """
    divisor = xp.ones(out_sizes, dtype=dtype)
    for axis, (n, o, k, s, p) in enumerate(zip(sizes, out_sizes, kernel, stride, padding)):
        start = xp.arange(o) * s - p
        end = xp.minimum(start + k, n + p)
        if count_include_pad:
            length = end - start
        else:
            length = xp.minimum(end, n) - xp.maximum(start, 0)
        divisor = divisor * _along(length.astype(dtype), axis, len(out_sizes))
    return divisor


def adaptive_bounds(size, out_size, xp):
    """PyTorch's adaptive windows along one dimension: ``[floor(i*S/O), ceil((i+1)*S/O))`` for i < O."""
    i = xp.arange(out_size, dtype=xp.int64)
    return (i * size) // out_size, -((-(i + 1) * size) // out_size)


def adaptive_average_matrix(size, out_size, xp, dtype):
    """The (O, S) matrix whose row i averages input positions ``[start_i, end_i)``."""
    start, end = adaptive_bounds(size, out_size, xp)
    position = xp.arange(size)
    inside = (position >= start[:, None]) & (position < end[:, None])  # (O, S)
    return inside.astype(dtype) / (end - start)[:, None].astype(dtype)


def adaptive_window_indices(sizes, out_sizes, xp):
    """Per dimension, an (O, L) array of input positions of every adaptive window, L the longest window.

    Shorter windows repeat their last position, which changes neither the maximum nor
    which position first attains it.
    """
    indices = []
    for size, out_size in zip(sizes, out_sizes):
        start, end = adaptive_bounds(size, out_size, xp)
        longest = int((end - start).max())
        indices.append(xp.minimum(start[:, None] + xp.arange(longest), end[:, None] - 1))  # (O, L)
    return indices


def gather_adaptive_windows(x, indices):
    """Every adaptive window of ``x`` (N, C, *S) as one (N, C, *O, *L) array (a gather, one copy)."""
    spatial = len(indices)
    selectors = []
    for axis, index in enumerate(indices):
        shape = [1] * (2 * spatial)
        shape[axis], shape[spatial + axis] = index.shape
        selectors.append(index.reshape(shape))
    return x[(Ellipsis,) + tuple(selectors)]


def adaptive_flat_indices(arg, indices, sizes):
    """Flat plane positions (int64, N, C, *O) of the adaptive windows' winners; ``arg`` offsets into (*L)."""
    xp = get_array_module(arg)
    spatial = len(indices)
    lead = arg.ndim - spatial
    flat = xp.zeros(arg.shape, dtype=xp.int64)
    window_shape = tuple(index.shape[1] for index in indices)
    for axis, (offset, index) in enumerate(zip(unravel(arg, window_shape), indices)):
        rows = _along(xp.arange(index.shape[0]), lead + axis, arg.ndim)
        flat += index[rows, offset] * math.prod(sizes[axis + 1 :])
    return flat


def scatter_flat(grad, flat_indices, input_shape):
    """Sum ``grad`` (N, C, *O) into an (N, C, *S) array at ``flat_indices`` into each (*S) plane.

    One ``bincount`` over batch-and-channel-offset indices: windows may overlap, so
    several outputs can send gradient to one input.
    """
    xp = get_array_module(grad)
    plane = math.prod(input_shape[2:])
    planes = xp.arange(input_shape[0] * input_shape[1], dtype=xp.int64).reshape(input_shape[:2])
    planes = planes.reshape(planes.shape + (1,) * (grad.ndim - 2)) * plane
    total = xp.bincount((planes + flat_indices).ravel(), weights=grad.ravel(), minlength=math.prod(input_shape))
    return total.astype(grad.dtype).reshape(input_shape)
