"""Unshared convolution: locally connected layers and tiled convolution (Goodfellow et al., Deep Learning §9.5).

A *locally connected* layer slides windows like a convolution but learns a separate
kernel for every output position. *Tiled convolution* sits between the two: ``t`` kernel
sets are cycled across the output, position ``(i, j)`` using set ``(i mod t_h, j mod t_w)``.
With a tile of 1 it is a convolution; with a tile equal to the output size it is a
locally connected layer. One op, ``TiledConvNd``, computes all three.

Layout (convstack's choice, documented here once): the weight is ``(*tile, C_out, C_in, *kernel)``,
so ``weight[i, j]`` is an ordinary convolution kernel ``(C_out, C_in, kH, kW)``; the bias is
``(*tile, C_out)``. For a locally connected layer ``tile`` is the output size.

How: output positions are split as ``position = r * tile + t`` per dimension. The input is
padded (at the end) so that the number of windows is a whole number of tiles; the windows
(a strided view, ``kernels.windows.sliding_windows``) are then regrouped by tile offset ``t``
into columns ``(T, R * N, C_in * K)``, and one batched matrix product with the weight
``(T, C_in * K, C_out)`` computes every output. No Python loop runs over positions.
"""

from __future__ import annotations

import math

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._utils import check_rank, invalid, ntuple, shape_context
from convstack.nn.kernels.reference.windows import pad_spatial, scatter_windows, sliding_windows
from convstack.tensor import Tensor, as_tensor


def _interleave(first, second):
    """``[first[0], second[0], first[1], second[1], ...]``"""
    return [axis for pair in zip(first, second) for axis in pair]


class TiledConvNd(Function):
    """Tiled convolution of (N, C_in, *S) with weight (*T, C_out, C_in, *K) and optional bias (*T, C_out)."""

    def forward(self, x, weight, bias=None, *, stride, padding):
        xp = get_array_module(x)
        dims = len(stride)
        self.unbatched = x.ndim == dims + 1
        if self.unbatched:
            x = x[None]  # (1, C, *S)
        tile, kernel = weight.shape[:dims], weight.shape[dims + 2 :]
        out_channels, in_channels = weight.shape[dims], weight.shape[dims + 1]
        batch, sizes = x.shape[0], x.shape[2:]
        out_sizes = tuple((n + 2 * p - k) // s + 1 for n, p, k, s in zip(sizes, padding, kernel, stride))
        repeats = tuple(-(-o // t) for o, t in zip(out_sizes, tile))
        # Extra zeros at the end make the window count a whole number of tiles; those outputs are cropped.
        pads = tuple((p, p + (r * t - o) * s) for p, r, t, o, s in zip(padding, repeats, tile, out_sizes, stride))
        padded = pad_spatial(x, pads)  # (N, C, *S')
        windows = sliding_windows(padded, kernel, stride, (1,) * dims)  # (N, C, *(R * T), *K)
        split = windows.reshape((batch, in_channels) + tuple(_interleave(repeats, tile)) + kernel)
        # (N, C, R1, T1, ..., Rd, Td, *K) -> (T1..Td, R1..Rd, N, C, *K)
        tile_axes = [3 + 2 * i for i in range(dims)]
        repeat_axes = [2 + 2 * i for i in range(dims)]
        kernel_axes = list(range(2 + 2 * dims, 2 + 3 * dims))
        self.cols_perm = tile_axes + repeat_axes + [0, 1] + kernel_axes
        n_tiles, n_repeats, window_size = math.prod(tile), math.prod(repeats), in_channels * math.prod(kernel)
        cols = xp.ascontiguousarray(split.transpose(self.cols_perm)).reshape(n_tiles, n_repeats * batch, window_size)
        matrix = weight.reshape(n_tiles, out_channels, window_size)  # (T, O, C * K)
        out = cols @ matrix.transpose(0, 2, 1)  # (T, R * N, O)
        if bias is not None:
            out += bias.reshape(n_tiles, 1, out_channels)
        # (T1..Td, R1..Rd, N, O) -> (N, O, R1, T1, ..., Rd, Td) -> (N, O, *(R * T)), cropped to the output size
        out = out.reshape(tuple(tile) + repeats + (batch, out_channels))
        self.out_perm = [2 * dims, 2 * dims + 1] + _interleave(range(dims, 2 * dims), range(dims))
        out = out.transpose(self.out_perm).reshape((batch, out_channels) + tuple(r * t for r, t in zip(repeats, tile)))
        out = xp.ascontiguousarray(out[(Ellipsis,) + tuple(slice(0, o) for o in out_sizes)])

        needs = self.needs_input_grad
        self.cols = cols if needs[1] else None
        self.matrix = matrix if needs[0] else None
        self.tile, self.repeats, self.kernel, self.stride, self.padding = tuple(tile), repeats, kernel, stride, padding
        self.weight_shape, self.padded_shape, self.sizes = weight.shape, padded.shape, sizes
        self.bias_shape = None if bias is None else bias.shape
        return out[0] if self.unbatched else out

    def backward(self, grad):
        xp = get_array_module(grad)
        if self.unbatched:
            grad = grad[None]  # (1, O, *P)
        dims, tile, repeats = len(self.stride), self.tile, self.repeats
        batch, out_channels = grad.shape[:2]
        full = tuple(r * t for r, t in zip(repeats, tile))
        grad = pad_spatial(grad, [(0, f - o) for f, o in zip(full, grad.shape[2:])])  # (N, O, *(R * T))
        grad = grad.reshape((batch, out_channels) + tuple(_interleave(repeats, tile)))
        inverse = [self.out_perm.index(axis) for axis in range(2 * dims + 2)]
        n_tiles = math.prod(tile)
        grad = xp.ascontiguousarray(grad.transpose(inverse)).reshape(n_tiles, -1, out_channels)  # (T, R * N, O)
        needs = self.needs_input_grad
        grad_input = grad_weight = grad_bias = None
        if needs[0]:
            grad_cols = grad @ self.matrix  # (T, R * N, C * K)
            in_channels = self.weight_shape[dims + 1]
            grad_cols = grad_cols.reshape(tuple(tile) + repeats + (batch, in_channels) + self.kernel)
            inverse_cols = [self.cols_perm.index(axis) for axis in range(2 + 3 * dims)]
            # (T.., R.., N, C, *K) -> (N, C, R1, T1, ..., *K) -> (N, C, *(R * T), *K)
            windows = grad_cols.transpose(inverse_cols).reshape((batch, in_channels) + full + self.kernel)
            grad_padded = scatter_windows(windows, self.padded_shape, self.stride, (1,) * dims)
            crop = tuple(slice(p, p + n) for p, n in zip(self.padding, self.sizes))
            grad_input = xp.ascontiguousarray(grad_padded[(Ellipsis,) + crop])
            grad_input = grad_input[0] if self.unbatched else grad_input
        if needs[1]:
            grad_weight = (grad.transpose(0, 2, 1) @ self.cols).reshape(self.weight_shape)  # (T, O, C * K)
        if self.bias_shape is None:
            return grad_input, grad_weight
        if needs[2]:
            grad_bias = grad.sum(axis=1).reshape(self.bias_shape)  # (T, O)
        return grad_input, grad_weight, grad_bias


def _tiled(op, dims, input, weight, bias, stride, padding, locally_connected) -> Tensor:
    input, weight = as_tensor(input), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    context = shape_context(input=input.shape, weight=weight.shape)
    check_rank(op, input.shape, dims)
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point input, received dtype {input.dtype}")
    leading = "output size" if locally_connected else "tile"
    if weight.ndim != 2 * dims + 2:
        raise invalid(op, "weight", f"a {2 * dims + 2}-D weight (*{leading}, out_channels, in_channels, *kernel)",
                      weight.shape, context)
    if weight.dtype != input.dtype:
        raise invalid(op, "weight", f"the input's dtype {input.dtype}", str(weight.dtype), context)
    channels = input.shape[-dims - 1]
    if weight.shape[dims + 1] != channels:
        raise invalid(op, "weight", f"weight.shape[{dims + 1}] equal to the input's {channels} channels",
                      weight.shape[dims + 1], context)
    stride = ntuple(stride, dims, op, "stride", context)
    padding = ntuple(padding, dims, op, "padding", context, minimum=0)
    kernel = weight.shape[dims + 2 :]
    padded = tuple(n + 2 * p for n, p in zip(input.shape[-dims:], padding))
    if any(k < 1 or k > n for k, n in zip(kernel, padded)):
        raise invalid(op, "weight", f"a kernel no larger than the padded input {padded}", kernel, context)
    if not locally_connected and any(t < 1 for t in weight.shape[:dims]):
        raise invalid(op, "weight", "a tile of positive sizes", weight.shape[:dims], context)
    out_sizes = tuple((n - k) // s + 1 for n, k, s in zip(padded, kernel, stride))
    if locally_connected and weight.shape[:dims] != out_sizes:
        raise invalid(op, "weight", f"leading dimensions equal to the output size {out_sizes}", weight.shape[:dims],
                      context)
    if bias is not None:
        expected_bias = weight.shape[:dims] + (weight.shape[dims],)
        if bias.shape != expected_bias or bias.dtype != input.dtype:
            raise invalid(op, "bias", f"a {input.dtype} bias of shape {expected_bias}",
                          f"{bias.dtype} of shape {bias.shape}", context)
    tensors = (input, weight) if bias is None else (input, weight, bias)
    return TiledConvNd.apply(*tensors, stride=stride, padding=padding)


_LOCAL_DOC = """{dims}-D locally connected layer (unshared convolution, Goodfellow et al. §9.5).

    Like ``conv{dims}d`` but every output position has its own kernel and bias.

    Args:
        input: (N, C_in, {spatial}) or unbatched (C_in, {spatial}).
        weight: ({out}, C_out, C_in, {kernel}): ``weight[{index}]`` is the kernel of output position ({index}).
        bias: optional ({out}, C_out).
        stride: int or tuple of {dims}; positive.
        padding: int or tuple of {dims}; zeros on both sides.

    Shape:
        Output (N, C_out, {out}) with ``out = floor((in + 2 * padding - k) / stride) + 1`` per dimension,
        which must equal the weight's leading dimensions.

    Examples:
        >>> x = cs.randn({x})
        >>> w = cs.randn({w})
        >>> F.locally_connected{dims}d(x, w, stride=2).shape
        {y}
    """

_TILED_DOC = """{dims}-D tiled convolution (Goodfellow et al. §9.5; Le et al. 2010).

    ``t`` kernel sets are cycled across the output: output position ({index}) uses the kernel
    ``weight[{modulo}]``. A tile of 1 is ``conv{dims}d``; a tile equal to the output size is
    ``locally_connected{dims}d``.

    Args:
        input: (N, C_in, {spatial}) or unbatched (C_in, {spatial}).
        weight: ({tile}, C_out, C_in, {kernel}).
        bias: optional ({tile}, C_out), cycled with the kernels.
        stride, padding: as ``conv{dims}d``.

    Shape:
        Output (N, C_out, {spatial_out}) with ``out = floor((in + 2 * padding - k) / stride) + 1`` per dimension.

    Examples:
        >>> x = cs.randn({x})
        >>> w = cs.randn({wt})
        >>> F.tiled_conv{dims}d(x, w, padding=1).shape
        {yt}
    """


def locally_connected1d(input, weight, bias=None, stride=1, padding=0) -> Tensor:
    return _tiled("locally_connected1d", 1, input, weight, bias, stride, padding, True)


def locally_connected2d(input, weight, bias=None, stride=1, padding=0) -> Tensor:
    return _tiled("locally_connected2d", 2, input, weight, bias, stride, padding, True)


def tiled_conv1d(input, weight, bias=None, stride=1, padding=0) -> Tensor:
    return _tiled("tiled_conv1d", 1, input, weight, bias, stride, padding, False)


def tiled_conv2d(input, weight, bias=None, stride=1, padding=0) -> Tensor:
    return _tiled("tiled_conv2d", 2, input, weight, bias, stride, padding, False)


locally_connected1d.__doc__ = _LOCAL_DOC.format(
    dims=1, spatial="L", kernel="kL", out="L_out", index="i", x="2, 3, 9", w="4, 5, 3, 3", y="(2, 5, 4)"
)
locally_connected2d.__doc__ = _LOCAL_DOC.format(
    dims=2, spatial="H, W", kernel="kH, kW", out="H_out, W_out", index="i, j", x="2, 3, 9, 9",
    w="4, 4, 5, 3, 3, 3", y="(2, 5, 4, 4)"
)
tiled_conv1d.__doc__ = _TILED_DOC.format(
    dims=1, spatial="L", spatial_out="L_out", kernel="kL", tile="t", index="i", modulo="i mod t", x="2, 3, 9",
    wt="2, 5, 3, 3", yt="(2, 5, 9)"
)
tiled_conv2d.__doc__ = _TILED_DOC.format(
    dims=2, spatial="H, W", spatial_out="H_out, W_out", kernel="kH, kW", tile="t_h, t_w", index="i, j",
    modulo="i mod t_h, j mod t_w", x="2, 3, 8, 8", wt="2, 2, 5, 3, 3, 3", yt="(2, 5, 8, 8)"
)
