"""Max unpooling: the partial inverse of max pooling, in 1, 2 and 3 spatial dimensions.

``max_unpool*d(values, indices, ...)`` writes each pooled value back at the position its
max came from and zeros everywhere else. ``indices`` are what ``max_pool*d(...,
return_indices=True)`` returns: for each output, the flat position of its maximum within
its own (sample, channel) plane, in C order (``h * W_in + w`` in 2-D), which is PyTorch's
convention, so indices from either library work here. The backward pass gathers the
gradient at the same positions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._utils import check_rank, invalid, ntuple, shape_context
from convstack.nn.functional.pooling import add_batch
from convstack.tensor import Tensor, as_tensor


class _MaxUnpoolNd(Function):
    """(N, C, *I) values scattered into zeros of (N, C, *O) at flat per-plane ``indices`` (N, C, *I)."""

    def forward(self, x, *, indices, out_sizes):
        xp = get_array_module(x)
        x, self.unbatched = add_batch(x, len(out_sizes))
        planes, plane = x.shape[0] * x.shape[1], math.prod(out_sizes)
        # flat positions in the whole (N * C * prod(O),) output: each plane's offset plus its per-plane index
        offsets = xp.arange(planes, dtype=xp.int64)[:, None] * plane
        self.flat = (indices.reshape(planes, -1) + offsets).reshape(-1)
        out = xp.zeros(planes * plane, dtype=x.dtype)
        out[self.flat] = x.reshape(-1)
        self.in_shape = x.shape
        out = out.reshape(x.shape[:2] + tuple(out_sizes))
        return out[0] if self.unbatched else out

    def backward(self, grad):
        xp = get_array_module(grad)
        grad = grad[None] if self.unbatched else grad
        grad_input = xp.take(grad.reshape(-1), self.flat).reshape(self.in_shape)
        return (grad_input[0] if self.unbatched else grad_input,)


def _output_sizes(op, spatial, in_sizes, kernel, stride, padding, output_size, context):
    """The unpooled spatial sizes: the default ``(in - 1) * stride - 2 * padding + kernel``, or ``output_size``
    (spatial sizes, or the whole shape), each within ``stride`` of the default, exclusive, as PyTorch."""
    default = tuple((i - 1) * s - 2 * p + k for i, s, p, k in zip(in_sizes, stride, padding, kernel))
    if output_size is None:
        sizes = default
    else:
        valid = isinstance(output_size, Sequence) and not isinstance(output_size, str)
        sizes = tuple(output_size) if valid else ()
        if len(sizes) == spatial + 2:
            sizes = sizes[2:]
        if len(sizes) != spatial or not all(isinstance(s, int) and not isinstance(s, bool) for s in sizes):
            raise invalid(op, "output_size", f"a tuple of {spatial} integers (or of the whole output shape)",
                          output_size, context)
        bounds = [(d - s, d + s) for d, s in zip(default, stride)]
        if not all(low < size < high for size, (low, high) in zip(sizes, bounds)):
            ranges = ", ".join(f"{low + 1}..{high - 1}" for low, high in bounds)
            raise invalid(op, "output_size", f"sizes within a stride of the default {default}: {ranges}",
                          output_size, context)
    if any(s < 1 for s in sizes):
        raise invalid(op, "kernel_size", f"a geometry with a positive output size (it would be {sizes})",
                      kernel, context)
    return sizes


def _max_unpool(op, spatial, input, indices, kernel_size, stride, padding, output_size) -> Tensor:
    input = as_tensor(input)
    check_rank(op, input.shape, spatial)
    context = shape_context(input=input.shape)
    kernel = ntuple(kernel_size, spatial, op, "kernel_size", context)
    stride = kernel if stride is None else ntuple(stride, spatial, op, "stride", context)
    padding = ntuple(padding, spatial, op, "padding", context, minimum=0)
    out_sizes = _output_sizes(op, spatial, input.shape[-spatial:], kernel, stride, padding, output_size, context)
    index_array = indices.data if isinstance(indices, Tensor) else as_tensor(indices).data
    if index_array.dtype.kind not in "iu" or tuple(index_array.shape) != input.shape:
        raise invalid(op, "indices", f"an integer tensor of the input's shape {input.shape}",
                      f"{index_array.dtype} of shape {tuple(index_array.shape)}")
    plane = math.prod(out_sizes)
    bad = (index_array < 0) | (index_array >= plane)
    if bad.any():
        raise invalid(op, "indices", f"flat positions in [0, {plane}) of the {out_sizes} output planes",
                      int(index_array[bad].reshape(-1)[0]), context)
    return _MaxUnpoolNd.apply(input, indices=index_array, out_sizes=out_sizes)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    return _max_unpool("max_unpool1d", 1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    return _max_unpool("max_unpool2d", 2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    return _max_unpool("max_unpool3d", 3, input, indices, kernel_size, stride, padding, output_size)


_LAYOUT = {1: ("L", "(N, C, L_in)"), 2: ("H, W", "(N, C, H_in, W_in)"), 3: ("D, H, W", "(N, C, D_in, H_in, W_in)")}

_DOC = """{d}-D max unpooling (of {dims}): each value goes back to where ``max_pool{d}d`` found it, zeros elsewhere.

    Args:
        input: the pooled values {layout} or unbatched (C, ...).
        indices: int64, the input's shape: ``max_pool{d}d(..., return_indices=True)``'s second output,
            flat positions within each output plane (C order), as PyTorch.
        kernel_size, stride, padding: those of the pooling being inverted (``stride`` defaults
            to ``kernel_size``).
        output_size: the spatial sizes to restore (or the whole shape), when the pooling
            floored an odd size; within ``stride`` of the default.

    Shape:
        Output along each spatial dimension, by default:
        ``(in - 1) * stride - 2 * padding + kernel_size``.

    Examples:
        >>> x = convstack.randn(2, 3, *([6] * {d}))
        >>> values, indices = F.max_pool{d}d(x, 2, return_indices=True)
        >>> max_unpool{d}d(values, indices, 2).shape == x.shape
        True
    """

for _d, _fn in ((1, max_unpool1d), (2, max_unpool2d), (3, max_unpool3d)):
    _fn.__doc__ = _DOC.format(d=_d, dims=_LAYOUT[_d][0], layout=_LAYOUT[_d][1])
