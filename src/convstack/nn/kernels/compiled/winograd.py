"""Winograd F(4x4, 3x3) for 2-D 3x3 stride-1 layers, compiled: each thread runs a chunk from input to output in cache.

The arithmetic is the reference's (``reference/winograd.py``, Lavin & Gray 2016):

    V = B^T d B   (36, C, T)     per 6x6 input tile, per channel
    M = U @ V     (36, O, T)     36 GEMMs per group over channels, U = G g G^T
    Y = A^T M A   (4x4 tiles)    plus bias (and ReLU when asked), written to (N, O, H, W)

The reference runs each step over the whole batch in NumPy: every step is a pass through
memory, and NumPy's passes use one core. Here the batch is cut into chunks of tile rows
(about ``CHUNK_BYTES`` of V and M, inside a core's L2 cache), and each thread takes whole
chunks: it gathers the chunk's tiles, transforms them, multiplies them with OpenBLAS's GEMM
called from the thread itself (``runtime.gemm``, one thread per call) and transforms the
products straight into the output, so V and M never leave its cache.

Vectorisation: within a chunk the tiles are numbered column-major, ``t = tx * R + r`` (R the
chunk's rows of tiles, r the row, tx the tile within the row), so every transform step is a
linear combination of contiguous rows of length R (or T) that the compiler turns into SIMD;
only the gather of the (overlapping) input tiles and the scatter of the output are scalar.

The same forward computes the input gradient (a stride-1 correlation of the gradient with
the flipped kernel, see ``reference/algorithms.correlation``). The weight gradient reads the
identity backwards: dM = A dY A^T per 4x4 gradient tile, dU = sum over tiles of dM @ V^T
(each thread accumulates its own dU), dg = G^T dU G.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import get_num_threads, prange

from convstack.nn.kernels.compiled import runtime
from convstack.nn.kernels.compiled.runtime import index
from convstack.nn.kernels.geometry import ConvGeometry
from convstack.nn.kernels.reference.winograd import MATRICES

M, ALPHA, POSITIONS = 4, 6, 36
# Bytes of one chunk's V and M together: inside the 1-2 MiB L2 cache of a core.
CHUNK_BYTES = 512 * 2**10
# Tiles a chunk's GEMMs span at least (their n): thinner products run far below OpenBLAS's speed.
MIN_TILES = 64


def applies(geometry: ConvGeometry) -> bool:
    """2-D, 3x3, stride 1, dilation 1, float32 or float64 (any padding, any groups)."""
    return (len(geometry.kernel) == 2 and geometry.kernel == (3, 3) and geometry.unit_stride
            and geometry.unit_dilation and geometry.dtype in ("float32", "float64"))


def tiles(geometry: ConvGeometry) -> tuple:
    """(tile rows, tiles per row) of the output."""
    return tuple(-(-size // M) for size in geometry.out_sizes)


def chunk_rows(geometry: ConvGeometry, threads: int) -> int:
    """Rows of tiles per chunk, a multiple of ``BLOCK``: V and M of about ``CHUNK_BYTES``, but GEMMs at least
    ``MIN_TILES`` wide, and one chunk per thread at least."""
    rows, per_row = tiles(geometry)
    total_rows = geometry.batch * rows
    bytes_per_row = POSITIONS * (geometry.in_channels + geometry.out_channels) * per_row * geometry.itemsize
    chunk = max(1, CHUNK_BYTES // bytes_per_row, -(-MIN_TILES // per_row))
    chunk = max(1, min(chunk, -(-total_rows // threads)))
    return -(-chunk // BLOCK) * BLOCK


@functools.lru_cache(maxsize=4)
def _kron_g(dtype):
    """G (x) G: (36, 9), so that U = (G (x) G) @ g for every kernel g flattened to 9 numbers."""
    g = np.asarray(MATRICES[M][1], dtype=np.float64)
    return np.kron(g, g).astype(dtype)


def transform_weight(weight, groups):
    """U = G g G^T for every (out, in) channel pair: (36, G, Og, Cg), contiguous, in the weight's dtype."""
    out_channels, cg = weight.shape[:2]
    u = _kron_g(weight.dtype) @ weight.reshape(out_channels * cg, 9).T  # (36, O * Cg)
    return u.reshape(POSITIONS, groups, out_channels // groups, cg)


def weight_gradient(du, weight_shape, dtype):
    """dg = G^T dU G from dU (36, G, Og, Cg): (O, Cg, 3, 3)."""
    dw = _kron_g(du.dtype).T @ du.reshape(POSITIONS, -1)  # (9, O * Cg)
    return np.ascontiguousarray(dw.T, dtype=dtype).reshape(weight_shape)


# ----------------------------------------------------------------------------- the transforms
# A tile's transform runs in two passes: one along the input's rows (SIMD along a row, its
# results stored transposed, (6, W, rows), rows last) and one across tiles, whose innermost
# loop runs over BLOCK consecutive tile rows: a trip count the compiler sees, so that the
# loop becomes whole SIMD vectors (a loop whose count it does not know, and which is short,
# ran scalar: 3x slower). Chunks hold a multiple of BLOCK tile rows; the last is padded with
# rows of zeros (``n_of`` -1) whose results are dropped.
BLOCK = 16


@runtime.jit()
def _input_rows(x, n, c, top, zero_row):
    """The six input rows from ``top`` of sample n, channel c (``zero_row`` where outside, or for a padding row)."""
    height = x.shape[2]
    r0 = x[n, c, index(top)] if n >= 0 and 0 <= top < height else zero_row
    r1 = x[n, c, index(top + 1)] if n >= 0 and 0 <= top + 1 < height else zero_row
    r2 = x[n, c, index(top + 2)] if n >= 0 and 0 <= top + 2 < height else zero_row
    r3 = x[n, c, index(top + 3)] if n >= 0 and 0 <= top + 3 < height else zero_row
    r4 = x[n, c, index(top + 4)] if n >= 0 and 0 <= top + 4 < height else zero_row
    r5 = x[n, c, index(top + 5)] if n >= 0 and 0 <= top + 5 < height else zero_row
    return r0, r1, r2, r3, r4, r5


@runtime.jit()
def _input_tiles(x, c, n_of, y_of, pad_top, pad_left, rows, per_row, zero_row, t, v):
    """v[c, 6 i + k, tx rows + r] = (B^T d B)[i, k] for every input tile d of the chunk, channel c.

    t (6, W', rows): B^T applied down the columns, per input column; its columns outside the
    input stay zero (the caller zeroes them once).
    """
    cols = min(x.shape[3], t.shape[1] - pad_left)
    for r in range(rows):
        r0, r1, r2, r3, r4, r5 = _input_rows(x, n_of[r], c, y_of[r] - pad_top, zero_row)
        ur = index(r)
        for j in range(cols):  # B^T down the tile's columns, along the row
            d0 = r0[j]
            d1 = r1[j]
            d2 = r2[j]
            d3 = r3[j]
            d4 = r4[j]
            d5 = r5[j]
            w = index(j + pad_left)
            t[0, w, ur] = 4 * d0 - 5 * d2 + d4
            t[1, w, ur] = -4 * (d1 + d2) + d3 + d4
            t[2, w, ur] = 4 * (d1 - d2) - d3 + d4
            t[3, w, ur] = 2 * (d3 - d1) - d2 + d4
            t[4, w, ur] = 2 * (d1 - d3) - d2 + d4
            t[5, w, ur] = 4 * d1 - 5 * d3 + d5
    for i in range(ALPHA):  # B along the tile's rows, BLOCK tiles at a time
        row = index(i * ALPHA)
        for tx in range(per_row):
            b = index(tx * M)
            base = index(tx * rows)
            for r0 in range(0, rows, BLOCK):
                for rr in range(BLOCK):
                    r = index(r0 + rr)
                    d0 = t[i, b, r]
                    d1 = t[i, b + 1, r]
                    d2 = t[i, b + 2, r]
                    d3 = t[i, b + 3, r]
                    d4 = t[i, b + 4, r]
                    d5 = t[i, b + 5, r]
                    q = base + r
                    v[c, row, q] = 4 * d0 - 5 * d2 + d4
                    v[c, row + 1, q] = -4 * (d1 + d2) + d3 + d4
                    v[c, row + 2, q] = 4 * (d1 - d2) - d3 + d4
                    v[c, row + 3, q] = 2 * (d3 - d1) - d2 + d4
                    v[c, row + 4, q] = 2 * (d1 - d3) - d2 + d4
                    v[c, row + 5, q] = 4 * d1 - 5 * d3 + d5


@runtime.jit()
def _output_tiles(m, o, bias, relu, n_of, y_of, rows, per_row, s, ot, out):
    """out[n, o, y + a, 4 tx + b] = (A^T M A)[a, b] (+ bias, ReLU) for every tile of the chunk, where inside.

    s (4, 6, T): A^T down the columns; ot (4, 4 tiles, rows): the output rows, transposed.
    """
    length = rows * per_row
    for k in range(ALPHA):  # A^T down the columns, all tiles at once
        for q in range(length):
            m0 = m[o, k, q]
            m1 = m[o, 6 + k, q]
            m2 = m[o, 12 + k, q]
            m3 = m[o, 18 + k, q]
            m4 = m[o, 24 + k, q]
            m5 = m[o, 30 + k, q]
            s[0, k, q] = m0 + m1 + m2 + m3 + m4
            s[1, k, q] = m1 - m2 + 2 * (m3 - m4)
            s[2, k, q] = m1 + m2 + 4 * (m3 + m4)
            s[3, k, q] = m1 - m2 + 8 * (m3 - m4) + m5
    shift = bias[o]
    zero = out.dtype.type(0)
    for a in range(M):  # A along the rows, BLOCK tiles at a time, plus bias (and ReLU)
        for tx in range(per_row):
            base = index(tx * rows)
            x0 = index(tx * M)
            for r0 in range(0, rows, BLOCK):
                for rr in range(BLOCK):
                    r = index(r0 + rr)
                    q = base + r
                    m0 = s[a, 0, q]
                    m1 = s[a, 1, q]
                    m2 = s[a, 2, q]
                    m3 = s[a, 3, q]
                    m4 = s[a, 4, q]
                    m5 = s[a, 5, q]
                    y0 = m0 + m1 + m2 + m3 + m4 + shift
                    y1 = m1 - m2 + 2 * (m3 - m4) + shift
                    y2 = m1 + m2 + 4 * (m3 + m4) + shift
                    y3 = m1 - m2 + 8 * (m3 - m4) + m5 + shift
                    if relu:
                        y0 = max(y0, zero)
                        y1 = max(y1, zero)
                        y2 = max(y2, zero)
                        y3 = max(y3, zero)
                    ot[a, x0, r] = y0
                    ot[a, x0 + 1, r] = y1
                    ot[a, x0 + 2, r] = y2
                    ot[a, x0 + 3, r] = y3
    height, width = out.shape[2], out.shape[3]
    for r in range(rows):  # the rows into the output
        n = n_of[r]
        if n < 0:
            continue
        for a in range(M):
            y = y_of[r] + a
            if y >= height:
                break
            for col in range(width):
                out[n, o, index(y), col] = ot[a, col, r]


@runtime.jit()
def _gradient_tiles(grad, o, n_of, y_of, rows, per_row, zero_row, g, dm):
    """dm[o, 6 i + j, tx rows + r] = (A dY A^T)[i, j] for every 4x4 gradient tile dY of the chunk (zero past it).

    g (6, 4 tiles, rows): A applied down the columns, per output column; its columns past the
    output stay zero (the caller zeroes them once).
    """
    height, width = grad.shape[2], grad.shape[3]
    for r in range(rows):
        n = n_of[r]
        top = y_of[r]
        g0 = grad[n, o, index(top)] if n >= 0 and top < height else zero_row
        g1 = grad[n, o, index(top + 1)] if n >= 0 and top + 1 < height else zero_row
        g2 = grad[n, o, index(top + 2)] if n >= 0 and top + 2 < height else zero_row
        g3 = grad[n, o, index(top + 3)] if n >= 0 and top + 3 < height else zero_row
        ur = index(r)
        for col in range(width):  # A down the tile's columns: 4 -> 6
            y0 = g0[col]
            y1 = g1[col]
            y2 = g2[col]
            y3 = g3[col]
            g[0, col, ur] = y0
            g[1, col, ur] = y0 + y1 + y2 + y3
            g[2, col, ur] = y0 - y1 + y2 - y3
            g[3, col, ur] = y0 + 2 * y1 + 4 * y2 + 8 * y3
            g[4, col, ur] = y0 - 2 * y1 + 4 * y2 - 8 * y3
            g[5, col, ur] = y3
    for i in range(ALPHA):  # and along the rows, BLOCK tiles at a time
        row = index(i * ALPHA)
        for tx in range(per_row):
            b = index(tx * M)
            base = index(tx * rows)
            for r0 in range(0, rows, BLOCK):
                for rr in range(BLOCK):
                    r = index(r0 + rr)
                    y0 = g[i, b, r]
                    y1 = g[i, b + 1, r]
                    y2 = g[i, b + 2, r]
                    y3 = g[i, b + 3, r]
                    q = base + r
                    dm[o, row, q] = y0
                    dm[o, row + 1, q] = y0 + y1 + y2 + y3
                    dm[o, row + 2, q] = y0 - y1 + y2 - y3
                    dm[o, row + 3, q] = y0 + 2 * y1 + 4 * y2 + 8 * y3
                    dm[o, row + 4, q] = y0 - 2 * y1 + 4 * y2 - 8 * y3
                    dm[o, row + 5, q] = y3


@runtime.jit()
def _chunk_rows_of(first, rows, total, tile_rows):
    """Sample and top output row of each of ``rows`` tile rows from global tile row ``first``; -1 past ``total``."""
    n_of = np.empty(rows, np.int64)
    y_of = np.zeros(rows, np.int64)
    for r in range(rows):
        if first + r < total:
            n_of[r] = (first + r) // tile_rows
            y_of[r] = ((first + r) % tile_rows) * M
        else:
            n_of[r] = -1
    return n_of, y_of


@runtime.jit()
def _input_transform_chunk(x, first, rows, total, tile_rows, per_row, pad_top, pad_left):
    """The chunk's V (C, 36, T), and its rows' samples and output rows."""
    channels = x.shape[1]
    length = rows * per_row
    n_of, y_of = _chunk_rows_of(first, rows, total, tile_rows)
    zero_row = np.zeros(x.shape[3], x.dtype)
    t = np.zeros((ALPHA, per_row * M + 2, rows), x.dtype)
    v = np.empty((channels, POSITIONS, length), x.dtype)
    for c in range(channels):
        _input_tiles(x, c, n_of, y_of, pad_top, pad_left, rows, per_row, zero_row, t, v)
    return v, n_of, y_of


# ----------------------------------------------------------------------------- the passes
@runtime.jit(parallel=True)
def _forward(x, u, bias, relu, out, pad_top, pad_left, tile_rows, per_row, chunk, gemm, local_threads):
    """out (N, O, OH, OW) = x (N, C, H, W) correlated with the 3x3 kernel whose transform is u (36, G, Og, Cg)."""
    groups, og, cg = u.shape[1], u.shape[2], u.shape[3]
    out_channels = groups * og
    total = x.shape[0] * tile_rows
    chunks = (total + chunk - 1) // chunk
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    for chunk_index in prange(chunks):
        previous = runtime.single_threaded_blas(local_threads)
        first = chunk_index * chunk
        length = chunk * per_row
        v, n_of, y_of = _input_transform_chunk(x, first, chunk, total, tile_rows, per_row, pad_top, pad_left)
        m = np.empty((out_channels, POSITIONS, length), x.dtype)
        for p in range(POSITIONS):  # M[:, p] = U[p] @ V[:, p], group by group; rows 36 T apart
            for g in range(groups):
                runtime.gemm(gemm, False, False, og, length, cg, one, u, (p * groups + g) * og * cg, cg,
                             v, (g * cg * POSITIONS + p) * length, POSITIONS * length, zero,
                             m, (g * og * POSITIONS + p) * length, POSITIONS * length)
        s = np.empty((M, ALPHA, length), x.dtype)
        ot = np.empty((M, per_row * M, chunk), x.dtype)
        for o in range(out_channels):
            _output_tiles(m, o, bias, relu, n_of, y_of, chunk, per_row, s, ot, out)
        runtime.restore_blas_threads(local_threads, previous)


@runtime.jit(parallel=True)
def _backward_weight(grad, x, du, pad_top, pad_left, tile_rows, per_row, chunk, gemm, local_threads):
    """du (threads, 36, G, Og, Cg): each thread's sum over its chunks of dM @ V^T."""
    out_channels = grad.shape[1]
    groups, og, cg = du.shape[2], du.shape[3], du.shape[4]
    total = x.shape[0] * tile_rows
    chunks = (total + chunk - 1) // chunk
    workers = du.shape[0]
    one = x.dtype.type(1)
    for worker in prange(workers):
        previous = runtime.single_threaded_blas(local_threads)
        length = chunk * per_row
        zero_row = np.zeros(grad.shape[3], x.dtype)
        g = np.zeros((ALPHA, per_row * M, chunk), x.dtype)
        dm = np.empty((out_channels, POSITIONS, length), x.dtype)
        for chunk_index in range(worker, chunks, workers):
            first = chunk_index * chunk
            v, n_of, y_of = _input_transform_chunk(x, first, chunk, total, tile_rows, per_row, pad_top, pad_left)
            for o in range(out_channels):
                _gradient_tiles(grad, o, n_of, y_of, chunk, per_row, zero_row, g, dm)
            for p in range(POSITIONS):  # dU[p, g] += dM[:, p] @ V[:, p]^T
                for gi in range(groups):
                    runtime.gemm(gemm, False, True, og, cg, length, one,
                                 dm, (gi * og * POSITIONS + p) * length, POSITIONS * length,
                                 v, (gi * cg * POSITIONS + p) * length, POSITIONS * length, one,
                                 du, ((worker * POSITIONS + p) * groups + gi) * og * cg, cg)
        runtime.restore_blas_threads(local_threads, previous)


# Few tiles and many channels (VGG's 512@7x7 at batch 8: 32 tiles in all) leave fewer chunks
# than threads; there the threads split the channels in the transforms and the 36 positions
# in the GEMMs instead, the whole batch one chunk.
@runtime.jit(parallel=True)
def _forward_wide(x, u, bias, relu, out, pad_top, pad_left, tile_rows, per_row, gemm, local_threads):
    """``_forward`` with every tile in one chunk and the work split by channel and by position."""
    channels = x.shape[1]
    groups, og, cg = u.shape[1], u.shape[2], u.shape[3]
    out_channels = groups * og
    total = x.shape[0] * tile_rows
    rows = (total + BLOCK - 1) // BLOCK * BLOCK
    length = rows * per_row
    n_of, y_of = _chunk_rows_of(0, rows, total, tile_rows)
    v = np.empty((channels, POSITIONS, length), x.dtype)
    for c in prange(channels):
        t = np.zeros((ALPHA, per_row * M + 2, rows), x.dtype)
        zero_row = np.zeros(x.shape[3], x.dtype)
        _input_tiles(x, c, n_of, y_of, pad_top, pad_left, rows, per_row, zero_row, t, v)
    m = np.empty((out_channels, POSITIONS, length), x.dtype)
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    for p in prange(POSITIONS):
        previous = runtime.single_threaded_blas(local_threads)
        for g in range(groups):
            runtime.gemm(gemm, False, False, og, length, cg, one, u, (p * groups + g) * og * cg, cg,
                         v, (g * cg * POSITIONS + p) * length, POSITIONS * length, zero,
                         m, (g * og * POSITIONS + p) * length, POSITIONS * length)
        runtime.restore_blas_threads(local_threads, previous)
    for o in prange(out_channels):
        s = np.empty((M, ALPHA, length), x.dtype)
        ot = np.empty((M, per_row * M, rows), x.dtype)
        _output_tiles(m, o, bias, relu, n_of, y_of, rows, per_row, s, ot, out)


@runtime.jit(parallel=True)
def _backward_weight_wide(grad, x, du, pad_top, pad_left, tile_rows, per_row, gemm, local_threads):
    """``_backward_weight`` with every tile in one chunk: du (36, G, Og, Cg) = dM @ V^T, split by position."""
    channels, out_channels = x.shape[1], grad.shape[1]
    groups, og, cg = du.shape[1], du.shape[2], du.shape[3]
    total = x.shape[0] * tile_rows
    rows = (total + BLOCK - 1) // BLOCK * BLOCK
    length = rows * per_row
    n_of, y_of = _chunk_rows_of(0, rows, total, tile_rows)
    v = np.empty((channels, POSITIONS, length), x.dtype)
    for c in prange(channels):
        t = np.zeros((ALPHA, per_row * M + 2, rows), x.dtype)
        zero_row = np.zeros(x.shape[3], x.dtype)
        _input_tiles(x, c, n_of, y_of, pad_top, pad_left, rows, per_row, zero_row, t, v)
    dm = np.empty((out_channels, POSITIONS, length), x.dtype)
    for o in prange(out_channels):
        g = np.zeros((ALPHA, per_row * M, rows), x.dtype)
        zero_row = np.zeros(grad.shape[3], x.dtype)
        _gradient_tiles(grad, o, n_of, y_of, rows, per_row, zero_row, g, dm)
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    for p in prange(POSITIONS):
        previous = runtime.single_threaded_blas(local_threads)
        for gi in range(groups):
            runtime.gemm(gemm, False, True, og, cg, length, one,
                         dm, (gi * og * POSITIONS + p) * length, POSITIONS * length,
                         v, (gi * cg * POSITIONS + p) * length, POSITIONS * length, zero,
                         du, (p * groups + gi) * og * cg, cg)
        runtime.restore_blas_threads(local_threads, previous)


def _wide(geometry: ConvGeometry, chunk: int, threads: int) -> bool:
    """Whether there are fewer chunks than twice the threads (and more than one thread to share them)."""
    rows, _ = tiles(geometry)
    return threads > 1 and -(-geometry.batch * rows // chunk) < 2 * threads


def forward(x, weight, bias, geometry: ConvGeometry, relu: bool = False):
    """Cross-correlate ``x`` (N, C, H, W) with a 3x3 ``weight`` (O, Cg, 3, 3), stride 1, plus ``bias``: (N, O, *O)."""
    x = np.ascontiguousarray(x)
    u = transform_weight(weight, geometry.groups)
    out = np.empty((geometry.batch, geometry.out_channels) + geometry.out_sizes, dtype=x.dtype)
    bias = np.zeros(geometry.out_channels, x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    rows, per_row = tiles(geometry)
    (top, _), (left, _) = geometry.pads
    with runtime.launch():
        threads = get_num_threads()
        chunk = chunk_rows(geometry, threads)
        if _wide(geometry, chunk, threads):
            _forward_wide(x, u, bias, relu, out, top, left, rows, per_row, runtime.gemm_address(geometry.dtype),
                          runtime.local_threads_address())
        else:
            _forward(x, u, bias, relu, out, top, left, rows, per_row, chunk, runtime.gemm_address(geometry.dtype),
                     runtime.local_threads_address())
    return out


def backward_weight(grad, x, geometry: ConvGeometry):
    """Weight gradient (O, Cg, 3, 3) from ``grad`` (N, O, OH, OW) and the unpadded input ``x`` (N, C, H, W)."""
    x, grad = np.ascontiguousarray(x), np.ascontiguousarray(grad)
    groups = geometry.groups
    og, cg = geometry.out_channels // groups, geometry.weight_shape[1]
    rows, per_row = tiles(geometry)
    (top, _), (left, _) = geometry.pads
    with runtime.launch():
        workers = get_num_threads()
        chunk = chunk_rows(geometry, workers)
        if _wide(geometry, chunk, workers):
            du = np.empty((POSITIONS, groups, og, cg), dtype=x.dtype)
            _backward_weight_wide(grad, x, du, top, left, rows, per_row, runtime.gemm_address(geometry.dtype),
                                  runtime.local_threads_address())
            return weight_gradient(du, geometry.weight_shape, x.dtype)
        du = np.zeros((workers, POSITIONS, groups, og, cg), dtype=x.dtype)
        _backward_weight(grad, x, du, top, left, rows, per_row, chunk, runtime.gemm_address(geometry.dtype),
                         runtime.local_threads_address())
    return weight_gradient(du.sum(axis=0), geometry.weight_shape, x.dtype)


def usable() -> bool:
    """Whether the GEMM these kernels call from their threads was found (NumPy's OpenBLAS, 64-bit integers)."""
    return runtime.gemm_address("float32") != 0 and runtime.gemm_address("float64") != 0

