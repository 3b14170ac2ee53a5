"""Stride-1 convolution passes over flattened padded planes: every kernel tap is one fixed offset.

Lay a chunk of samples out channel-major and flat, (C, n * P) with P = prod(Sp) the
padded plane, and the output at flat position p reads ``flat[p + offset]`` for each tap
(``tap_offsets``). A tap's columns are then one long slice per sample rather than
prod(O[:-1]) rows of O[-1] elements, and col2im's scatter one long add per tap. The
price: every position of the padded planes gets an output, and those past the output's
extent are dropped (or, for gradients, held at zero): 7% more for 56x56 padded by 1,
96% for LeNet's 10x10 outputs of 14x14 planes, and still faster there. Keeping only the
output's rows (a (C, n, rows) view per tap instead of one slice) was slower.

Used, through ``chunked``, for

- depthwise layers (one input channel per group), where im2col's GEMM is a
  matrix-vector product a few numbers wide and building the columns is the cost:
  ``forward`` (2-D and 3-D) and ``backward_weight_depthwise`` (any dimension;
  per tap, the gradient on the padded planes times the shifted input, no columns);
- the col2im input gradient at stride 1 (``backward_data``): dcols = W^T @ grad on the
  padded planes, then one slice-add per tap (the correlation of ``chunked`` still serves
  most stride-1 layers; the flat-planes algorithm picks its col2im where the output has
  more channels than the input, as in LeNet).

The measurements against chunked im2col + GEMM: docs/convolution_algorithms.md.
"""

from __future__ import annotations

import math

from convstack.backend import get_array_module
from convstack.nn.kernels.geometry import ConvGeometry
from convstack.nn.kernels.workspace import batch_chunk, scratch

# Bytes of the largest per-chunk buffer: one or two samples of the depthwise benchmark
# layer, so that columns stay in the cache between the copy and the product; dense layers'
# columns and the input gradient's dcols ran fastest in chunks of 8 MiB (the chunk sizes
# tried: docs/convolution_algorithms.md).
CHUNK_BYTES = 4 * 2**20
DENSE_CHUNK_BYTES = 8 * 2**20
BACKWARD_DATA_CHUNK_BYTES = 8 * 2**20


def applies_depthwise(geometry: ConvGeometry, pass_: str) -> bool:
    """Depthwise (one input channel per group, any channel multiplier), stride 1; the forward in 2-D and 3-D only.

    In 1-D im2col's rows are already contiguous runs, and its forward was faster; the
    weight gradient here still wins there. A single input channel without groups
    (LeNet's first layer) stays on im2col, whose columns the training forward keeps.
    """
    return geometry.unit_stride and geometry.depthwise and (pass_ != "forward" or len(geometry.kernel) > 1)


def applies_backward_data(geometry: ConvGeometry) -> bool:
    """Stride 1, and the padded planes add at most 10% to dcols' GEMM or its output side is thin (<= 16 per group).

    The extra positions cost GEMM work in proportion to the output channels, while the
    scatter saved is per input column: faster for LeNet 6->16 (10x10 of 14x14 planes),
    slower for 3->64 5x5 at 32x32 (36x36 planes).
    """
    if not geometry.unit_stride:
        return False
    thin = geometry.out_channels // geometry.groups <= 16
    return thin or math.prod(geometry.padded_sizes) <= 1.1 * math.prod(geometry.out_sizes)


def fill_padded(padded, x, pads):
    """Write ``x`` (A, B, *S) into ``padded`` (A, B, *Sp), zeroing only the (before, after) ``pads`` border slabs."""
    sizes = padded.shape[2:]
    for axis, ((b, a), size) in enumerate(zip(pads, sizes)):
        lead = (slice(None),) * (2 + axis)
        padded[lead + (slice(0, b),)] = 0
        padded[lead + (slice(size - a, size),)] = 0
    padded[(slice(None), slice(None)) + tuple(slice(b, size - a) for (b, a), size in zip(pads, sizes))] = x
    return padded


def tap_offsets(geometry: ConvGeometry) -> tuple:
    """The flat offset in a padded plane of each kernel tap, in the weight's C order."""
    sizes = geometry.padded_sizes
    strides = [math.prod(sizes[axis + 1:]) for axis in range(len(sizes))]
    offsets = [0]
    for k, d, stride in zip(geometry.kernel, geometry.dilation, strides):
        offsets = [offset + tap * d * stride for offset in offsets for tap in range(k)]
    return tuple(offsets)


def _chunk(geometry: ConvGeometry, limit: int, op: str, xp, per_sample: int, target: int = CHUNK_BYTES) -> int:
    """Samples per chunk whose largest buffer (``per_sample`` bytes a sample) fits ``limit`` and about ``target``."""
    limit = min(limit, max(target, per_sample)) if per_sample <= limit else limit
    context = f"input shape {geometry.input_shape}, weight shape {geometry.weight_shape}"
    return batch_chunk(geometry.batch, per_sample, limit, f"{op}: the flat-plane buffer", context, xp)


def _flat_planes(xp, slot, array, pads, sizes, span: int):
    """Samples ``array`` (n, C, *S) padded to ``sizes``, channel-major and flat: (C, n * P + span), the tail zeroed."""
    n, channels = array.shape[:2]
    length = n * math.prod(sizes)
    flat = scratch(xp, slot, (channels, length + span), array.dtype)
    flat[:, length:] = 0
    fill_padded(flat[:, :length].reshape((channels, n) + sizes), array.swapaxes(0, 1), pads)  # (C, n, *Sp)
    return flat


def applies_forward(geometry: ConvGeometry) -> bool:
    """Stride 1, 2-D or 3-D, and either depthwise or with padded planes at most 1.35x the output (dense layers).

    Below that ratio the contiguous copies save more than the extra GEMM work costs (ResNet-CIFAR
    and VGG layers, two BLAS threads; docs/convolution_algorithms.md); wider padding (LeNet's
    14x14 planes for 10x10 outputs, 1.96x) wastes more GEMM work than they save.
    """
    if not geometry.unit_stride or len(geometry.kernel) < 2:
        return False
    if geometry.depthwise:
        return True
    return math.prod(geometry.padded_sizes) <= 1.35 * math.prod(geometry.out_sizes)


def _columns(xp, chunk, geometry: ConvGeometry, offsets):
    """The columns (C, K, n * P) of a chunk (n, C, *S): for each tap, one contiguous slice of its flat padded planes."""
    sizes = geometry.padded_sizes
    length = chunk.shape[0] * math.prod(sizes)
    flat = _flat_planes(xp, "flat.input", chunk, geometry.pads, sizes, offsets[-1])  # (C, n*P + span)
    cols = scratch(xp, "flat.cols", (chunk.shape[1], len(offsets), length), chunk.dtype)
    for tap, offset in enumerate(offsets):
        cols[:, tap] = flat[:, offset:offset + length]  # (C, n*P)
    return cols


def forward(x, weight, bias, geometry: ConvGeometry, limit: int, op: str = "conv"):
    """Cross-correlate ``x`` (N, C, *S), unpadded, with ``weight`` (O, Cg, *K), plus ``bias``: (N, O, *O).

    Columns (C, K, n * P), one contiguous slice per tap, read as (G, Cg * K, n * P): one
    GEMM per group (a matrix-vector product per channel for depthwise layers).
    """
    xp = get_array_module(x, weight)
    batch, groups, channels, out_channels = geometry.batch, geometry.groups, geometry.in_channels, geometry.out_channels
    sizes, out_sizes = geometry.padded_sizes, geometry.out_sizes
    offsets = tap_offsets(geometry)
    w = weight.reshape(groups, out_channels // groups, -1)  # (G, Og, Cg*K)
    out = xp.empty((batch, out_channels) + out_sizes, dtype=x.dtype)
    valid = (Ellipsis,) + tuple(slice(0, size) for size in out_sizes)
    target = CHUNK_BYTES if geometry.depthwise else DENSE_CHUNK_BYTES
    per_sample = channels * len(offsets) * math.prod(sizes) * geometry.itemsize  # columns
    step = _chunk(geometry, limit, op, xp, per_sample, target)
    for n0 in range(0, batch, step):
        n = min(batch, n0 + step) - n0
        length = n * math.prod(sizes)
        cols = _columns(xp, x[n0:n0 + n], geometry, offsets)  # (C, K, n*P)
        product = scratch(xp, "flat.product", w.shape[:2] + (length,), x.dtype)
        xp.matmul(w, cols.reshape(groups, -1, length), out=product)  # (G, Og, n*P)
        result = product.reshape((out_channels, n) + sizes)[valid].swapaxes(0, 1)  # (n, O, *O) view
        if bias is None:
            out[n0:n0 + n] = result
        else:
            xp.add(result, bias.reshape((-1,) + (1,) * len(sizes)), out=out[n0:n0 + n])
    return out


def _padded_gradient(xp, grad, geometry: ConvGeometry):
    """``grad`` (n, O, *O) channel-major on the padded planes: (O, n, *Sp), zero past the output's extent."""
    sizes = geometry.padded_sizes
    padded = scratch(xp, "flat.grad", (grad.shape[1], grad.shape[0]) + sizes, grad.dtype)
    pads = tuple((0, wide - size) for wide, size in zip(sizes, geometry.out_sizes))
    return fill_padded(padded, grad.swapaxes(0, 1), pads)


def backward_weight_depthwise(grad, x, geometry: ConvGeometry, limit: int, op: str = "conv"):
    """Weight gradient (C * m, 1, *K) from ``grad`` (N, C * m, *O) and the unpadded input ``x`` (N, C, *S).

    Per tap, one matrix-vector product per channel over the chunk's n * P positions.
    """
    xp = get_array_module(grad, x)
    batch, channels, out_channels = geometry.batch, geometry.in_channels, geometry.out_channels
    sizes = geometry.padded_sizes
    offsets = tap_offsets(geometry)
    multiplier = out_channels // channels
    total = None
    step = _chunk(geometry, limit, op, xp, (channels + out_channels) * math.prod(sizes) * geometry.itemsize)
    for n0 in range(0, batch, step):
        n = min(batch, n0 + step) - n0
        length = n * math.prod(sizes)
        flat = _flat_planes(xp, "flat.input", x[n0:n0 + n], geometry.pads, sizes, offsets[-1])  # (C, n*P + span)
        g = _padded_gradient(xp, grad[n0:n0 + n], geometry).reshape(channels, multiplier, length)  # (C, m, n*P)
        part = xp.empty((channels, multiplier, len(offsets)), dtype=grad.dtype)
        for tap, offset in enumerate(offsets):
            xp.matmul(g, flat[:, offset:offset + length, None], out=part[:, :, tap:tap + 1])  # (C, m, 1)
        total = part if total is None else total.__iadd__(part)
    return total.reshape(geometry.weight_shape)


def backward_weight(grad, x, geometry: ConvGeometry, limit: int, op: str = "conv"):
    """Weight gradient (O, Cg, *K) of a stride-1 layer from ``grad`` (N, O, *O) and the unpadded input ``x``.

    Per chunk, dW^T += cols @ grad^T over the n * P padded positions, the columns (C, K, n * P)
    one contiguous slice per tap and the gradient zero past the output's extent.
    """
    xp = get_array_module(grad, x)
    batch, groups, channels, out_channels = geometry.batch, geometry.groups, geometry.in_channels, geometry.out_channels
    sizes = geometry.padded_sizes
    offsets = tap_offsets(geometry)
    total = None
    per_sample = channels * len(offsets) * math.prod(sizes) * geometry.itemsize  # columns
    step = _chunk(geometry, limit, op, xp, per_sample, DENSE_CHUNK_BYTES)
    for n0 in range(0, batch, step):
        n = min(batch, n0 + step) - n0
        length = n * math.prod(sizes)
        cols = _columns(xp, x[n0:n0 + n], geometry, offsets)  # (C, K, n*P)
        g = _padded_gradient(xp, grad[n0:n0 + n], geometry).reshape(groups, out_channels // groups, length)
        product = xp.matmul(cols.reshape(groups, -1, length), g.transpose(0, 2, 1))  # (G, CgK, Og)
        total = product if total is None else total.__iadd__(product)
    return total.transpose(0, 2, 1).reshape(geometry.weight_shape)  # (G, Og, CgK) -> (O, Cg, *K)


def backward_data(grad, weight, geometry: ConvGeometry, limit: int, op: str = "conv"):
    """Input gradient (N, C, *S) of a stride-1 layer: dcols = W^T @ grad on the padded planes, then one add per tap."""
    xp = get_array_module(grad, weight)
    batch, groups, channels, out_channels = geometry.batch, geometry.groups, geometry.in_channels, geometry.out_channels
    sizes = geometry.padded_sizes
    offsets = tap_offsets(geometry)
    w_t = weight.reshape(groups, out_channels // groups, -1).transpose(0, 2, 1)  # (G, CgK, Og)
    result = xp.empty(geometry.input_shape, dtype=grad.dtype)
    crop = (Ellipsis,) + tuple(slice(b, b + size) for (b, _), size in zip(geometry.pads, geometry.input_shape[2:]))
    per_sample = channels * len(offsets) * math.prod(sizes) * geometry.itemsize  # dcols
    step = _chunk(geometry, limit, op, xp, per_sample, BACKWARD_DATA_CHUNK_BYTES)
    for n0 in range(0, batch, step):
        n = min(batch, n0 + step) - n0
        length = n * math.prod(sizes)
        g = _padded_gradient(xp, grad[n0:n0 + n], geometry)  # (O, n, *Sp)
        dcols = scratch(xp, "flat.cols", (groups, w_t.shape[1], length), grad.dtype)
        xp.matmul(w_t, g.reshape(groups, out_channels // groups, length), out=dcols)  # (G, CgK, n*P)
        dcols = dcols.reshape(channels, len(offsets), length)  # (C, K, n*P)
        flat = scratch(xp, "flat.input", (channels, length + offsets[-1]), grad.dtype)
        flat[:, :length] = dcols[:, 0]  # the first tap's offset is 0
        flat[:, length:] = 0
        for tap in range(1, len(offsets)):
            flat[:, offsets[tap]:offsets[tap] + length] += dcols[:, tap]
        planes = flat[:, :length].reshape((channels, n) + sizes)  # (C, n, *Sp)
        result[n0:n0 + n] = planes[crop].swapaxes(0, 1)
    return result
