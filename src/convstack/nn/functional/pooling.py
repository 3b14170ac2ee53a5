"""Max and average pooling over any number of spatial dimensions, forward and backward.

One implementation per family (``_MaxPoolNd``, ``_AvgPoolNd``); ``max_pool1d/2d/3d`` and
``avg_pool1d/2d/3d`` are thin wrappers with PyTorch's names and arguments. Arguments are
checked here; the arithmetic is the kernels' of the tier in use (the NumPy reference in
``kernels/reference/max_pooling.py`` and ``average_pooling.py``, compiled ones in
``kernels/compiled``). Adaptive pooling lives in ``adaptive_pooling.py``.
"""

from __future__ import annotations

from convstack.autograd import Function
from convstack.nn.functional._utils import check_rank, invalid, ntuple, shape_context
from convstack.nn.kernels import tiers
from convstack.nn.kernels.reference import average_pooling as average_kernels
from convstack.nn.kernels.reference import max_pooling as max_kernels
from convstack.nn.kernels.reference.windows import pooling_output_size
from convstack.tensor import as_tensor


def add_batch(x, spatial):
    """``x`` with a batch axis (unbatched (C, *S) inputs get one), and whether one was added."""
    if x.ndim == spatial + 1:
        return x[None], True
    return x, False


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

    The arithmetic is the kernels' (``max_pool_forward`` / ``max_pool_backward`` of the tier in use).
    """

    def forward(self, x, *, kernel, stride, padding, dilation, out_sizes, return_indices):
        x, self.unbatched = add_batch(x, len(kernel))
        tier = tiers.tier_for(x)
        self.backward_kernel = tier.implementation(max_kernels.max_pool_backward)
        output, indices, self.saved = tier.implementation(max_kernels.max_pool_forward)(
            x, kernel, stride, padding, dilation, out_sizes, self.needs_input_grad[0], return_indices)
        if self.unbatched:
            output, indices = output[0], None if indices is None else indices[0]
        return output if indices is None else (output, indices)

    def backward(self, grad):
        grad_input = self.backward_kernel(grad[None] if self.unbatched else grad, self.saved)
        return (grad_input[0] if self.unbatched else grad_input,)


class _AvgPoolNd(Function):
    """Average pooling: window sums over PyTorch's divisor; backward spreads grad / divisor over each window.

    The arithmetic is the kernels' (``avg_pool_forward`` / ``avg_pool_backward`` of the tier in use).
    """

    def forward(self, x, *, kernel, stride, padding, out_sizes, count_include_pad, divisor_override):
        x, self.unbatched = add_batch(x, len(kernel))
        tier = tiers.tier_for(x)
        self.backward_kernel = tier.implementation(average_kernels.avg_pool_backward)
        output, self.saved = tier.implementation(average_kernels.avg_pool_forward)(
            x, kernel, stride, padding, out_sizes, count_include_pad, divisor_override)
        return output[0] if self.unbatched else output

    def backward(self, grad):
        grad_input = self.backward_kernel(grad[None] if self.unbatched else grad, self.saved)
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
