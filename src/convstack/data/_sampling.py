"""Affine warps of image batches, as torchvision.transforms.v2.functional computes them.

The geometry follows torchvision exactly (``_get_inverse_affine_matrix``, ``_affine_grid``,
``grid_sample(align_corners=False)``, ``_apply_grid_transform``):

* a transform is given by its *inverse* matrix (output pixel -> input pixel) in coordinates
  centred on the image: output pixel (i, j) sits at (j - (W_out - 1) / 2, i - (H_out - 1) / 2),
  and the source point (x, y) lands on input pixel (x + (W - 1) / 2, y + (H - 1) / 2);
* ``'nearest'`` reads the pixel nearest to the source point (ties to even, as ``nearbyint``),
  ``'bilinear'`` blends the four around it, pixels outside the image counting as zero;
* with ``fill`` given, a coverage mask is sampled alongside (1 inside the image, 0 outside)
  and the result becomes ``mask * (value - fill) + fill`` (bilinear) or ``fill`` where the
  mask is below 0.5 (nearest). ``fill=None`` keeps the zero padding as it is.

Every sample of a batch has its own matrix: (N, 2, 3), one gather per neighbour, no loop
over samples or pixels. uint8 images are warped in float32 and rounded back.
"""

from __future__ import annotations

import enum
import math
import numbers

import numpy

from convstack import backend
from convstack.nn.functional._utils import invalid


class InterpolationMode(str, enum.Enum):
    """torchvision's names for the interpolation of geometric transforms (plain strings work too)."""

    NEAREST = "nearest"
    BILINEAR = "bilinear"


def interpolation_mode(value, op: str, allowed=("nearest", "bilinear")) -> str:
    """``value`` (a string or ``InterpolationMode``) as a plain lower-case string, checked."""
    name = value.value if isinstance(value, InterpolationMode) else value
    if name not in allowed:
        raise invalid(op, "interpolation", " or ".join(repr(a) for a in allowed), value)
    return name


def check_fill(fill, op: str):
    """``fill``: None, a number, or a sequence of numbers (one per channel); returned as a tuple or None."""
    if fill is None:
        return None
    values = (fill,) if isinstance(fill, numbers.Real) and not isinstance(fill, bool) else fill
    try:
        values = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise invalid(op, "fill", "None, a number or one number per channel", fill) from None
    if not values:
        raise invalid(op, "fill", "None, a number or one number per channel", fill)
    return values


def inverse_affine_matrices(angle, translate_x, translate_y, scale, shear_x, shear_y, center_x, center_y):
    """torchvision's ``_get_inverse_affine_matrix`` for N samples at once: (N, 2, 3) float64.

    The forward map is ``M = T * C * R(angle) S(scale) SHy(shear_y) SHx(shear_x) * C^-1``
    (T: translation, C: the centre, image-centred coordinates); this returns ``M^-1``. Angles
    and shears are in degrees; ``angle`` turns clockwise on screen (y points down).
    """
    angle, translate_x, translate_y, scale, shear_x, shear_y, center_x, center_y = (
        numpy.asarray(v, dtype=numpy.float64)
        for v in (angle, translate_x, translate_y, scale, shear_x, shear_y, center_x, center_y)
    )
    rot, sx, sy = numpy.radians(angle), numpy.radians(shear_x), numpy.radians(shear_y)
    # The rotation-shear matrix [[a, b], [c, d]] has determinant 1; its inverse is [[d, -b], [-c, a]].
    a = numpy.cos(rot - sy) / numpy.cos(sy)
    b = -(a * numpy.tan(sx) + numpy.sin(rot))
    c = numpy.sin(rot - sy) / numpy.cos(sy)
    d = numpy.cos(rot) - c * numpy.tan(sx)
    m00, m01, m10, m11 = d / scale, -b / scale, -c / scale, a / scale
    cx_tx, cy_ty = center_x + translate_x, center_y + translate_y
    m02 = center_x - m00 * cx_tx - m01 * cy_ty
    m12 = center_y - m10 * cx_tx - m11 * cy_ty
    rows = numpy.stack([numpy.stack([m00, m01, m02], -1), numpy.stack([m10, m11, m12], -1)], -2)
    return rows.reshape(-1, 2, 3)


def expanded_size(matrix, width: int, height: int) -> tuple[int, int]:
    """(height, width) of the canvas holding the whole warped image (``expand=True``), as torchvision."""
    # In float32 as torchvision: a cos(90 deg) of 6e-17 must vanish, not widen the canvas by a pixel.
    half = numpy.array([0.5 * width, 0.5 * height], dtype=numpy.float32)
    corners = numpy.array([[-1, -1, 0], [-1, 1, 0], [1, 1, 0], [1, -1, 0]], dtype=numpy.float32)
    corners[:, :2] *= half
    corners[:, 2] = 1
    points = corners @ numpy.asarray(matrix, dtype=numpy.float32).reshape(2, 3).T
    low, high = points.min(axis=0) + half, points.max(axis=0) + half
    # Truncated to 1e-4 first, so that 1e-15 of rounding error does not add a pixel.
    high = numpy.ceil(numpy.trunc(high * numpy.float32(1e4)) * numpy.float32(1e-4))
    low = numpy.floor(numpy.trunc(low * numpy.float32(1e4)) * numpy.float32(1e-4))
    size = high - low
    return int(size[1]), int(size[0])


def warp(array, matrices, out_size=None, interpolation: str = "nearest", fill=None):
    """Warp a batch (N, C, H, W) by one inverse affine matrix (N, 2, 3) per sample.

    Args:
        array: images (N, C, H, W), float or uint8.
        matrices: (N, 2, 3) inverse maps in image-centred coordinates (``inverse_affine_matrices``).
        out_size: (H_out, W_out), default the input's.
        interpolation: ``'nearest'`` or ``'bilinear'``.
        fill: None, or a tuple of one value or one per channel (see the module docstring).

    Shape:
        (N, C, H, W) -> (N, C, H_out, W_out), the input's dtype.
    """
    xp = backend.get_array_module(array)
    count, channels, height, width = array.shape
    out_height, out_width = out_size if out_size is not None else (height, width)
    work_dtype = array.dtype if array.dtype.kind == "f" else numpy.dtype(numpy.float32)
    m = numpy.asarray(matrices, dtype=numpy.float64).reshape(count, 2, 3, 1, 1)
    cols = (numpy.arange(out_width) - (out_width - 1) / 2.0)[None, None, :]  # (1, 1, W_out)
    rows = (numpy.arange(out_height) - (out_height - 1) / 2.0)[None, :, None]  # (1, H_out, 1)
    source_x = m[:, 0, 0] * cols + m[:, 0, 1] * rows + m[:, 0, 2] + (width - 1) / 2.0  # (N, H_out, W_out)
    source_y = m[:, 1, 0] * cols + m[:, 1, 1] * rows + m[:, 1, 2] + (height - 1) / 2.0
    source_x, source_y = xp.asarray(source_x), xp.asarray(source_y)
    flat = array.reshape(count, channels, height * width)
    fill_values = None if fill is None else _fill_array(xp, fill, channels, work_dtype)

    def gather(ix, iy):  # (N, H_out, W_out) integer indices -> values (N, C, H_out, W_out), inside mask
        inside = (ix >= 0) & (ix < width) & (iy >= 0) & (iy < height)
        index = xp.clip(iy, 0, height - 1) * width + xp.clip(ix, 0, width - 1)
        values = xp.take_along_axis(flat, index.reshape(count, 1, -1), axis=2)
        return values.reshape(count, channels, out_height, out_width).astype(work_dtype, copy=False), inside

    if interpolation == "nearest":
        values, inside = gather(xp.rint(source_x).astype(xp.int64), xp.rint(source_y).astype(xp.int64))
        out = xp.where(inside[:, None], values, xp.zeros((), work_dtype) if fill_values is None else fill_values)
    else:
        x0, y0 = xp.floor(source_x), xp.floor(source_y)
        fx, fy = (source_x - x0).astype(work_dtype), (source_y - y0).astype(work_dtype)
        x0, y0 = x0.astype(xp.int64), y0.astype(xp.int64)
        out = xp.zeros((count, channels, out_height, out_width), work_dtype)
        coverage = xp.zeros((count, out_height, out_width), work_dtype)
        for dy, weight_y in ((0, 1 - fy), (1, fy)):
            for dx, weight_x in ((0, 1 - fx), (1, fx)):
                values, inside = gather(x0 + dx, y0 + dy)
                weight = weight_y * weight_x * inside  # (N, H_out, W_out); outside pixels weigh nothing
                out += values * weight[:, None]
                coverage += weight
        if fill_values is not None:
            out = coverage[:, None] * (out - fill_values) + fill_values
    return restore_dtype(out, array.dtype, xp)


def _fill_array(xp, fill, channels, dtype):
    if len(fill) not in (1, channels):
        raise ValueError(f"fill: {len(fill)} values for images with {channels} channels; expected 1 or {channels}")
    return xp.asarray(fill, dtype=dtype).reshape(1, -1, 1, 1)


def restore_dtype(out, dtype, xp):
    """Float results back to ``dtype``: rounded and clipped for integer images (as torchvision's ``round_``)."""
    if numpy.dtype(dtype).kind == "f":
        return out.astype(dtype, copy=False)
    info = numpy.iinfo(dtype)
    return xp.clip(xp.rint(out), info.min, info.max).astype(dtype)


def centre_offset(center, width: int, height: int):
    """A user's ``center`` (x, y) in pixel coordinates as torchvision's image-centred one; None -> (0, 0)."""
    if center is None:
        return 0.0, 0.0
    return center[0] - 0.5 * width, center[1] - 0.5 * height


def check_center(center, op: str):
    if center is None:
        return None
    try:
        values = tuple(float(v) for v in center)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 2 or not all(math.isfinite(v) for v in values):
        raise invalid(op, "center", "None or a pair (x, y) of pixel coordinates", center)
    return values
