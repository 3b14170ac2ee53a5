"""``unfold`` (im2col) and ``fold`` (col2im) as differentiable ops, as ``torch.nn.functional``.

``unfold`` copies every sliding block of a padded (N, C, H, W) image into a column of an
(N, C * kH * kW, L) matrix, L the number of blocks: the lectures' view of convolution,
which is then one matrix product ``W (O, C kH kW) @ cols``. ``fold`` is its adjoint: it
sums each column back over the block it came from (overlaps add up) and crops the
padding. Each op's backward is the other op.

Both stand on the sliding-window kernels of ``nn/kernels/windows.py``: ``sliding_windows``
(a strided view, no copy; the one copy is the reshape into columns) and
``scatter_windows`` (one strided slice-add per kernel offset, no loop over pixels).

Output sizes, per spatial dimension d (the lectures' formula):
``L_d = floor((S_d + 2 padding_d - dilation_d (kernel_d - 1) - 1) / stride_d) + 1``, ``L = L_H * L_W``.
"""

from __future__ import annotations

import math

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._utils import invalid, ntuple
from convstack.nn.kernels.reference.windows import output_size, pad_spatial, scatter_windows, sliding_windows
from convstack.tensor import Tensor, as_tensor

_SPATIAL = 2  # as PyTorch: unfold and fold take images (4-D, or 3-D unbatched)


def _blocks_to_columns(windows):
    """(N, C, *O, *K) windows -> (N, C * prod(K), prod(O)) columns (one copy)."""
    batch, channels = windows.shape[:2]
    spatial = (windows.ndim - 2) // 2
    ordered = windows.transpose((0, 1) + tuple(range(2 + spatial, 2 + 2 * spatial)) + tuple(range(2, 2 + spatial)))
    blocks = math.prod(windows.shape[2 : 2 + spatial])
    return ordered.reshape(batch, channels * math.prod(windows.shape[2 + spatial:]), blocks)  # (N, C K, L)


def _columns_to_blocks(columns, channels, kernel, out_sizes):
    """(N, C * prod(K), prod(O)) -> an (N, C, *O, *K) view, the layout ``scatter_windows`` reads."""
    spatial = len(kernel)
    blocks = columns.reshape((columns.shape[0], channels) + tuple(kernel) + tuple(out_sizes))  # (N, C, *K, *O)
    return blocks.transpose((0, 1) + tuple(range(2 + spatial, 2 + 2 * spatial)) + tuple(range(2, 2 + spatial)))


def _im2col(x, kernel, dilation, padding, stride):
    padded = pad_spatial(x, [(p, p) for p in padding])
    return _blocks_to_columns(sliding_windows(padded, kernel, stride, dilation))


def _col2im(columns, channels, sizes, kernel, dilation, padding, stride, out_sizes):
    xp = get_array_module(columns)
    padded_shape = (columns.shape[0], channels) + tuple(n + 2 * p for n, p in zip(sizes, padding))
    summed = scatter_windows(_columns_to_blocks(columns, channels, kernel, out_sizes), padded_shape, stride, dilation)
    return xp.ascontiguousarray(summed[(Ellipsis,) + tuple(slice(p, p + n) for p, n in zip(padding, sizes))])


class Unfold(Function):
    """(N, C, *S) -> (N, C * prod(K), L); backward is col2im."""

    def forward(self, x, *, kernel, dilation, padding, stride, out_sizes):
        self.geometry = (x.shape[1], x.shape[2:], kernel, dilation, padding, stride, out_sizes)
        return get_array_module(x).ascontiguousarray(_im2col(x, kernel, dilation, padding, stride))

    def backward(self, grad):
        return (_col2im(grad, *self.geometry),)


class Fold(Function):
    """(N, C * prod(K), L) -> (N, C, *S); backward is im2col."""

    def forward(self, columns, *, channels, sizes, kernel, dilation, padding, stride, out_sizes):
        self.geometry = (kernel, dilation, padding, stride)
        return _col2im(columns, channels, sizes, kernel, dilation, padding, stride, out_sizes)

    def backward(self, grad):
        return (get_array_module(grad).ascontiguousarray(_im2col(grad, *self.geometry)),)


def _geometry(op: str, kernel_size, dilation, padding, stride, context: str):
    kernel = ntuple(kernel_size, _SPATIAL, op, "kernel_size", context)
    dilation = ntuple(dilation, _SPATIAL, op, "dilation", context)
    padding = ntuple(padding, _SPATIAL, op, "padding", context, minimum=0)
    stride = ntuple(stride, _SPATIAL, op, "stride", context)
    return kernel, dilation, padding, stride


def _block_counts(op: str, sizes, kernel, dilation, padding, stride, context: str, argument: str):
    counts = tuple(output_size(n, k, s, 2 * p, d) for n, k, s, p, d in zip(sizes, kernel, stride, padding, dilation))
    if any(c < 1 for c in counts):
        raise invalid(op, argument, f"a size that fits at least one block per dimension (kernel_size {kernel}, "
                      f"dilation {dilation}, padding {padding} give {counts} blocks)", tuple(sizes), context)
    return counts


def unfold(input, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Extract sliding local blocks of a batch of images into columns (im2col).

    Args:
        input: (N, C, H, W), or (C, H, W) unbatched; N may be 0.
        kernel_size: block size (an int or a pair).
        dilation: spacing between the elements of a block.
        padding: implicit zero padding on both sides of each spatial dimension.
        stride: step between blocks.

    Shape:
        - Input: (N, C, H, W) or (C, H, W).
        - Output: (N, C * kH * kW, L) or (C * kH * kW, L), with L = L_H * L_W and
          ``L_d = floor((S_d + 2 padding_d - dilation_d (kernel_d - 1) - 1) / stride_d) + 1``.

    Examples:
        >>> F.unfold(cs.arange(9.0).reshape(1, 1, 3, 3), 2)
        tensor([[[0., 1., 3., 4.],
                 [1., 2., 4., 5.],
                 [3., 4., 6., 7.],
                 [4., 5., 7., 8.]]])
    """
    op = "unfold"
    input = as_tensor(input)
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, received a {input.ndim}-D input "
                         f"of shape {input.shape}")
    context = f"input shape {input.shape}"
    kernel, dilation, padding, stride = _geometry(op, kernel_size, dilation, padding, stride, context)
    counts = _block_counts(op, input.shape[-2:], kernel, dilation, padding, stride, context, "input")
    unbatched = input.ndim == 3
    batched = input.reshape((1,) + input.shape) if unbatched else input
    columns = Unfold.apply(batched, kernel=kernel, dilation=dilation, padding=padding, stride=stride, out_sizes=counts)
    return columns.reshape(columns.shape[1:]) if unbatched else columns


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sum columns of sliding blocks back into a batch of images (col2im), the adjoint of ``unfold``.

    Where blocks overlap their values add up, so ``fold(unfold(x))`` is ``x`` times the number
    of blocks covering each pixel.

    Args:
        input: (N, C * kH * kW, L), or (C * kH * kW, L) unbatched.
        output_size: the spatial size (H, W) of the image (an int or a pair).
        kernel_size, dilation, padding, stride: as for ``unfold``; L must equal the number of
            blocks they give for ``output_size``.

    Shape:
        - Input: (N, C * kH * kW, L) or (C * kH * kW, L).
        - Output: (N, C, H, W) or (C, H, W).

    Examples:
        >>> F.fold(cs.ones(1, 4, 4), (3, 3), 2)
        tensor([[[[1., 2., 1.],
                  [2., 4., 2.],
                  [1., 2., 1.]]]])
    """
    op = "fold"
    input = as_tensor(input)
    if input.ndim not in (2, 3):
        raise ValueError(f"{op}: expected a 2-D (C * kH * kW, L) or 3-D (N, C * kH * kW, L) input, received a "
                         f"{input.ndim}-D input of shape {input.shape}")
    context = f"input shape {input.shape}"
    sizes = ntuple(output_size, _SPATIAL, op, "output_size", context)
    kernel, dilation, padding, stride = _geometry(op, kernel_size, dilation, padding, stride, context)
    block = math.prod(kernel)
    if input.shape[-2] % block:
        raise ValueError(f"{op}: expected the size of the input's column dimension ({input.shape[-2]}) to be "
                         f"divisible by the product of kernel_size {kernel} ({block}) ({context})")
    counts = _block_counts(op, sizes, kernel, dilation, padding, stride, context, "output_size")
    if input.shape[-1] != math.prod(counts):
        raise ValueError(f"{op}: expected {math.prod(counts)} blocks ({' * '.join(map(str, counts))}) in the input's "
                         f"last dimension for output_size {sizes}, kernel_size {kernel}, dilation {dilation}, padding "
                         f"{padding}, stride {stride}, received {input.shape[-1]} ({context})")
    unbatched = input.ndim == 2
    batched = input.reshape((1,) + input.shape) if unbatched else input
    image = Fold.apply(batched, channels=input.shape[-2] // block, sizes=sizes, kernel=kernel, dilation=dilation,
                       padding=padding, stride=stride, out_sizes=counts)
    return image.reshape(image.shape[1:]) if unbatched else image
