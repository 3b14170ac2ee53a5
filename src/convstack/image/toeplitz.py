"""Filtering as one matrix product: the (doubly block) Toeplitz matrix of a kernel.

Correlation is linear in the image, so for a fixed kernel and image shape there is a
matrix ``M`` with ``correlate(x, kernel, mode).ravel() == M @ x.ravel()`` (row-major
ravel). Row ``o`` of ``M`` holds the kernel's weights at the columns of the pixels the
output ``o`` reads. With zero boundaries ``M[o, i]`` depends only on ``i - o`` along each
axis: for a 1-D signal ``M`` is Toeplitz (constant along its diagonals); for an image it
is block Toeplitz with Toeplitz blocks ("doubly block Toeplitz"): the block of output row
``r`` and input row ``s`` is the 1-D matrix of kernel row ``s - r + c``. This is the
lecture's view of a convolutional layer as a fully-connected layer whose weights are
shared and mostly zero. Other boundaries fold the weights that fall beyond the border
back onto the pixels that boundary copies there (still exact, no longer Toeplitz).
"""

from __future__ import annotations

import itertools
import math

import numpy

from convstack.image.filtering import BOUNDARIES, MODES, border_pads, extension_indices
from convstack.nn.functional._utils import invalid, shape_context

# A dense matrix larger than this many entries (1 GiB of float64) is refused: ask for sparse=True.
MAX_DENSE_ENTRIES = 1 << 27


def to_matrix(
    kernel,
    image_shape,
    mode: str = "valid",
    boundary: str = "zero",
    convolve: bool = False,
    sparse: bool = False,
):
    """The matrix ``M`` with ``correlate(x, kernel, mode, boundary).ravel() == M @ x.ravel()``.

    Args:
        kernel: a 1-D, 2-D or 3-D kernel (array-like).
        image_shape: the image's shape, one size per kernel axis (single channel).
        mode: ``'valid'``, ``'same'`` or ``'full'``, as in ``correlate``.
        boundary: as in ``correlate``; ``'zero'`` gives the Toeplitz structure.
        convolve: the matrix of ``convolve`` instead (the kernel flipped).
        sparse: return a ``scipy.sparse.csr_matrix`` (needs SciPy) instead of a dense array.

    Shape:
        ``(prod(out_shape), prod(image_shape))``, ``out_shape`` as ``correlate``'s result.

    Examples:
        >>> to_matrix([1.0, 2.0], (3,))
        array([[1., 2., 0.],
               [0., 1., 2.]])
    """
    weights = numpy.asarray(kernel, dtype=numpy.float64)
    context = shape_context(kernel=weights.shape)
    if weights.ndim not in (1, 2, 3) or min(weights.shape, default=0) < 1:
        raise invalid("to_matrix", "kernel", "a non-empty 1-D, 2-D or 3-D kernel", weights.shape)
    if (
        not isinstance(image_shape, (tuple, list))
        or len(image_shape) != weights.ndim
        or not all(isinstance(n, (int, numpy.integer)) and not isinstance(n, bool) and n >= 1 for n in image_shape)
    ):
        raise invalid(
            "to_matrix", "image_shape", f"{weights.ndim} positive sizes, one per kernel axis", image_shape, context
        )
    if mode not in MODES:
        raise invalid("to_matrix", "mode", "'same', 'full' or 'valid'", mode)
    if boundary not in BOUNDARIES:
        raise invalid("to_matrix", "boundary", "'zero', 'reflect', 'mirror', 'replicate' or 'wrap'", boundary)
    image_shape = tuple(int(n) for n in image_shape)
    if mode == "valid" and any(k > n for k, n in zip(weights.shape, image_shape)):
        raise invalid(
            "to_matrix",
            "kernel",
            "a kernel no larger than the image in mode 'valid'",
            weights.shape,
            f"image shape {image_shape}",
        )
    if convolve:
        weights = weights[(slice(None, None, -1),) * weights.ndim]
    pads = border_pads(weights.shape, mode, convolve)
    # Per axis, the source pixel (or -1 for a zero) of every cell of the extended axis.
    sources = [extension_indices(n, b, a, boundary) for n, (b, a) in zip(image_shape, pads)]
    out_shape = tuple(len(s) - k + 1 for s, k in zip(sources, weights.shape))
    rows_count, columns_count = math.prod(out_shape), math.prod(image_shape)

    rows = numpy.arange(rows_count)
    pieces = []  # (rows, columns, value) for each kernel tap: one weight on one shifted diagonal
    for tap in itertools.product(*(range(k) for k in weights.shape)):
        # the pixel read by every output through this tap, per axis, then combined row-major
        per_axis = [s[t : t + o] for s, t, o in zip(sources, tap, out_shape)]
        grids = numpy.meshgrid(*per_axis, indexing="ij")
        inside = numpy.logical_and.reduce([g >= 0 for g in grids]).ravel()
        columns = numpy.ravel_multi_index([numpy.maximum(g, 0) for g in grids], image_shape).ravel()
        pieces.append((rows[inside], columns[inside], weights[tap]))

    if sparse:
        try:
            from scipy import sparse as scipy_sparse
        except ImportError:
            raise ImportError("to_matrix(sparse=True) needs SciPy: pip install scipy") from None
        all_rows = numpy.concatenate([r for r, _, _ in pieces])
        all_columns = numpy.concatenate([c for _, c, _ in pieces])
        values = numpy.concatenate([numpy.full(len(r), w) for r, _, w in pieces])
        # coo -> csr sums the weights of taps that land on the same pixel (non-zero boundaries)
        return scipy_sparse.coo_matrix((values, (all_rows, all_columns)), shape=(rows_count, columns_count)).tocsr()
    if rows_count * columns_count > MAX_DENSE_ENTRIES:
        raise invalid(
            "to_matrix",
            "sparse",
            f"True for a matrix of {rows_count} x {columns_count} entries (dense is limited to {MAX_DENSE_ENTRIES})",
            sparse,
            f"image shape {image_shape}",
        )
    matrix = numpy.zeros((rows_count, columns_count))
    for tap_rows, tap_columns, weight in pieces:
        # within one tap every output row appears once, so the fancy += never drops a repeat
        matrix[tap_rows, tap_columns] += weight
    return matrix
