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
    """Rows of tiles per chunk: V and M of about ``CHUNK_BYTES``, but GEMMs at least ``MIN_TILES`` wide, and at
    least one chunk per thread."""
    rows, per_row = tiles(geometry)
    total_rows = geometry.batch * rows
    bytes_per_row = POSITIONS * (geometry.in_channels + geometry.out_channels) * per_row * geometry.itemsize
    chunk = max(1, CHUNK_BYTES // bytes_per_row, -(-MIN_TILES // per_row))
    return max(1, min(chunk, -(-total_rows // threads)))


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
# Each tile is transformed along its rows while it is gathered (scalar: the tiles overlap) and
# along its columns in a second pass over contiguous rows of length T (SIMD).
@runtime.jit()
def _padded_row(x, n, c, y, pad_left, row):
    """``row`` = the input row (n, c, y) with ``pad_left`` zeros before it and zeros after; all zeros when y is
    outside the input."""
    height, width = x.shape[2], x.shape[3]
    if y < 0 or y >= height:
        row[:] = 0
        return
    end = min(row.shape[0], pad_left + width)
    for j in range(pad_left):
        row[j] = 0
    for j in range(pad_left, end):
        row[j] = x[n, c, y, index(j - pad_left)]
    for j in range(end, row.shape[0]):
        row[j] = 0


@runtime.jit()
def _input_tiles(x, c, n_of, y_of, pad_top, pad_left, rows, per_row, row, e, v):
    """v[c, 6 i' + k, q] = (B^T d B)[i', k] for every input tile d of the chunk, channel c; e (6, 6, T), row scratch."""
    for r in range(rows):
        for i in range(ALPHA):
            _padded_row(x, n_of[r], c, y_of[r] + i - pad_top, pad_left, row)
            for tx in range(per_row):  # B along the tile's row i
                q = tx * rows + r
                b = tx * M
                d0 = row[b]
                d1 = row[b + 1]
                d2 = row[b + 2]
                d3 = row[b + 3]
                d4 = row[b + 4]
                d5 = row[b + 5]
                e[i, 0, q] = 4 * d0 - 5 * d2 + d4
                e[i, 1, q] = -4 * (d1 + d2) + d3 + d4
                e[i, 2, q] = 4 * (d1 - d2) - d3 + d4
                e[i, 3, q] = 2 * (d3 - d1) - d2 + d4
                e[i, 4, q] = 2 * (d1 - d3) - d2 + d4
                e[i, 5, q] = 4 * d1 - 5 * d3 + d5
    length = rows * per_row
    for k in range(ALPHA):  # B^T down the columns, all tiles at once
        for q in range(length):
            d0 = e[0, k, q]
            d1 = e[1, k, q]
            d2 = e[2, k, q]
            d3 = e[3, k, q]
            d4 = e[4, k, q]
            d5 = e[5, k, q]
            v[c, k, q] = 4 * d0 - 5 * d2 + d4
            v[c, 6 + k, q] = -4 * (d1 + d2) + d3 + d4
            v[c, 12 + k, q] = 4 * (d1 - d2) - d3 + d4
            v[c, 18 + k, q] = 2 * (d3 - d1) - d2 + d4
            v[c, 24 + k, q] = 2 * (d1 - d3) - d2 + d4
            v[c, 30 + k, q] = 4 * d1 - 5 * d3 + d5


@runtime.jit()
def _output_tiles(m, o, bias, relu, n_of, y_of, rows, per_row, s, out):
    """out[n, o, y + a, 4 tx + b] = (A^T M A)[a, b] (+ bias, ReLU) for every tile of the chunk, where inside."""
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
    height, width = out.shape[2], out.shape[3]
    shift = bias[o]
    zero = out.dtype.type(0)
    for r in range(rows):
        n = n_of[r]
        for a in range(M):
            y = y_of[r] + a
            if y >= height:
                break
            for tx in range(per_row):  # A along the tile's row a, into the output row
                q = tx * rows + r
                m0 = s[a, 0, q]
                m1 = s[a, 1, q]
                m2 = s[a, 2, q]
                m3 = s[a, 3, q]
                m4 = s[a, 4, q]
                m5 = s[a, 5, q]
                r0 = m0 + m1 + m2 + m3 + m4 + shift
                r1 = m1 - m2 + 2 * (m3 - m4) + shift
                r2 = m1 + m2 + 4 * (m3 + m4) + shift
                r3 = m1 - m2 + 8 * (m3 - m4) + m5 + shift
                if relu:
                    r0 = max(r0, zero)
                    r1 = max(r1, zero)
                    r2 = max(r2, zero)
                    r3 = max(r3, zero)
                x0 = tx * M
                if x0 + 3 < width:
                    out[n, o, y, x0] = r0
                    out[n, o, y, x0 + 1] = r1
                    out[n, o, y, x0 + 2] = r2
                    out[n, o, y, x0 + 3] = r3
                else:
                    out[n, o, y, x0] = r0
                    if x0 + 1 < width:
                        out[n, o, y, x0 + 1] = r1
                    if x0 + 2 < width:
                        out[n, o, y, x0 + 2] = r2


@runtime.jit()
def _gradient_tiles(grad, o, n_of, y_of, rows, per_row, h, dm):
    """dm[o, 6 i + j, q] = (A dY A^T)[i, j] for every 4x4 gradient tile dY of the chunk (zero past the output)."""
    height, width = grad.shape[2], grad.shape[3]
    zero = grad.dtype.type(0)
    for r in range(rows):
        n = n_of[r]
        for a in range(M):
            y = y_of[r] + a
            for tx in range(per_row):  # A along the tile's row a: 4 -> 6
                q = tx * rows + r
                x0 = tx * M
                g0 = grad[n, o, y, x0] if y < height else zero
                g1 = grad[n, o, y, x0 + 1] if y < height and x0 + 1 < width else zero
                g2 = grad[n, o, y, x0 + 2] if y < height and x0 + 2 < width else zero
                g3 = grad[n, o, y, x0 + 3] if y < height and x0 + 3 < width else zero
                h[a, 0, q] = g0
                h[a, 1, q] = g0 + g1 + g2 + g3
                h[a, 2, q] = g0 - g1 + g2 - g3
                h[a, 3, q] = g0 + 2 * g1 + 4 * g2 + 8 * g3
                h[a, 4, q] = g0 - 2 * g1 + 4 * g2 - 8 * g3
                h[a, 5, q] = g3
    length = rows * per_row
    for j in range(ALPHA):  # and down the columns, all tiles at once
        for q in range(length):
            y0 = h[0, j, q]
            y1 = h[1, j, q]
            y2 = h[2, j, q]
            y3 = h[3, j, q]
            dm[o, j, q] = y0
            dm[o, 6 + j, q] = y0 + y1 + y2 + y3
            dm[o, 12 + j, q] = y0 - y1 + y2 - y3
            dm[o, 18 + j, q] = y0 + 2 * y1 + 4 * y2 + 8 * y3
            dm[o, 24 + j, q] = y0 - 2 * y1 + 4 * y2 - 8 * y3
            dm[o, 30 + j, q] = y3


@runtime.jit()
def _chunk_rows_of(first, rows, tile_rows):
    """Sample and top output row of each of ``rows`` tile rows starting at global tile row ``first``."""
    n_of = np.empty(rows, np.int64)
    y_of = np.empty(rows, np.int64)
    for r in range(rows):
        n_of[r] = (first + r) // tile_rows
        y_of[r] = ((first + r) % tile_rows) * M
    return n_of, y_of


@runtime.jit()
def _input_transform_chunk(x, first, rows, tile_rows, per_row, pad_top, pad_left):
    """The chunk's V (C, 36, T), and its rows' samples and output rows."""
    channels = x.shape[1]
    length = rows * per_row
    n_of, y_of = _chunk_rows_of(first, rows, tile_rows)
    row = np.empty(per_row * M + 2, x.dtype)
    e = np.empty((ALPHA, ALPHA, length), x.dtype)
    v = np.empty((channels, POSITIONS, length), x.dtype)
    for c in range(channels):
        _input_tiles(x, c, n_of, y_of, pad_top, pad_left, rows, per_row, row, e, v)
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
        rows = min(chunk, total - first)
        length = rows * per_row
        v, n_of, y_of = _input_transform_chunk(x, first, rows, tile_rows, per_row, pad_top, pad_left)
        m = np.empty((out_channels, POSITIONS, length), x.dtype)
        for p in range(POSITIONS):  # M[:, p] = U[p] @ V[:, p], group by group; rows 36 T apart
            for g in range(groups):
                runtime.gemm(gemm, False, False, og, length, cg, one, u, (p * groups + g) * og * cg, cg,
                             v, (g * cg * POSITIONS + p) * length, POSITIONS * length, zero,
                             m, (g * og * POSITIONS + p) * length, POSITIONS * length)
        s = np.empty((M, ALPHA, length), x.dtype)
        for o in range(out_channels):
            _output_tiles(m, o, bias, relu, n_of, y_of, rows, per_row, s, out)
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
        for chunk_index in range(worker, chunks, workers):
            first = chunk_index * chunk
            rows = min(chunk, total - first)
            length = rows * per_row
            v, n_of, y_of = _input_transform_chunk(x, first, rows, tile_rows, per_row, pad_top, pad_left)
            h = np.empty((M, ALPHA, length), x.dtype)
            dm = np.empty((out_channels, POSITIONS, length), x.dtype)
            for o in range(out_channels):
                _gradient_tiles(grad, o, n_of, y_of, rows, per_row, h, dm)
            for p in range(POSITIONS):  # dU[p, g] += dM[:, p] @ V[:, p]^T
                for g in range(groups):
                    runtime.gemm(gemm, False, True, og, cg, length, one,
                                 dm, (g * og * POSITIONS + p) * length, POSITIONS * length,
                                 v, (g * cg * POSITIONS + p) * length, POSITIONS * length, one,
                                 du, ((worker * POSITIONS + p) * groups + g) * og * cg, cg)
        runtime.restore_blas_threads(local_threads, previous)


def forward(x, weight, bias, geometry: ConvGeometry, relu: bool = False):
    """Cross-correlate ``x`` (N, C, H, W) with a 3x3 ``weight`` (O, Cg, 3, 3), stride 1, plus ``bias``: (N, O, *O)."""
    x = np.ascontiguousarray(x)
    u = transform_weight(weight, geometry.groups)
    out = np.empty((geometry.batch, geometry.out_channels) + geometry.out_sizes, dtype=x.dtype)
    bias = np.zeros(geometry.out_channels, x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    rows, per_row = tiles(geometry)
    (top, _), (left, _) = geometry.pads
    with runtime.launch():
        chunk = chunk_rows(geometry, get_num_threads())
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
        du = np.zeros((workers, POSITIONS, groups, og, cg), dtype=x.dtype)
        chunk = chunk_rows(geometry, workers)
        _backward_weight(grad, x, du, top, left, rows, per_row, chunk, runtime.gemm_address(geometry.dtype),
                         runtime.local_threads_address())
    return weight_gradient(du.sum(axis=0), geometry.weight_shape, x.dtype)


def usable() -> bool:
    """Whether the GEMM these kernels call from their threads was found (NumPy's OpenBLAS, 64-bit integers)."""
    return runtime.gemm_address("float32") != 0 and runtime.gemm_address("float64") != 0

