"""Winograd convolution F(m x m, 3 x 3) for 3x3 stride-1 layers (Lavin & Gray 2016), and its 1-D and 3-D kin.

Each m x m tile of the output is computed from an alpha x alpha tile of the input
(alpha = m + 2, tiles overlapping by 2) as

    Y = A^T [ (G g G^T) * (B^T d B) ] A                    (* elementwise)

so a tile costs alpha^2 multiplications per (in, out) channel pair instead of 9 m^2:
F(2x2, 3x3) (alpha 4) needs 2.25 times fewer, F(4x4, 3x3) (alpha 6) 4 times fewer.
Summed over the input channels, the elementwise products become alpha^2 independent
GEMMs over channels, which is where the time goes:

    U = G g G^T      (alpha^2, G, Og, Cg)     weights, transformed once per call
    V = B^T d B      (alpha^2, G, Cg, T)      input tiles, T = tiles of a chunk of the batch
    M = U @ V        (alpha^2, G, Og, T)      alpha^2 * G BLAS GEMMs
    Y = A^T M A      (m, m, O, T)             then back to (N, O, H, W)

The same nesting works along any number of axes (Lavin & Gray's "nested" form): a
3x3x3 kernel takes alpha^3 products per tile of m^3 outputs (F(2, 3): 64 against 216),
a length-3 1-D kernel alpha against 3m. Each transform is a small matrix applied along
one tile axis at a time, a single BLAS call over a whole chunk; the tiles are gathered
from a strided view of the padded input. The batch is processed in chunks whose
transformed tiles fit in the cache (see ``workspace``), through reused buffers.

The same forward serves the input gradient (a stride-1 3x3 convolution of the gradient
with the flipped kernel, channels swapped, padding 2 - padding; see ``chunked``). The
weight gradient follows from the same identity read backwards: with dM = A dY A^T,
dU = sum over tiles of dM @ V^T and dg = G^T dU G.

Matrices: F(2, 3) on the points 0, 1, -1, inf; F(4, 3) on 0, 1, -1, 2, -2, inf (Lavin &
Gray's Eq. 7 and 8). F(4, 3) multiplies by up to 8 and divides by up to 24: in float32 its
error is about 10 times F(2, 3)'s, still near 1e-5 of the output's scale (tests hold it to 1e-4).
"""

from __future__ import annotations

import itertools
import math

from convstack.backend import as_strided, get_array_module
from convstack.nn.kernels.geometry import ConvGeometry
from convstack.nn.kernels.reference.chunked import pad_into
from convstack.nn.kernels.workspace import batch_chunk, scratch

# m -> (B^T, G, A^T)
MATRICES = {
    2: (
        [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]],
    ),
    4: (
        [
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ],
        [
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    ),
}

# Bytes of transformed input tiles per chunk: inside the L2 cache (chunks of 0.5-2 MiB beat the
# whole batch at once on the ResNet and VGG layers: docs/convolution_algorithms.md).
CHUNK_BYTES = 1 * 2**20


def applies(geometry: ConvGeometry) -> bool:
    """Kernel 3 along every axis (1-D, 2-D or 3-D), stride 1, dilation 1; any padding, any groups."""
    return all(k == 3 for k in geometry.kernel) and geometry.unit_stride and geometry.unit_dilation


def _matrices(xp, m, dtype):
    bt, g, at = MATRICES[m]
    return tuple(xp.asarray(matrix, dtype=dtype) for matrix in (bt, g, at))


def _kron(xp, matrix, times):
    """The Kronecker power matrix x ... x matrix (``times`` factors): (a, b) -> (a^times, b^times)."""
    result = matrix
    for _ in range(times - 1):
        result = (result[:, None, :, None] * matrix[None, :, None, :]).reshape(
            result.shape[0] * matrix.shape[0], -1
        )
    return result


def _along_each_axis(xp, matrix, array, dims, slots):
    """Apply ``matrix`` (p, q) along each of the ``dims`` leading axes (each of size q) of ``array``.

    ``array`` is (q, ..., q, rest...) with ``dims`` axes of size q; the result is
    (p, ..., p, rest) in scratch. Axis k is contracted by one batched GEMM over the
    p^k already transformed leading positions.
    """
    p, q = matrix.shape
    rest = array.size // q**dims
    for k in range(dims):
        source = array.reshape(p**k, q, -1)  # (p^k, q, q^(dims-k-1) * rest)
        array = scratch(xp, slots[k % 2], (p**k, p, source.shape[2]), array.dtype)
        xp.matmul(matrix, source, out=array)
    return array.reshape((p,) * dims + (rest,))


def transform_weight(weight, m, groups):
    """U = G g G^T (nested along every axis) for every (out, in) channel pair: (alpha^d, G, Og, Cg), one GEMM."""
    xp = get_array_module(weight)
    _, g, _ = _matrices(xp, m, weight.dtype)
    out_channels, cg = weight.shape[:2]
    dims = weight.ndim - 2
    # U[(i, j, ..)] = sum_(y, x, ..) G[i, y] G[j, x] .. g[y, x, ..]: the (alpha^d, 3^d) Kronecker matrix times g^T.
    u = xp.matmul(_kron(xp, g, dims), weight.reshape(out_channels * cg, -1).T)  # (alpha^d, O*Cg)
    return u.reshape(-1, groups, out_channels // groups, cg)


def _tiles(geometry: ConvGeometry, m):
    """Tiles per axis, and the padding that makes the padded input tiles * m + 2 along each axis."""
    tiles = tuple(-(-size // m) for size in geometry.out_sizes)
    pads = tuple((b, t * m + 2 - size - b) for t, size, (b, _) in zip(tiles, geometry.input_shape[2:], geometry.pads))
    return tiles, pads


def _chunk(geometry: ConvGeometry, m, tiles, limit):
    """Samples per chunk: transformed tiles of about ``CHUNK_BYTES``, but at least twice the transformed weights.

    Every chunk's GEMMs read all of U (alpha^2 * O * Cg numbers); with many channels and few
    tiles (VGG's 256 and 512 channels at 14x14 and 7x7) one-sample chunks would read U once
    per sample and run GEMMs only a few tiles wide (F(4, 3) on 256@14x14 at batch 8 ran 1.35x
    faster in one chunk than in one-sample chunks: docs/convolution_algorithms.md).
    """
    positions = (m + 2) ** len(tiles)
    per_sample = positions * geometry.in_channels * math.prod(tiles) * geometry.itemsize
    weights = positions * geometry.out_channels * geometry.weight_shape[1] * geometry.itemsize
    context = f"input shape {geometry.input_shape}, weight shape {geometry.weight_shape}"
    target = min(limit, max(CHUNK_BYTES, 2 * weights))
    op = f"conv{len(tiles)}d: the Winograd tile buffer"
    return batch_chunk(geometry.batch, per_sample, target, op, context)


def _transform_input(xp, x, n0, n1, m, tiles, pads, bt):
    """V = B^T d B (along every axis) for every tile of samples n0:n1: (alpha, .., alpha, C * n * T) in scratch."""
    alpha, dims = m + 2, len(tiles)
    chunk, channels = n1 - n0, x.shape[1]
    padded = pad_into(xp, "winograd.padded", x[n0:n1], pads)  # (n, C, *(tiles * m + 2))
    strides = padded.strides
    view = as_strided(
        padded,
        (chunk, channels) + tiles + (alpha,) * dims,
        strides[:2] + tuple(m * s for s in strides[2:]) + strides[2:],
    )  # (n, C, *tiles, *alpha)
    d = scratch(xp, "winograd.d", (alpha,) * dims + (channels, chunk) + tiles, x.dtype)
    order = tuple(range(2 + dims, 2 + 2 * dims)) + (1, 0) + tuple(range(2, 2 + dims))
    xp.copyto(d, view.transpose(order))  # (*alpha, C, n, *tiles)
    return _along_each_axis(xp, bt, d, dims, ("winograd.v", "winograd.v2"))


def forward(x, weight, bias, geometry: ConvGeometry, m: int, limit: int):
    """Cross-correlate ``x`` (N, C, *S) with a 3x..x3 ``weight`` (O, Cg, 3, ..), stride 1: (N, O, *O)."""
    xp = get_array_module(x, weight)
    bt, _, at = _matrices(xp, m, x.dtype)
    dims = len(geometry.kernel)
    positions = (m + 2) ** dims
    batch, groups, out_channels = geometry.batch, geometry.groups, geometry.out_channels
    channels, out_sizes = geometry.in_channels, geometry.out_sizes
    tiles, pads = _tiles(geometry, m)
    u = transform_weight(weight, m, groups)  # (alpha^d, G, Og, Cg)
    out = xp.empty((batch, out_channels) + out_sizes, dtype=x.dtype)
    exact = all(t * m == size for t, size in zip(tiles, out_sizes))
    step = _chunk(geometry, m, tiles, limit)
    for n0 in range(0, batch, step):
        n1 = min(batch, n0 + step)
        chunk = n1 - n0
        count = chunk * math.prod(tiles)
        v = _transform_input(xp, x, n0, n1, m, tiles, pads, bt)
        product = scratch(xp, "winograd.m", (positions, groups, out_channels // groups, count), x.dtype)
        xp.matmul(u, v.reshape(positions, groups, channels // groups, count), out=product)
        y = _along_each_axis(xp, at, product, dims, ("winograd.y", "winograd.y2"))  # (*m, O * n * T)
        y = y.reshape((m,) * dims + (out_channels, chunk) + tiles)
        blocked = (chunk, out_channels) + tuple(v for t in tiles for v in (t, m))  # (n, O, t1, m, t2, m, ..)
        if exact:
            target = out[n0:n1].reshape(blocked)
        else:
            target = scratch(xp, "winograd.out", blocked, x.dtype)
        # One copy per output offset in its tile: twice as fast as one transposing copy of
        # everything (a chunk of the ResNet 16@32x32 layer; docs/convolution_algorithms.md).
        for offset in itertools.product(range(m), repeat=dims):
            index = (slice(None), slice(None)) + tuple(v for o in offset for v in (slice(None), o))
            source = y[offset].swapaxes(0, 1)  # (n, O, *tiles) view
            if bias is None:
                target[index] = source
            else:
                xp.add(source, bias.reshape((-1,) + (1,) * dims), out=target[index])
        if not exact:
            full = target.reshape((chunk, out_channels) + tuple(t * m for t in tiles))
            out[n0:n1] = full[(Ellipsis,) + tuple(slice(0, size) for size in out_sizes)]
    return out


def backward_weight(grad, x, geometry: ConvGeometry, m: int, limit: int):
    """Weight gradient (O, Cg, 3, ..) from ``grad`` (N, O, *O) and the unpadded input: G^T (sum dM V^T) G."""
    xp = get_array_module(grad, x)
    bt, g, at = _matrices(xp, m, x.dtype)
    dims = len(geometry.kernel)
    positions = (m + 2) ** dims
    batch, groups, out_channels = geometry.batch, geometry.groups, geometry.out_channels
    channels = geometry.in_channels
    tiles, pads = _tiles(geometry, m)
    grad_pads = tuple((0, t * m - size) for t, size in zip(tiles, geometry.out_sizes))
    total = None
    step = _chunk(geometry, m, tiles, limit)
    for n0 in range(0, batch, step):
        n1 = min(batch, n0 + step)
        chunk = n1 - n0
        count = chunk * math.prod(tiles)
        v = _transform_input(xp, x, n0, n1, m, tiles, pads, bt)  # (*alpha, C * n * T)
        padded = pad_into(xp, "winograd.padded_grad", grad[n0:n1], grad_pads)  # (n, O, *(tiles * m))
        blocked = padded.reshape((chunk, out_channels) + tuple(v for t in tiles for v in (t, m)))
        dy = scratch(xp, "winograd.dy", (m,) * dims + (out_channels, chunk) + tiles, x.dtype)
        order = tuple(3 + 2 * k for k in range(dims)) + (1, 0) + tuple(2 + 2 * k for k in range(dims))
        dy[...] = blocked.transpose(order)  # (*m, O, n, *tiles)
        dm = _along_each_axis(xp, at.T, dy, dims, ("winograd.dm", "winograd.dm2"))  # A along every axis
        dm = dm.reshape(positions, groups, out_channels // groups, count)
        vt = v.reshape(positions, groups, channels // groups, count).swapaxes(-1, -2)  # (alpha^d, G, T, Cg)
        product = xp.matmul(dm, vt)  # (alpha^d, G, Og, Cg)
        total = product if total is None else total.__iadd__(product)
    # dg[(y, x, ..)] = sum_(i, j, ..) G[i, y] G[j, x] .. dU[(i, j, ..)]
    dw = xp.matmul(_kron(xp, g, dims).T, total.reshape(positions, -1))  # (3^d, O*Cg)
    return xp.ascontiguousarray(dw.T).reshape(geometry.weight_shape)

