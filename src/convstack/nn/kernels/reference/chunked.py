"""im2col + GEMM convolution over chunks of the batch, through reused buffers; any number of dimensions.

The column matrix of a whole batch can be far larger than the input (prod(K) times,
before the stride), so every pass here walks the batch in chunks whose columns fit in
``limit`` bytes (see ``workspace``): the forward writes each chunk's slice of the
output, the weight gradient accumulates over the chunks, the input gradient is written
chunk by chunk. The arithmetic per chunk is ``conv_gemm``'s (layout "CNHW").

Two ways to the input gradient are kept, both measured in ``docs/convolution_algorithms.md``:
``backward_data`` (dcols = W^T @ grad, then col2im scatters them back) and, for stride 1,
``backward_data_correlate``: the input gradient of a stride-1 convolution is the
forward convolution of the gradient, padded by dilation * (K - 1) - padding, with the
flipped kernel whose in and out channels are swapped, so im2col + GEMM serve it with no
scatter at all.
"""

from __future__ import annotations

import math

from convstack.backend import get_array_module
from convstack.nn.kernels.geometry import ConvGeometry
from convstack.nn.kernels.reference import conv_gemm, flat_planes  # flat_planes: its fill_padded
from convstack.nn.kernels.workspace import batch_chunk, scratch


def pad_into(xp, slot, x, pads):
    """``x`` (N, C, *S) zero-padded by (before, after) ``pads``, in the scratch buffer ``slot``; ``x`` if no padding."""
    if all(b == 0 and a == 0 for b, a in pads):
        return x
    sizes = tuple(size + b + a for size, (b, a) in zip(x.shape[2:], pads))
    return flat_planes.fill_padded(scratch(xp, slot, x.shape[:2] + sizes, x.dtype), x, pads)


# Bytes of columns per chunk when the workspace limit allows more: a chunk's columns stay in
# the cache between the copy that writes them and the GEMM that reads them (measured, see
# ``workspace``: 4-8 MiB chunks ran 1.2-1.7x faster than whole batches of 20-75 MiB).
CHUNK_BYTES = 8 * 2**20


def _columns_per_sample(geometry: ConvGeometry) -> int:
    """Bytes of one sample's columns, C * prod(K) * prod(O)."""
    return geometry.in_channels * math.prod(geometry.kernel) * math.prod(geometry.out_sizes) * geometry.itemsize


def _chunk(geometry: ConvGeometry, limit: int, op: str, xp) -> int:
    context = f"input shape {geometry.input_shape}, weight shape {geometry.weight_shape}"
    per_sample = _columns_per_sample(geometry)
    limit = min(limit, max(CHUNK_BYTES, per_sample)) if per_sample <= limit else limit
    return batch_chunk(geometry.batch, per_sample, limit, f"{op}: the im2col buffer", context, xp)


# Columns of at most this many bytes are kept from a training forward for the weight
# gradient (one im2col fewer a step; LeNet's layers' weight gradients ran 2x faster so).
KEEP_BYTES = 32 * 2**20


def keeps_columns(geometry: ConvGeometry, limit: int, op: str, xp) -> bool:
    """Whether a training forward keeps its columns: the whole batch in one chunk and within ``KEEP_BYTES``."""
    whole = _columns_per_sample(geometry) * geometry.batch
    return whole <= KEEP_BYTES and _chunk(geometry, limit, op, xp) == geometry.batch


class Columns:
    """im2col's (G, CgK, N*L) columns of a whole batch, kept by ``forward`` for ``backward_weight``."""

    def __init__(self, array):
        self.array = array


def _chunk_columns(xp, x, geometry, n0, n1, keep=False):
    """The (G, CgK, n*L) columns of samples n0:n1 of ``x``, in scratch (in a new array if ``keep``)."""
    padded = pad_into(xp, "gemm.padded", x[n0:n1], geometry.pads)  # (n, C, *Sp)
    shape = (geometry.groups, geometry.in_channels // geometry.groups * math.prod(geometry.kernel),
             (n1 - n0) * math.prod(geometry.out_sizes))
    buffer = xp.empty(shape, dtype=x.dtype) if keep else scratch(xp, "gemm.cols", shape, x.dtype)
    cols, _ = conv_gemm.im2col(padded, geometry.kernel, geometry.stride, geometry.dilation, geometry.groups,
                               out=buffer)
    return cols


def forward(x, weight, bias, geometry: ConvGeometry, limit: int, op: str = "conv", keep: bool = False):
    """Cross-correlate ``x`` (N, C, *S), unpadded, with ``weight`` (O, Cg, *K), plus ``bias``: (N, O, *O).

    With ``keep``, returns (output, ``Columns``) when the whole batch's columns fit in
    ``KEEP_BYTES`` and one chunk, else (output, None).
    """
    xp = get_array_module(x, weight)
    wanted, keep = keep, keep and keeps_columns(geometry, limit, op, xp)
    batch, groups, out_channels = geometry.batch, geometry.groups, geometry.out_channels
    out_sizes = geometry.out_sizes
    length = math.prod(out_sizes)
    w = weight.reshape(groups, out_channels // groups, -1)  # (G, Og, CgK)
    out = xp.empty((batch, out_channels) + out_sizes, dtype=x.dtype)
    flat = out.reshape(batch, out_channels, length)  # (N, O, L)
    step = _chunk(geometry, limit, op, xp)
    for n0 in range(0, batch, step):
        n1 = min(batch, n0 + step)
        cols = _chunk_columns(xp, x, geometry, n0, n1, keep)  # (G, CgK, n*L)
        product = scratch(xp, "gemm.product", (groups, out_channels // groups, (n1 - n0) * length), x.dtype)
        xp.matmul(w, cols, out=product)  # (G, Og, n*L)
        transposed = product.reshape(out_channels, n1 - n0, length).transpose(1, 0, 2)  # (n, O, L) view
        if bias is None:
            flat[n0:n1] = transposed
        else:
            xp.add(transposed, bias.reshape(-1, 1), out=flat[n0:n1])
    if wanted:
        return out, Columns(cols) if keep else None
    return out


def backward_weight(grad, x, geometry: ConvGeometry, limit: int, op: str = "conv"):
    """Weight gradient (O, Cg, *K) from ``grad`` (N, O, *O) and the unpadded input ``x``, accumulated over chunks.

    ``x`` may be the ``Columns`` a forward kept: then only the GEMM runs.
    """
    xp = get_array_module(grad)
    batch, groups, out_channels = geometry.batch, geometry.groups, geometry.out_channels
    length = math.prod(geometry.out_sizes)
    step = batch if isinstance(x, Columns) else _chunk(geometry, limit, op, xp)
    grad_flat = grad.reshape(batch, out_channels, length)  # (N, O, L)
    total = None
    for n0 in range(0, batch, step):
        n1 = min(batch, n0 + step)
        cols = x.array if isinstance(x, Columns) else _chunk_columns(xp, x, geometry, n0, n1)  # (G, CgK, n*L)
        g = scratch(xp, "gemm.grad", (out_channels, n1 - n0, length), grad.dtype)
        g[...] = grad_flat[n0:n1].transpose(1, 0, 2)  # (O, n, L)
        g = g.reshape(groups, out_channels // groups, -1).transpose(0, 2, 1)  # (G, n*L, Og) view
        # dW^T = cols @ grad^T: the long CgK side as the GEMM's rows (see conv_gemm.backward_weight).
        product = xp.matmul(cols, g)  # (G, CgK, Og)
        total = product if total is None else total.__iadd__(product)
    return total.transpose(0, 2, 1).reshape(geometry.weight_shape)  # (G, Og, CgK) -> (O, Cg, *K)


def backward_data(grad, weight, geometry: ConvGeometry, limit: int, op: str = "conv"):
    """Input gradient (N, C, *S) by dcols = W^T @ grad and col2im, chunk by chunk."""
    xp = get_array_module(grad, weight)
    batch, groups, out_channels = geometry.batch, geometry.groups, geometry.out_channels
    out_sizes, pads = geometry.out_sizes, geometry.pads
    length = math.prod(out_sizes)
    w_t = weight.reshape(groups, out_channels // groups, -1).transpose(0, 2, 1)  # (G, CgK, Og)
    grad_flat = grad.reshape(batch, out_channels, length)  # (N, O, L)
    result = xp.empty(geometry.input_shape, dtype=grad.dtype)
    step = _chunk(geometry, limit, op, xp)
    crop = tuple(slice(b, b + size) for (b, _), size in zip(pads, geometry.input_shape[2:]))
    for n0 in range(0, batch, step):
        n1 = min(batch, n0 + step)
        g = scratch(xp, "gemm.grad", (out_channels, n1 - n0, length), grad.dtype)
        g[...] = grad_flat[n0:n1].transpose(1, 0, 2)  # (O, n, L)
        dcols = scratch(xp, "gemm.cols", (groups, w_t.shape[1], (n1 - n0) * length), grad.dtype)
        xp.matmul(w_t, g.reshape(groups, out_channels // groups, -1), out=dcols)  # (G, CgK, n*L)
        padded_shape = (n1 - n0, geometry.in_channels) + geometry.padded_sizes
        summed = conv_gemm.col2im(dcols, padded_shape, geometry.kernel, out_sizes, geometry.stride, geometry.dilation)
        result[n0:n1] = summed[(slice(None), slice(None)) + crop]
    return result


def correlate_pads(geometry: ConvGeometry):
    """The padding of the gradient whose correlation with the flipped kernel is the input gradient, or None.

    Per dimension (dilation * (K - 1) - before, dilation * (K - 1) - after): stride 1 only,
    and no side may be negative (a convolution padded by more than its kernel's span).
    """
    if not geometry.unit_stride:
        return None
    pads = tuple((d * (k - 1) - b, d * (k - 1) - a) for (b, a), k, d in zip(geometry.pads, geometry.kernel,
                                                                            geometry.dilation))
    return None if any(b < 0 or a < 0 for b, a in pads) else pads


def flipped_transposed(weight, groups):
    """(O, Cg, *K) -> (C, Og, *K) flipped along every spatial axis: the kernel of the input gradient."""
    xp = get_array_module(weight)
    out_channels, cg = weight.shape[:2]
    spatial = weight.ndim - 2
    grouped = weight.reshape((groups, out_channels // groups, cg) + weight.shape[2:])  # (G, Og, Cg, *K)
    flipped = grouped[(Ellipsis,) + (slice(None, None, -1),) * spatial]
    swapped = flipped.swapaxes(1, 2)  # (G, Cg, Og, *K)
    return xp.ascontiguousarray(swapped).reshape((groups * cg, out_channels // groups) + weight.shape[2:])


def gradient_geometry(geometry: ConvGeometry, pads) -> ConvGeometry:
    """The geometry of the forward convolution that computes ``geometry``'s input gradient (stride 1)."""
    out_channels, cg = geometry.weight_shape[:2]
    groups = geometry.groups
    return ConvGeometry(
        (geometry.batch, out_channels) + geometry.out_sizes,
        (groups * cg, out_channels // groups) + geometry.kernel,
        geometry.stride, pads, geometry.dilation, groups, geometry.dtype,
    )


def backward_data_correlate(grad, weight, geometry: ConvGeometry, limit: int, op: str = "conv"):
    """Input gradient of a stride-1 convolution as a forward im2col + GEMM of ``grad`` (no col2im)."""
    pads = correlate_pads(geometry)
    flipped = flipped_transposed(weight, geometry.groups)
    return forward(grad, flipped, None, gradient_geometry(geometry, pads), limit, op)
