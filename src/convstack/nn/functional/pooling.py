"""Max and average pooling over any number of spatial dimensions, forward and backward.

One implementation per family (``_MaxPoolNd``, ``_AvgPoolNd``); ``max_pool1d/2d/3d`` and
``avg_pool1d/2d/3d`` are thin wrappers with PyTorch's names and arguments. Average pooling
(and max pooling with ``return_indices``) reads windows from a strided view of the padded
input (``kernels.windows``) and writes them back with one strided slice-add per kernel
offset; max pooling otherwise goes one dimension at a time without padding the input
(``kernels.separable_max``). Adaptive pooling lives in ``adaptive_pooling.py``.
"""

from __future__ import annotations

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._utils import check_rank, invalid, ntuple, shape_context
from convstack.nn.kernels.reference import pooling as kernels
from convstack.nn.kernels.reference.separable_max import separable_max, separable_max_backward
from convstack.nn.kernels.reference.windows import pad_spatial, pooling_output_size, scatter_windows, sliding_windows
from convstack.tensor import as_tensor


def add_batch(x, spatial):
    """``x`` with a batch axis (unbatched (C, *S) inputs get one), and whether one was added."""
    if x.ndim == spatial + 1:
        return x[None], True
    return x, False


def crop_padding(x, padding, sizes):
    """The (N, C, *S) interior of a padded (N, C, *S + padding) array."""
    return x[(Ellipsis,) + tuple(slice(p, p + n) for p, n in zip(padding, sizes))]


def _pool_geometry(op, shape, spatial, kernel_size, stride, padding, dilation, ceil_mode):
    """Normalise and check pooling arguments once; return them as tuples with the output sizes.

    Remembered per argument set, types included (``2.0`` and ``True`` stay refused where ``2``
    and ``1`` pass): a layer calls with the same ones every step, and checking them cost more
    than pooling a LeNet batch of one.
    """
    key = (op, tuple(shape), spatial, *(_typed(v) for v in (kernel_size, stride, padding, dilation, ceil_mode)))
    try:
        return _GEOMETRY[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable element: check afresh every time
        return _check_geometry(op, shape, spatial, kernel_size, stride, padding, dilation, ceil_mode)
    geometry = _check_geometry(op, shape, spatial, kernel_size, stride, padding, dilation, ceil_mode)
    if len(_GEOMETRY) >= 1024:
        _GEOMETRY.clear()
    _GEOMETRY[key] = geometry
    return geometry


_GEOMETRY: dict = {}


def _typed(value):
    """A cache key telling ``2`` from ``2.0`` and ``True``, inside sequences too."""
    if isinstance(value, (tuple, list)):
        return type(value), tuple((type(v), v) for v in value)
    return type(value), value


def default_stride(stride) -> bool:
    """``stride`` None or empty (PyTorch takes ``()`` and ``[]`` too): one window after another."""
    return stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)


def _check_geometry(op, shape, spatial, kernel_size, stride, padding, dilation, ceil_mode):
    check_rank(op, shape, spatial)
    context = shape_context(input=shape)
    kernel = ntuple(kernel_size, spatial, op, "kernel_size", context)
    stride = kernel if default_stride(stride) else ntuple(stride, spatial, op, "stride", context)
    pads = ntuple(padding, spatial, op, "padding", context, minimum=0)
    dilation = ntuple(dilation, spatial, op, "dilation", context)
    half = tuple(k // 2 for k in kernel)
    if any(p > h for p, h in zip(pads, half)):
        raise invalid(op, "padding", f"at most half the kernel size, kernel_size // 2 = {half}", padding, context)
    sizes = tuple(shape[-spatial:])
    out_sizes = tuple(
        pooling_output_size(n, k, s, p, d, ceil_mode) for n, k, s, p, d in zip(sizes, kernel, stride, pads, dilation)
    )
    if any(o < 1 for o in out_sizes):
        raise invalid(
            op, "kernel_size", f"a window that fits in the padded input (the output size would be {out_sizes})",
            kernel_size, f"{context}, padding {pads}, dilation {dilation}",
        )
    return kernel, stride, pads, dilation, out_sizes


class _MaxPoolNd(Function):
    """Max pooling: forward takes the first maximum of each window, backward routes gradient to it.

    Without ``return_indices`` the windows are reduced one dimension at a time, with the padding
    implicit (``separable_max``). Winners are kept only when the input needs a gradient: for
    windows that tile the input (2x2 stride 2) as a mask of first maxima, backward
    ``upsample(grad) * mask``; otherwise as per-dimension offsets. With ``return_indices``, or
    when a NaN reaches an output whose gradient is needed, the padded input is reduced offset
    by offset over the whole window, which yields flat offsets for PyTorch's indices.
    """

    def forward(self, x, *, kernel, stride, padding, dilation, out_sizes, return_indices):
        xp = get_array_module(x)
        x, self.unbatched = add_batch(x, len(kernel))
        sizes = x.shape[2:]
        self.separable, self.mask = not return_indices, None
        if self.separable:
            needs_grad = self.needs_input_grad[0]
            tiled = needs_grad and kernels.tiles_exactly(sizes, kernel, stride, padding, dilation)
            output, self.arg = separable_max(x, kernel, stride, padding, dilation, out_sizes, needs_grad and not tiled)
            self.separable = not needs_grad or not xp.isnan(output).any()
            if self.separable and tiled:
                self.mask = kernels.first_winner_mask(x, output, kernel)  # (N, C, *S) bool
        if self.separable:
            self.geometry = (sizes, kernel, stride, padding, dilation)
            return output[0] if self.unbatched else output
        extra = kernels.ceil_extra_padding(sizes, kernel, stride, padding, dilation, out_sizes)
        padded = pad_spatial(x, [(p, p + e) for p, e in zip(padding, extra)], value=-float("inf"))
        self.geometry = (padded.shape, kernel, stride, padding, dilation, sizes)
        windows = sliding_windows(padded, kernel, stride, dilation)  # (N, C, *O, *K)
        output, self.arg = kernels.window_max_by_offsets(windows, len(kernel))  # (N, C, *O) each
        if not return_indices:
            return output[0] if self.unbatched else output
        indices = kernels.window_flat_indices(self.arg, kernel, stride, padding, dilation, sizes)
        return (output[0], indices[0]) if self.unbatched else (output, indices)

    def backward(self, grad):
        grad = grad[None] if self.unbatched else grad
        if self.mask is not None:
            grad_input = kernels.route_through_mask(grad, self.mask, self.geometry[1])
        elif self.separable:
            grad_input = separable_max_backward(grad, self.arg, *self.geometry)
        else:
            padded_shape, kernel, stride, padding, dilation, sizes = self.geometry
            padded = kernels.scatter_to_winners(grad, self.arg, padded_shape, kernel, stride, dilation)
            grad_input = crop_padding(padded, padding, sizes)
        return (grad_input[0] if self.unbatched else grad_input,)


class _AvgPoolNd(Function):
    """Average pooling: window sums over PyTorch's divisor; backward spreads grad / divisor over each window."""

    def forward(self, x, *, kernel, stride, padding, out_sizes, count_include_pad, divisor_override):
        xp = get_array_module(x)
        spatial = len(kernel)
        x, self.unbatched = add_batch(x, spatial)
        sizes = x.shape[2:]
        ones = (1,) * spatial
        extra = kernels.ceil_extra_padding(sizes, kernel, stride, padding, ones, out_sizes)
        padded = pad_spatial(x, [(p, p + e) for p, e in zip(padding, extra)], value=0)
        windows = sliding_windows(padded, kernel, stride, ones)  # (N, C, *O, *K)
        if divisor_override is None:
            divisor = kernels.average_divisor(sizes, out_sizes, kernel, stride, padding, count_include_pad, xp, x.dtype)
        else:
            divisor = xp.asarray(divisor_override, dtype=x.dtype)
        output = kernels.window_sum(windows, spatial) / divisor  # (N, C, *O)
        self.divisor, self.geometry = divisor, (padded.shape, kernel, stride, padding, sizes)
        return output[0] if self.unbatched else output

    def backward(self, grad):
        xp = get_array_module(grad)
        padded_shape, kernel, stride, padding, sizes = self.geometry
        spatial = len(kernel)
        grad = (grad[None] if self.unbatched else grad) / self.divisor  # (N, C, *O)
        windows = xp.broadcast_to(grad.reshape(grad.shape + (1,) * spatial), grad.shape + kernel)  # (N, C, *O, *K)
        grad_input = crop_padding(scatter_windows(windows, padded_shape, stride, (1,) * spatial), padding, sizes)
        return (grad_input[0] if self.unbatched else grad_input,)


def _max_pool(op, spatial, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    input = as_tensor(input)
    kernel, stride, padding, dilation, out_sizes = _pool_geometry(
        op, input.shape, spatial, kernel_size, stride, padding, dilation, ceil_mode
    )
    return _MaxPoolNd.apply(
        input, kernel=kernel, stride=stride, padding=padding, dilation=dilation, out_sizes=out_sizes,
        return_indices=bool(return_indices),
    )


def _avg_pool(op, spatial, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    input = as_tensor(input)
    kernel, stride, padding, _, out_sizes = _pool_geometry(
        op, input.shape, spatial, kernel_size, stride, padding, 1, ceil_mode
    )
    if divisor_override is not None and (
        isinstance(divisor_override, bool) or not isinstance(divisor_override, int) or divisor_override == 0
    ):
        context = shape_context(input=input.shape)
        raise invalid(op, "divisor_override", "None or a non-zero integer", divisor_override, context)
    return _AvgPoolNd.apply(
        input, kernel=kernel, stride=stride, padding=padding, out_sizes=out_sizes,
        count_include_pad=bool(count_include_pad), divisor_override=divisor_override,
    )


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _max_pool("max_pool3d", 3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return _avg_pool("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


_SPATIAL = {1: ("L", "(N, C, L_in)"), 2: ("H, W", "(N, C, H_in, W_in)"), 3: ("D, H, W", "(N, C, D_in, H_in, W_in)")}

_MAX_DOC = """{d}-D max pooling: the largest value of each window (of {dims}).

    Args:
        input: {layout} or unbatched (C, ...).
        kernel_size: window size, an int or a tuple of {d} ints.
        stride: step between windows (default, also for ``()``: ``kernel_size``).
        padding: implicit ``-inf`` padding on both sides, at most ``kernel_size // 2``.
        dilation: spacing between window elements.
        ceil_mode: round the output size up (a last window may start in the input or left padding only).
        return_indices: also return, for each output, the flat int64 position of its maximum in
            the input plane (C order, e.g. ``h * W_in + w``), as ``torch.nn.functional.max_pool{d}d``.
            Ties go to the first maximum in window order.

    Shape:
        Output along each spatial dimension:
        ``floor_or_ceil((in + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1``.

    Examples:
        >>> x = convstack.randn(8, 3, *([16] * {d}))
        >>> max_pool{d}d(x, 2).shape[2:] == (8,) * {d}
        True
    """

_AVG_DOC = """{d}-D average pooling: the mean of each window (of {dims}).

    Args:
        input: {layout} or unbatched (C, ...).
        kernel_size: window size, an int or a tuple of {d} ints.
        stride: step between windows (default, also for ``()``: ``kernel_size``).
        padding: implicit zero padding on both sides, at most ``kernel_size // 2``.
        ceil_mode: round the output size up (a last window may start in the input or left padding only).
        count_include_pad: divide by the window size including padding (but not ceil_mode's overhang);
            otherwise by the number of input elements in the window.
        divisor_override (2-D and 3-D): divide every window sum by this integer instead.

    Shape:
        Output along each spatial dimension:
        ``floor_or_ceil((in + 2 * padding - kernel_size) / stride) + 1``.

    Examples:
        >>> x = convstack.randn(8, 3, *([16] * {d}))
        >>> avg_pool{d}d(x, 3, stride=2, padding=1).shape[2:] == (8,) * {d}
        True
    """

for _d, _fn in ((1, max_pool1d), (2, max_pool2d), (3, max_pool3d)):
    _fn.__doc__ = _MAX_DOC.format(d=_d, dims=_SPATIAL[_d][0], layout=_SPATIAL[_d][1])
for _d, _fn in ((1, avg_pool1d), (2, avg_pool2d), (3, avg_pool3d)):
    _fn.__doc__ = _AVG_DOC.format(d=_d, dims=_SPATIAL[_d][0], layout=_SPATIAL[_d][1])
