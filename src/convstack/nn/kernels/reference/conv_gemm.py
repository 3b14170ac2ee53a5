"""GEMM convolution on plain arrays, any number of spatial dimensions; no autograd here.

Convolution as matrix multiplication (Chellapilla et al. 2006; Caffe's im2col):
the windows of the padded input are copied once into a column matrix and the
weights multiply it in one BLAS call per group. The three products of a layer are

    forward          out[g]  = W[g] @ cols[g]          (G, Og, CgK) @ (G, CgK, N*L)
    backward-data    dcols[g] = W[g]^T @ grad[g]       then col2im (``scatter_windows``)
    backward-weight  dW[g]   = grad[g] @ cols[g]^T

with K = prod(kernel), L = prod(output sizes), Cg = C / G, Og = O / G.

Column layout: "CNHW", (G, CgK, N*L), measured against "NCHW" (N, G, CgK, L) batched
and "NHWC" (N*L, G, CgK) in docs/convolution_algorithms.md. It is kept: the batch folded
into the GEMM's columns gives BLAS one large product per group (the batched "NCHW" one
degrades into many thin GEMMs when the feature maps are small, and its weight gradient
needs an (N, O, CgK) intermediate), while the copy into it still reads the input along contiguous rows (the "NHWC" copy
gathers runs of only K elements and its col2im scatters with a stride of C*K).
The price is one transpose of the output-sized array between (G, Og, N*L) and the
API's (N, O, *spatial), done in the same pass as the bias add.

A pointwise convolution (kernel all ones, stride all ones) skips im2col: its
columns are the input itself, and the forward and backward-data products run as a
batched GEMM straight on the (N, G, Cg, L) layout.
"""

from __future__ import annotations

import math

from convstack.backend import get_array_module
from convstack.nn.kernels.reference.windows import scatter_windows, sliding_windows


def is_pointwise(kernel, stride) -> bool:
    """A 1x1(x1) kernel at stride 1: the convolution is a GEMM over channels, no windows needed."""
    return all(k == 1 for k in kernel) and all(s == 1 for s in stride)


def channel_major(array, groups):
    """(N, C, *S) -> (G, Cg, N*L), one copy (a view when N == 1)."""
    batch, channels = array.shape[:2]
    flat = array.reshape(batch, channels, -1)  # (N, C, L)
    return flat.transpose(1, 0, 2).reshape(groups, channels // groups, -1)  # (G, Cg, N*L)


def batch_major(array, batch, out_sizes, bias=None):
    """(G, Og, N*L) -> a contiguous (N, O, *out_sizes), adding ``bias`` (O,) in the same pass."""
    channels = array.shape[0] * array.shape[1]
    transposed = array.reshape(channels, batch, -1).transpose(1, 0, 2)  # (N, O, L) view
    return contiguous(transposed, bias).reshape((batch, channels) + tuple(out_sizes))


def contiguous(array, bias=None):
    """(N, C, *S) ``array`` made C-contiguous (copied only if it is not), plus ``bias`` (C,) in the same pass."""
    xp = get_array_module(array)
    if bias is None:
        return xp.ascontiguousarray(array)
    out = xp.empty(array.shape, dtype=array.dtype)
    xp.add(array, bias.reshape((-1,) + (1,) * (array.ndim - 2)), out=out)
    return out


def im2col(padded, kernel, stride, dilation, groups, out_sizes=None, out=None):
    """Columns of a padded (N, C, *S) input: (G, Cg*prod(K), N*prod(O)), and O.

    ``out_sizes`` keeps only the first windows along each dimension (the adjoint of a
    transposed convolution whose output_padding left room for more). ``out``: a
    C-contiguous buffer of the columns' size to write them into (none is allocated then).
    """
    xp = get_array_module(padded)
    spatial = len(kernel)
    windows = sliding_windows(padded, kernel, stride, dilation)  # (N, C, *O, *K) view
    if out_sizes is not None:
        windows = windows[(slice(None), slice(None)) + tuple(slice(0, size) for size in out_sizes)]
    out_sizes = windows.shape[2 : 2 + spatial]
    kernel_axes = tuple(range(2 + spatial, 2 + 2 * spatial))
    out_axes = tuple(range(2, 2 + spatial))
    # The one copy: rows of the output grid are contiguous runs of the input when stride is 1.
    ordered = windows.transpose((1,) + kernel_axes + (0,) + out_axes)  # (C, *K, N, *O) view
    if out is None:
        cols = xp.ascontiguousarray(ordered)
    else:
        cols = out.reshape(ordered.shape)
        xp.copyto(cols, ordered)
    batch, channels = padded.shape[:2]
    return cols.reshape(groups, (channels // groups) * math.prod(kernel), batch * math.prod(out_sizes)), out_sizes


def col2im(cols, padded_shape, kernel, out_sizes, stride, dilation):
    """The adjoint of ``im2col``: (G, Cg*prod(K), N*prod(O)) summed back into ``padded_shape`` (N, C, *S).

    The result is an (N, C, *S) view of a channel-major (C, N, *S) array: scattering in
    the columns' own (C, N) order reads and writes both in step (faster than scattering
    in (N, C) order, the final transposing copy included: docs/convolution_algorithms.md).
    """
    batch, channels = padded_shape[:2]
    spatial = len(kernel)
    blocks = cols.reshape((channels,) + tuple(kernel) + (batch,) + tuple(out_sizes))  # (C, *K, N, *O)
    out_axes = tuple(range(2 + spatial, 2 + 2 * spatial))
    kernel_axes = tuple(range(1, 1 + spatial))
    windows = blocks.transpose((0, 1 + spatial) + out_axes + kernel_axes)  # (C, N, *O, *K) view
    summed = scatter_windows(windows, (channels, batch) + tuple(padded_shape[2:]), stride, dilation)  # (C, N, *S)
    return summed.swapaxes(0, 1)  # (N, C, *S) view


def columns(padded, kernel, stride, dilation, groups, out_sizes=None):
    """What the GEMMs multiply, and the output sizes O.

    For a pointwise convolution, the padded (N, C, *S) input itself (cut to ``out_sizes``);
    otherwise ``im2col``'s (G, CgK, N*L) matrix.
    """
    if not is_pointwise(kernel, stride):
        return im2col(padded, kernel, stride, dilation, groups, out_sizes)
    if out_sizes is not None:
        padded = padded[(slice(None), slice(None)) + tuple(slice(0, size) for size in out_sizes)]
    return padded, padded.shape[2:]


def forward(padded, weight, stride, dilation, groups, bias=None, out_sizes=None):
    """Cross-correlate a padded (N, C, *S) input with ``weight`` (O, Cg, *K); returns (output, columns).

    ``columns`` (see ``columns``) is what ``backward_weight`` needs; for a pointwise
    convolution it is the input itself and no copy was made.
    """
    xp = get_array_module(padded, weight)
    kernel = weight.shape[2:]
    batch, out_channels = padded.shape[0], weight.shape[0]
    w = weight.reshape(groups, out_channels // groups, -1)  # (G, Og, CgK)
    cols, out_sizes = columns(padded, kernel, stride, dilation, groups, out_sizes)
    if not is_pointwise(kernel, stride):
        return batch_major(xp.matmul(w, cols), batch, out_sizes, bias), cols  # (G, Og, N*L) -> (N, O, *O)
    x = cols.reshape(batch, groups, cols.shape[1] // groups, -1)  # (N, G, Cg, L)
    out = xp.matmul(w, x).reshape((batch, out_channels) + tuple(out_sizes))  # (N, O, *S)
    if bias is not None:
        out += bias.reshape((out_channels,) + (1,) * len(kernel))
    return out, cols


def backward_data(grad, weight, padded_shape, stride, dilation, groups):
    """Gradient with respect to the padded input: ``grad`` (N, O, *O) -> ``padded_shape`` (N, C, *S).

    The result may be a strided view (see ``col2im``); callers crop it and make it contiguous.
    """
    xp = get_array_module(grad, weight)
    kernel = weight.shape[2:]
    batch, out_channels = grad.shape[:2]
    w_t = weight.reshape(groups, out_channels // groups, -1).transpose(0, 2, 1)  # (G, CgK, Og)
    if is_pointwise(kernel, stride) and grad.shape[2:] == tuple(padded_shape[2:]):
        g = grad.reshape(batch, groups, out_channels // groups, -1)  # (N, G, Og, L)
        return xp.matmul(w_t, g).reshape(padded_shape)
    dcols = xp.matmul(w_t, channel_major(grad, groups))  # (G, CgK, N*L)
    return col2im(dcols, padded_shape, kernel, grad.shape[2:], stride, dilation)


def backward_weight(grad, cols, weight_shape, stride, groups):
    """Gradient with respect to the weight (O, Cg, *K), from ``grad`` (N, O, *O) and the ``columns``."""
    xp = get_array_module(grad, cols)
    if is_pointwise(weight_shape[2:], stride):
        cols = channel_major(cols, groups)  # (G, Cg, N*L)
    # Computed transposed, dW^T = cols @ grad^T: the contraction runs over N*L either way, but
    # with the long (CgK) side as the GEMM's rows OpenBLAS stays fast when other processes share
    # the cores (docs/convolution_algorithms.md: 3.7x faster under load, the same when idle).
    dw_t = xp.matmul(cols, channel_major(grad, groups).transpose(0, 2, 1))  # (G, CgK, Og)
    return dw_t.transpose(0, 2, 1).reshape(weight_shape)  # (G, Og, CgK) -> (O, Cg, *K)
