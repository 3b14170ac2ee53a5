"""Plain array algorithms behind max, average and adaptive pooling (no autograd inside).

Arrays are (N, C, *S) with any number of spatial dimensions D. Windows come from
``windows.sliding_windows`` (a strided view); everything written back to the input
goes through one strided slice-add per kernel offset, or one ``bincount`` over flat
indices where windows have uneven sizes (adaptive max), never ``np.add.at``. Windows that
tile the input route max pooling's gradient through a mask instead (``first_winner_mask``);
max pooling one dimension at a time lives in ``separable_max.py``.
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


def tiles_exactly(sizes, kernel, stride, padding, dilation):
    """Whether the windows tile the input: stride = kernel, no padding or dilation, sizes multiples of the kernel."""
    return all(s == k and p == 0 and d == 1 and n % k == 0
               for n, k, s, p, d in zip(sizes, kernel, stride, padding, dilation))


def _repeat_last(values, repeats):
    """``repeat(values, repeats, axis=-1)``, for the last axis where NumPy's repeat is slow.

    Doubling 32-bit values: each one, widened to 64 bits and multiplied by ``2**32 + 1``, holds
    two copies of itself (in either byte order), a contiguous pass 3x faster than ``repeat``;
    otherwise one strided copy per repetition, 1.5x faster than ``repeat``.
    """
    xp = get_array_module(values)
    if repeats == 2 and values.dtype.itemsize == 4 and values.flags.c_contiguous:
        wide = values.view(xp.uint32).astype(xp.uint64)
        wide *= xp.uint64(2**32 + 1)
        return wide.view(values.dtype).reshape(values.shape[:-1] + (2 * values.shape[-1],))
    out = xp.empty(values.shape + (repeats,), dtype=values.dtype)
    for r in range(repeats):
        out[..., r] = values
    return out.reshape(values.shape[:-1] + (repeats * values.shape[-1],))


def upsample_nearest(values, kernel):
    """Every element of ``values`` (N, C, *O) repeated ``kernel`` times along each spatial dimension: (N, C, *O*K)."""
    xp = get_array_module(values)
    lead = values.ndim - len(kernel)
    for axis in range(len(kernel) - 1, -1, -1):
        k = kernel[axis]
        if k == 1:
            continue
        dim = lead + axis
        values = _repeat_last(values, k) if dim == values.ndim - 1 else xp.repeat(values, k, axis=dim)
    return values


def first_winner_mask(x, values, kernel):
    """For windows that tile ``x`` (N, C, *S): True at the first maximum of every window, in window order.

    ``values`` (N, C, *O) are the window maxima, free of NaN. Where ``x`` equals its window's
    maximum is one compare; only when some window holds its maximum twice (more True than
    windows) are the later ones cleared, offset by offset. Backward is then ``upsample * mask``.
    """
    xp = get_array_module(x)
    mask = xp.equal(x, upsample_nearest(values, kernel))  # (N, C, *S)
    if int(xp.count_nonzero(mask)) == values.size:
        return mask
    lead = x.ndim - len(kernel)
    split = x.shape[:lead] + tuple(d for o, k in zip(values.shape[lead:], kernel) for d in (o, k))
    tiles = mask.reshape(split)  # (N, C, O1, K1, O2, K2, ...), a view of the mask
    taken = xp.zeros(values.shape, dtype=bool)
    for offset in itertools.product(*(range(k) for k in kernel)):
        index = (slice(None),) * lead + tuple(i for k in offset for i in (slice(None), k))
        tie = tiles[index]  # (N, C, *O): this offset's entry of every window
        xp.logical_and(tie, xp.logical_not(taken), out=tie)
        xp.logical_or(taken, tie, out=taken)
    return mask


def route_through_mask(grad, mask, kernel):
    """The adjoint of tiled max pooling: ``grad`` (N, C, *O) repeated over each window, kept at its winner."""
    xp = get_array_module(grad)
    out = upsample_nearest(grad, kernel)
    if out is grad:
        out = grad.copy()
    return xp.multiply(out, mask, out=out)


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


def first_inside_offsets(out_sizes, kernel, stride, padding, dilation, xp):
    """The flat offset, inside each window, of the window's first position that lies in the input, shape (*O).

    Along each dimension output ``o``'s first inside kernel offset is ``ceil((padding - o * stride) / dilation)``
    (0 past the left padding); the flat offset combines them in C order over the kernel.
    """
    flat = xp.zeros(out_sizes, dtype=xp.int64)
    for axis, (o, s, p, d) in enumerate(zip(out_sizes, stride, padding, dilation)):
        first = xp.maximum(0, -((xp.arange(o, dtype=xp.int64) * s - p) // d))  # ceil((p - o * s) / d)
        flat += _along(first, axis, len(out_sizes)) * math.prod(kernel[axis + 1 :])
    return flat


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
