"""Max pooling one spatial dimension at a time, with implicit ``-inf`` padding, and its adjoint.

The input is never padded: along every dimension each kernel offset reads the outputs whose
window position for that offset lies inside the input (``offset_range``), which is what a
``-inf`` padding gives without copying the input. Arrays are (N, C, *S) with any number D of
spatial dimensions; no autograd here.

Against a padded copy read through whole-window views it was 1.4-3x faster on the 3x3 / 2
benchmark layer (docs/convolution_algorithms.md).
"""

from __future__ import annotations

from convstack.backend import get_array_module
from convstack.nn.kernels.workspace import scratch


def offset_range(size, out_size, kernel_offset, stride, padding, dilation):
    """Outputs ``[lo, hi)`` whose window puts position ``kernel_offset`` inside ``[0, size)`` along one dimension.

    Output ``o`` reads input position ``o * stride - padding + kernel_offset * dilation``; that
    position rises with ``o``, so the outputs that read inside the input are one range (maybe empty).
    """
    shift = kernel_offset * dilation - padding
    lo = max(0, -(shift // stride))  # ceil(-shift / stride)
    hi = min(out_size, (size - 1 - shift) // stride + 1)
    return lo, max(lo, hi)


def _along_index(dim, index):
    """The index tuple selecting ``index`` (a slice) on dimension ``dim``."""
    return (slice(None),) * dim + (index,)


def _along(array, dim, index):
    """``array[..., index, ...]`` with ``index`` (a slice) on dimension ``dim``."""
    return array[_along_index(dim, index)]


def _offset_reader(x, dim, stride, padding, dilation, out_size, compact):
    """``read(j, lo, hi)``: the input positions that outputs ``lo..hi-1`` read at kernel offset ``j`` along ``dim``.

    Returns ``(view, flat)``. The view is a strided view of ``x``, or, for the residues in
    ``compact``, a slice of a contiguous copy of that residue class ``x[..., r::stride]``, made
    once and shared by the offsets of the class. ``flat`` is ``(class, shift)`` when the class
    rows are as long as the output rows, so that output ``o`` reads class element ``o + shift``
    in the flattened arrays too (across rows, for the outputs outside ``[lo, hi)``, a
    neighbouring row's); else ``None``.
    """
    xp = get_array_module(x)
    classes = {}

    def read(j, lo, hi):
        start = lo * stride - padding + j * dilation
        residue = start % stride
        if residue not in compact:
            return _along(x, dim, slice(start, start + (hi - lo - 1) * stride + 1, stride)), None
        if residue not in classes:
            strided = _along(x, dim, slice(residue, None, stride))
            classes[residue] = scratch(xp, f"max_along_class{residue}", strided.shape, x.dtype)
            xp.copyto(classes[residue], strided)
        values = classes[residue]
        q = (start - residue) // stride
        flat = (values, q - lo) if values.shape[dim] == out_size else None
        return _along(values, dim, slice(q, q + hi - lo)), flat

    return read


def max_along(x, dim, kernel, stride, padding, dilation, out_size, with_args, out=None):
    """Max pooling of ``x`` along dimension ``dim`` only; the other dimensions keep their sizes.

    The offset reaching the most outputs initialises the maximum by a copy; earlier offsets then
    win ties (``>=``, visited downwards) and later ones only beat it (``>``), so the offset kept is
    the first maximum in window order, as PyTorch's. Outputs whose window lies partly in the
    padding see only their inside positions; where a window's inside is all ``-inf`` the first
    inside position wins, as in PyTorch.

    Along the last dimension with a stride, NumPy's element-strided arithmetic is slow (about
    3x a contiguous pass): a residue class of input positions read more than once is first
    copied out contiguously (``_offset_reader``).

    Returns the maxima (``x.shape`` with ``out_size`` on ``dim``, written into ``out`` when given)
    and, with ``with_args``, the winning offsets, uint8 (int64 beyond 256 offsets), else ``None``.
    A NaN reaches the maxima but not the offsets: callers check the maxima.
    """
    xp = get_array_module(x)
    size = x.shape[dim]
    shape = x.shape[:dim] + (out_size,) + x.shape[dim + 1 :]
    ranges = [offset_range(size, out_size, j, stride, padding, dilation) for j in range(kernel)]
    first = max(range(kernel), key=lambda j: ranges[j][1] - ranges[j][0])
    reads = {}  # strided reads per residue class: the first offset's one copy, two (compare, max) or one for others
    for j, (lo, hi) in enumerate(ranges):
        if hi > lo:
            residue = (j * dilation - padding) % stride
            reads[residue] = reads.get(residue, 0) + (1 if j == first or not with_args else 2)
    last_strided = dim == x.ndim - 1 and stride > 1
    compact = {residue for residue, count in reads.items() if last_strided and count > 1}
    read = _offset_reader(x, dim, stride, padding, dilation, out_size, compact)
    lo, hi = ranges[first]
    best = xp.empty(shape, dtype=x.dtype) if out is None else out
    _along(best, dim, slice(0, lo))[...] = -xp.inf
    _along(best, dim, slice(hi, None))[...] = -xp.inf
    xp.copyto(_along(best, dim, slice(lo, hi)), read(first, lo, hi)[0])
    arg = None
    if with_args:
        arg = xp.full(shape, first, dtype=xp.uint8 if kernel <= 256 else xp.int64)
        for o in range(lo):  # left edge: outputs that ``first`` misses start at their first inside offset
            inside = [j for j in range(kernel) if ranges[j][0] <= o < ranges[j][1]]
            if inside:
                _along(arg, dim, slice(o, o + 1))[...] = inside[0]
    for j in list(range(first - 1, -1, -1)) + list(range(first + 1, kernel)):
        lo, hi = ranges[j]
        if hi <= lo:
            continue
        view, flat = read(j, lo, hi)
        part = _along(best, dim, slice(lo, hi))
        code = _along(arg, dim, slice(lo, hi)) if with_args else None
        edges = []
        if flat is not None and (lo, hi) != (0, out_size):
            # row-sliced operands run row by row (about 2x slower): work on the flattened arrays
            # instead, and put back the outputs outside [lo, hi), which met a neighbouring row
            values, shift = flat
            edges = [(array, index, array[index].copy()) for array in (best, arg) if array is not None
                     for index in (_along_index(dim, slice(0, lo)), _along_index(dim, slice(hi, None)))]
            start, stop = max(0, -shift), best.size - max(0, shift)
            view = values.reshape(-1)[start + shift : stop + shift]
            part = best.reshape(-1)[start:stop]
            code = arg.reshape(-1)[start:stop] if with_args else None
        if with_args:
            if j == first - 1:  # every code here is still ``first``
                code -= xp.greater_equal(view, part)
            elif j < first:  # every offset kept so far is later than j: j takes its ties
                code -= (code - code.dtype.type(j)) * xp.greater_equal(view, part)
            else:  # offsets rise, so "j wins here" is a maximum (a masked copyto is ~100x slower)
                xp.maximum(code, xp.greater(view, part) * code.dtype.type(j), out=code)
        xp.maximum(part, view, out=part)
        for array, index, saved in edges:
            array[index] = saved
    return best, arg


def separable_max(x, kernel, stride, padding, dilation, out_sizes, with_args):
    """Max pooling of an unpadded (N, C, *S) array, one spatial dimension at a time.

    The maximum over a box is the maximum over its rows of the row maxima, and the first
    maximum in the box's C order lies in the first row whose maximum attains it, at that row's
    first maximum: so with ``with_args`` the passes go innermost dimension first and compose into
    PyTorch's tie rule. Without, the order is free and goes outermost first, which leaves the
    slow element-strided reads of the innermost dimension for the smallest array.

    Returns the maxima (N, C, *O), a fresh array, and the per-dimension winning offsets:
    ``args[a]`` is shaped as pass ``a``'s output (input sizes before ``a``, output sizes from
    ``a`` on), or ``None`` for a kernel of one or without ``with_args``.
    """
    xp = get_array_module(x)
    spatial = len(kernel)
    lead = x.ndim - spatial
    args = [None] * spatial
    order = range(spatial - 1, -1, -1) if with_args else range(spatial)
    moving = [a for a in order if kernel[a] > 1 or out_sizes[a] != x.shape[lead + a]]
    values = x
    for step, axis in enumerate(moving):
        dim = lead + axis
        shape = values.shape[:dim] + (out_sizes[axis],) + values.shape[dim + 1 :]
        # intermediate maxima never escape: they live in reused buffers, two slots for 3-D
        out = None if step == len(moving) - 1 else scratch(xp, f"separable_max{step % 2}", shape, x.dtype)
        values, arg = max_along(
            values, dim, kernel[axis], stride[axis], padding[axis], dilation[axis], out_sizes[axis], with_args, out
        )
        args[axis] = arg if kernel[axis] > 1 else None
    if values is x:
        values = x.copy()  # a 1x..x1 kernel with stride 1: the result must not alias the input
    return values, args


def _add_shifted(acc, routed, dim, lo, hi, q_lo):
    """``acc[..., q_lo : q_lo + hi - lo, ...] += routed[..., lo:hi, ...]`` along ``dim``.

    Along the last dimension, slices of both run row by row (about 2x slower than one
    contiguous pass); when the rows are as long, the same sum is one add over the flattened
    arrays shifted by ``q_lo - lo``, with ``routed`` zeroed outside ``[lo, hi)`` so that what
    crosses from one row into the next adds nothing.
    """
    length = routed.shape[dim]
    if dim != routed.ndim - 1 or acc.shape[dim] != length or not (acc.flags.c_contiguous and routed.flags.c_contiguous):
        _along(acc, dim, slice(q_lo, q_lo + hi - lo))[...] += _along(routed, dim, slice(lo, hi))
        return
    routed[..., :lo] = 0
    routed[..., hi:] = 0
    shift, total = q_lo - lo, routed.size
    flat_acc, flat_routed = acc.reshape(-1), routed.reshape(-1)
    flat_acc[max(shift, 0) : total + min(shift, 0)] += flat_routed[max(-shift, 0) : total - max(shift, 0)]


def max_along_backward(grad, arg, dim, size, kernel, stride, padding, dilation):
    """The adjoint of ``max_along``: each output's gradient goes to the input position of its winning offset.

    Input positions fall into ``stride`` residue classes; an offset writes into one class only
    (a strided view). A class reached by one offset is written in place
    (``multiply(..., out=view)``); one reached by several accumulates in a compact buffer whose
    additions are contiguous, then is copied into its strided view once (NumPy's strided
    arithmetic is about twice as slow as a strided copy); positions no window reaches are zeroed.
    """
    xp = get_array_module(grad)
    out_size = grad.shape[dim]
    out = xp.empty(grad.shape[:dim] + (size,) + grad.shape[dim + 1 :], dtype=grad.dtype)
    ranges = [offset_range(size, out_size, j, stride, padding, dilation) for j in range(kernel)]
    classes = {}
    for j in sorted(range(kernel), key=lambda j: ranges[j][0] - ranges[j][1]):  # widest reach first
        if ranges[j][1] > ranges[j][0]:
            classes.setdefault((j * dilation - padding) % stride, []).append(j)
    for residue in range(min(stride, size)):
        target = _along(out, dim, slice(residue, None, stride))  # class positions residue + q * stride
        offsets = classes.get(residue, [])
        compact = len(offsets) > 1 and stride > 1
        acc = scratch(xp, "max_along_backward", target.shape, grad.dtype) if compact else target
        filled = False
        for j in offsets:
            lo, hi = ranges[j]
            q_lo = (lo * stride - padding + j * dilation - residue) // stride
            part = _along(acc, dim, slice(q_lo, q_lo + hi - lo))
            won = arg == arg.dtype.type(j)
            if not filled and hi - lo == acc.shape[dim]:
                xp.multiply(_along(grad, dim, slice(lo, hi)), _along(won, dim, slice(lo, hi)), out=part)
            else:
                if not filled:
                    acc[...] = 0
                # the whole product, then a slice of it: a product of slices along the last
                # dimension runs row by row, about 3x slower
                routed = xp.multiply(grad, won, out=scratch(xp, "max_along_routed", grad.shape, grad.dtype))
                _add_shifted(acc, routed, dim, lo, hi, q_lo)
            filled = True
        if not filled:
            acc[...] = 0
        if compact:
            xp.copyto(target, acc)
    return out


def separable_max_backward(grad, args, sizes, kernel, stride, padding, dilation):
    """The adjoint of ``separable_max`` with ``with_args``: route ``grad`` (N, C, *O) to (N, C, *S), outermost first."""
    spatial = len(kernel)
    lead = grad.ndim - spatial
    for axis in range(spatial):
        dim = lead + axis
        if args[axis] is None:  # a kernel of one: the stride picks positions, the rest get nothing
            if grad.shape[dim] == sizes[axis]:
                continue
            xp = get_array_module(grad)
            out = xp.zeros(grad.shape[:dim] + (sizes[axis],) + grad.shape[dim + 1 :], dtype=grad.dtype)
            _along(out, dim, slice(0, (grad.shape[dim] - 1) * stride[axis] + 1, stride[axis]))[...] = grad
            grad = out
            continue
        grad = max_along_backward(grad, args[axis], dim, sizes[axis], kernel[axis], stride[axis], padding[axis],
                                  dilation[axis])
    return grad
