"""Adaptive pooling: windows chosen to give a requested output size, over any number of dimensions.

Output position i along a dimension of input size S and output size O pools input
positions ``[floor(i * S / O), ceil((i + 1) * S / O))``, as PyTorch. Windows may differ
in size and overlap when O does not divide S.

Average pooling is separable: one (O, S) averaging matrix per dimension, applied with
``tensordot``; the backward pass applies the transposes. Max pooling gathers every
window with padded index arrays and scatters the gradient back with one ``bincount``.
"""

from __future__ import annotations

from collections.abc import Sequence

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._utils import check_rank, invalid, shape_context
from convstack.nn.functional.pooling import add_batch
from convstack.nn.kernels.reference import pooling as kernels
from convstack.tensor import as_tensor


def _output_size(op, shape, spatial, output_size):
    """``output_size`` (an int, or a tuple of ints and ``None`` meaning the input's size) as a tuple."""
    check_rank(op, shape, spatial)
    expected = f"a positive integer or a tuple of {spatial} positive integers or None"
    if isinstance(output_size, int) and not isinstance(output_size, bool):
        values = (output_size,) * spatial
    elif isinstance(output_size, Sequence) and not isinstance(output_size, str) and len(output_size) == spatial:
        values = tuple(output_size)
    else:
        raise invalid(op, "output_size", expected, output_size, shape_context(input=shape))
    values = tuple(n if v is None else v for v, n in zip(values, shape[-spatial:]))
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise invalid(op, "output_size", expected, output_size, shape_context(input=shape))
    return values


def _contract(x, matrix, axis):
    """Apply ``matrix`` (O, S) along ``axis`` of ``x``, which has size S there and O afterwards."""
    xp = get_array_module(x)
    return xp.moveaxis(xp.tensordot(x, matrix, axes=([axis], [1])), -1, axis)


class _AdaptiveAvgPoolNd(Function):
    """Averages over adaptive windows: one (O, S) matrix per spatial dimension, or, when every output
    size is 1 (global average pooling, the head of ResNets), one GEMV over the flattened planes."""

    def forward(self, x, *, out_sizes):
        xp = get_array_module(x)
        x, self.unbatched = add_batch(x, len(out_sizes))
        self.in_shape = x.shape
        if all(o == 1 for o in out_sizes) and x.size:
            planes = x.reshape(x.shape[0], x.shape[1], -1)  # (N, C, L)
            mean = planes @ xp.full(planes.shape[2], 1.0 / planes.shape[2], dtype=x.dtype)  # (N, C)
            self.matrices = None
            out = mean.reshape(x.shape[:2] + (1,) * len(out_sizes))
            return out[0] if self.unbatched else out
        self.matrices = [
            None if size == out_size else kernels.adaptive_average_matrix(size, out_size, xp, x.dtype)
            for size, out_size in zip(x.shape[2:], out_sizes)
        ]  # (O, S) per spatial dimension; None where O == S (the identity)
        for axis, matrix in enumerate(self.matrices):
            if matrix is not None:
                x = _contract(x, matrix, 2 + axis)
        return x[0] if self.unbatched else x

    def backward(self, grad):
        grad = grad[None] if self.unbatched else grad
        if self.matrices is None:  # global: every input position gets grad / L
            xp = get_array_module(grad)
            shape = self.in_shape
            out = xp.empty(shape, dtype=grad.dtype).reshape(shape[0], shape[1], -1)  # (N, C, L)
            out[...] = (grad.reshape(shape[0], shape[1], 1) / out.shape[2]).astype(grad.dtype, copy=False)
            out = out.reshape(shape)
            return (out[0] if self.unbatched else out,)
        for axis, matrix in enumerate(self.matrices):
            if matrix is not None:
                grad = _contract(grad, matrix.T, 2 + axis)
        return (grad[0] if self.unbatched else grad,)


class _AdaptiveMaxPoolNd(Function):
    def forward(self, x, *, out_sizes, return_indices):
        xp = get_array_module(x)
        x, self.unbatched = add_batch(x, len(out_sizes))
        sizes = x.shape[2:]
        indices = kernels.adaptive_window_indices(sizes, out_sizes, xp)  # (O, L) per dimension
        windows = kernels.gather_adaptive_windows(x, indices)  # (N, C, *O, *L)
        output, arg = kernels.window_argmax(windows, len(out_sizes))  # (N, C, *O) each
        self.flat = kernels.adaptive_flat_indices(arg, indices, sizes)
        self.input_shape = x.shape
        if not return_indices:
            return output[0] if self.unbatched else output
        return (output[0], self.flat[0]) if self.unbatched else (output, self.flat)

    def backward(self, grad):
        grad = grad[None] if self.unbatched else grad
        grad_input = kernels.scatter_flat(grad, self.flat, self.input_shape)
        return (grad_input[0] if self.unbatched else grad_input,)


def _adaptive_avg_pool(op, spatial, input, output_size):
    input = as_tensor(input)
    return _AdaptiveAvgPoolNd.apply(input, out_sizes=_output_size(op, input.shape, spatial, output_size))


def _adaptive_max_pool(op, spatial, input, output_size, return_indices):
    input = as_tensor(input)
    out_sizes = _output_size(op, input.shape, spatial, output_size)
    return _AdaptiveMaxPoolNd.apply(input, out_sizes=out_sizes, return_indices=bool(return_indices))


def adaptive_avg_pool1d(input, output_size):
    return _adaptive_avg_pool("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input, output_size):
    return _adaptive_avg_pool("adaptive_avg_pool2d", 2, input, output_size)


def adaptive_avg_pool3d(input, output_size):
    return _adaptive_avg_pool("adaptive_avg_pool3d", 3, input, output_size)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    return _adaptive_max_pool("adaptive_max_pool1d", 1, input, output_size, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    return _adaptive_max_pool("adaptive_max_pool2d", 2, input, output_size, return_indices)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    return _adaptive_max_pool("adaptive_max_pool3d", 3, input, output_size, return_indices)


_LAYOUT = {1: "(N, C, L_in)", 2: "(N, C, H_in, W_in)", 3: "(N, C, D_in, H_in, W_in)"}

_DOC = """{d}-D adaptive {kind} pooling to a fixed output size, whatever the input size.

    Output position i along a dimension of input size S and output size O takes the {kind}
    of input positions ``[floor(i * S / O), ceil((i + 1) * S / O))``.

    Args:
        input: {layout} or unbatched (C, ...).
        output_size: an int, or a tuple of {d} ints where ``None`` keeps that input size.{extra}

    Shape:
        Output: (N, C, *output_size).

    Examples:
        >>> x = convstack.randn(8, 3, *([13] * {d}))
        >>> adaptive_{kind_short}_pool{d}d(x, 4).shape[2:] == (4,) * {d}
        True
    """

_INDICES = """
        return_indices: also return the flat int64 position of each maximum in its input plane
            (C order), as PyTorch; ties go to the first maximum in window order."""

for _d, _fn in ((1, adaptive_avg_pool1d), (2, adaptive_avg_pool2d), (3, adaptive_avg_pool3d)):
    _fn.__doc__ = _DOC.format(d=_d, kind="average", kind_short="avg", layout=_LAYOUT[_d], extra="")
for _d, _fn in ((1, adaptive_max_pool1d), (2, adaptive_max_pool2d), (3, adaptive_max_pool3d)):
    _fn.__doc__ = _DOC.format(d=_d, kind="max", kind_short="max", layout=_LAYOUT[_d], extra=_INDICES)
