"""Winograd convolution F(m x m, 3 x 3) for 2-D 3x3 stride-1 layers (Lavin & Gray 2016).

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

The transforms are small matrix products applied along one tile axis at a time,
each a single BLAS call over a whole chunk; the tiles are gathered from a strided view
of the padded input. The batch is processed in chunks whose transformed tiles fit in
the cache (see ``workspace``), through reused buffers.

The same forward serves the input gradient (a stride-1 3x3 convolution of the gradient
with the flipped kernel, channels swapped, padding 2 - padding; see ``chunked``). The
weight gradient follows from the same identity read backwards: with dM = A dY A^T,
dU = sum over tiles of dM @ V^T and dg = G^T dU G.

Matrices: F(2, 3) on the points 0, 1, -1, inf; F(4, 3) on 0, 1, -1, 2, -2, inf (Lavin &
Gray's Eq. 7 and 8). F(4, 3) multiplies by up to 8 and divides by up to 24: in float32 its
error is about 10 times F(2, 3)'s, still near 1e-5 of the output's scale (tests hold it to 1e-4).
"""

from __future__ import annotations

from convstack.backend import as_strided, get_array_module
from convstack.nn.kernels.chunked import pad_into
from convstack.nn.kernels.geometry import ConvGeometry
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

# Bytes of transformed input tiles per chunk: inside the 2 MiB L2 cache (measured, ResNet
# and VGG layers: chunks of 0.5-2 MiB ran 1.5-2x faster than the whole batch at once).
CHUNK_BYTES = 1 * 2**20


def applies(geometry: ConvGeometry) -> bool:
    """2-D, 3x3, stride 1, dilation 1 (any padding, any groups)."""
    return (
        len(geometry.kernel) == 2 and geometry.kernel == (3, 3) and geometry.unit_stride and geometry.unit_dilation
    )


def _matrices(xp, m, dtype):
    bt, g, at = MATRICES[m]
    return tuple(xp.asarray(matrix, dtype=dtype) for matrix in (bt, g, at))


def _kron(xp, left, right):
    """Kronecker product of two small matrices: (a, b) x (c, d) -> (a*c, b*d)."""
    return (left[:, None, :, None] * right[None, :, None, :]).reshape(left.shape[0] * right.shape[0], -1)


def transform_weight(weight, m, groups):
    """U = G g G^T for every (out, in) channel pair: (O, Cg, 3, 3) -> (alpha^2, G, Og, Cg), one GEMM."""
    xp = get_array_module(weight)
    _, g, _ = _matrices(xp, m, weight.dtype)
    out_channels, cg = weight.shape[:2]
    alpha = m + 2
    # U[(i, j)] = sum_(y, x) G[i, y] G[j, x] g[y, x]: the (alpha^2, 9) Kronecker matrix times g^T.
    u = xp.matmul(_kron(xp, g, g), weight.reshape(out_channels * cg, 9).T)  # (alpha^2, O*Cg)
    return u.reshape(alpha * alpha, groups, out_channels // groups, cg)


def _tiles(geometry: ConvGeometry, m):
    """Tile counts (th, tw) and the padding that makes the padded input (th*m + 2, tw*m + 2)."""
    out_h, out_w = geometry.out_sizes
    th, tw = -(-out_h // m), -(-out_w // m)
    (top, _), (left, _) = geometry.pads
    height, width = geometry.input_shape[2:]
    pads = ((top, th * m + 2 - height - top), (left, tw * m + 2 - width - left))
    return th, tw, pads


def _chunk(geometry: ConvGeometry, m, th, tw, limit):
    """Samples per chunk: transformed tiles of about ``CHUNK_BYTES``, but at least twice the transformed weights.

    Every chunk's GEMMs read all of U (alpha^2 * O * Cg numbers); with many channels and few
    tiles (VGG's 256 and 512 channels at 14x14 and 7x7) one-sample chunks would read U once
    per sample and run GEMMs only a few tiles wide (measured: F(4, 3) on 256@14x14, batch 8,
    14.5 ms in chunks of one sample, against F(2, 3)'s 11.9 ms and im2col's 17.5 ms).
    """
    alpha = m + 2
    per_sample = alpha * alpha * geometry.in_channels * th * tw * geometry.itemsize
    weights = alpha * alpha * geometry.out_channels * geometry.weight_shape[1] * geometry.itemsize
    context = f"input shape {geometry.input_shape}, weight shape {geometry.weight_shape}"
    target = min(limit, max(CHUNK_BYTES, 2 * weights))
    return batch_chunk(geometry.batch, per_sample, target, "conv2d: the Winograd tile buffer", context)


def _transform_input(xp, x, n0, n1, m, th, tw, pads, bt):
    """V = B^T d B for every tile of samples n0:n1: (alpha, alpha, C, n*th*tw) in scratch."""
    alpha = m + 2
    chunk = n1 - n0
    channels = x.shape[1]
    padded = pad_into(xp, "winograd.padded", x[n0:n1], pads)  # (n, C, th*m + 2, tw*m + 2)
    s = padded.strides
    tiles = as_strided(padded, (chunk, channels, th, tw, alpha, alpha), (s[0], s[1], m * s[2], m * s[3], s[2], s[3]))
    d = scratch(xp, "winograd.d", (alpha, alpha, channels, chunk, th, tw), x.dtype)
    xp.copyto(d, tiles.transpose(4, 5, 1, 0, 2, 3))  # (alpha, alpha, C, n, th, tw)
    rows = scratch(xp, "winograd.rows", (alpha, alpha * channels * chunk * th * tw), x.dtype)
    xp.matmul(bt, d.reshape(alpha, -1), out=rows)  # B^T along the tiles' first axis
    v = scratch(xp, "winograd.v", (alpha, alpha, channels * chunk * th * tw), x.dtype)
    xp.matmul(bt, rows.reshape(alpha, alpha, -1), out=v)  # and along the second
    return v


def forward(x, weight, bias, geometry: ConvGeometry, m: int, limit: int):
    """Cross-correlate ``x`` (N, C, H, W) with a 3x3 ``weight`` (O, Cg, 3, 3), stride 1: (N, O, Ho, Wo)."""
    xp = get_array_module(x, weight)
    bt, _, at = _matrices(xp, m, x.dtype)
    alpha = m + 2
    batch, groups, out_channels = geometry.batch, geometry.groups, geometry.out_channels
    channels = geometry.in_channels
    out_h, out_w = geometry.out_sizes
    th, tw, pads = _tiles(geometry, m)
    u = transform_weight(weight, m, groups)  # (alpha^2, G, Og, Cg)
    out = xp.empty((batch, out_channels, out_h, out_w), dtype=x.dtype)
    exact = out_h == th * m and out_w == tw * m
    step = _chunk(geometry, m, th, tw, limit)
    for n0 in range(0, batch, step):
        n1 = min(batch, n0 + step)
        chunk = n1 - n0
        tiles = chunk * th * tw
        v = _transform_input(xp, x, n0, n1, m, th, tw, pads, bt)
        product = scratch(xp, "winograd.m", (alpha * alpha, groups, out_channels // groups, tiles), x.dtype)
        xp.matmul(u, v.reshape(alpha * alpha, groups, channels // groups, tiles), out=product)
        rows = scratch(xp, "winograd.rows", (m, alpha * out_channels * tiles), x.dtype)
        xp.matmul(at, product.reshape(alpha, -1), out=rows)  # A^T along the first axis
        y = scratch(xp, "winograd.y", (m, m, out_channels * tiles), x.dtype)
        xp.matmul(at, rows.reshape(m, alpha, -1), out=y)  # and along the second
        y = y.reshape(m, m, out_channels, chunk, th, tw)
        if exact:
            target = out[n0:n1].reshape(chunk, out_channels, th, m, tw, m)
        else:
            target = scratch(xp, "winograd.out", (chunk, out_channels, th, m, tw, m), x.dtype)
        # One copy per output offset (p, q) in its tile: twice as fast as one 6-D transposing copy
        # (measured, 0.13 against 0.26 ms for a chunk of the ResNet 16@32x32 layer).
        for p in range(m):
            for q in range(m):
                source = y[p, q].swapaxes(0, 1)  # (n, O, th, tw) view
                if bias is None:
                    target[:, :, :, p, :, q] = source
                else:
                    xp.add(source, bias.reshape(-1, 1, 1), out=target[:, :, :, p, :, q])
        if not exact:
            out[n0:n1] = target.reshape(chunk, out_channels, th * m, tw * m)[:, :, :out_h, :out_w]
    return out


def backward_weight(grad, x, geometry: ConvGeometry, m: int, limit: int):
    """Weight gradient (O, Cg, 3, 3) from ``grad`` (N, O, Ho, Wo) and the unpadded input: G^T (sum dM V^T) G."""
    xp = get_array_module(grad, x)
    bt, g, at = _matrices(xp, m, x.dtype)
    alpha = m + 2
    batch, groups, out_channels = geometry.batch, geometry.groups, geometry.out_channels
    channels = geometry.in_channels
    out_h, out_w = geometry.out_sizes
    th, tw, pads = _tiles(geometry, m)
    grad_pads = ((0, th * m - out_h), (0, tw * m - out_w))
    total = None
    step = _chunk(geometry, m, th, tw, limit)
    for n0 in range(0, batch, step):
        n1 = min(batch, n0 + step)
        chunk = n1 - n0
        tiles = chunk * th * tw
        v = _transform_input(xp, x, n0, n1, m, th, tw, pads, bt)  # (alpha, alpha, C, T)
        padded = pad_into(xp, "winograd.padded_grad", grad[n0:n1], grad_pads)  # (n, O, th*m, tw*m)
        dy = scratch(xp, "winograd.dy", (m, m, out_channels, chunk, th, tw), x.dtype)
        dy[...] = padded.reshape(chunk, out_channels, th, m, tw, m).transpose(3, 5, 1, 0, 2, 4)
        rows = scratch(xp, "winograd.grad_rows", (alpha, m * out_channels * tiles), x.dtype)
        xp.matmul(at.T, dy.reshape(m, -1), out=rows)  # A along the first axis
        dm = scratch(xp, "winograd.dm", (alpha, alpha, out_channels * tiles), x.dtype)
        xp.matmul(at.T, rows.reshape(alpha, m, -1), out=dm)  # and along the second
        dm = dm.reshape(alpha * alpha, groups, out_channels // groups, tiles)
        vt = v.reshape(alpha * alpha, groups, channels // groups, tiles).swapaxes(-1, -2)  # (alpha^2, G, T, Cg)
        product = xp.matmul(dm, vt)  # (alpha^2, G, Og, Cg)
        total = product if total is None else total.__iadd__(product)
    # dg[(y, x)] = sum_(i, j) G[i, y] G[j, x] dU[(i, j)]
    dw = xp.matmul(_kron(xp, g, g).T, total.reshape(alpha * alpha, -1))  # (9, O*Cg)
    return xp.ascontiguousarray(dw.T).reshape(geometry.weight_shape)


def multiplications(geometry: ConvGeometry, m: int) -> int:
    """Multiply-adds in the GEMMs: alpha^2 per tile and channel pair."""
    th, tw, _ = _tiles(geometry, m)
    return (m + 2) ** 2 * geometry.batch * th * tw * geometry.out_channels * geometry.weight_shape[1]
