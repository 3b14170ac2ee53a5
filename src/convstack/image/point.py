"""Point processing: each output pixel depends on the input pixel alone (lecture 4).

Every operation takes a uint8 image (values 0..255) or a float image (values 0..1),
of any shape (gray, colour, a batch), as an array or a Tensor, and returns the same
kind and dtype. Amounts (``delta``, ``t``, a numeric pivot) are in the image's own
units: 0..255 for uint8, 0..1 for floats. Results are clipped to that range; uint8
results are rounded to the nearest integer. Tensors in give Tensors out, without a
gradient (clipping and rounding make these operations a display step, not a layer).
"""

from __future__ import annotations

import math

import numpy

from convstack.backend import get_array_module
from convstack.nn.functional._utils import invalid
from convstack.tensor import Tensor


def _unwrap(op: str, image):
    """(array, top value of the range, whether a Tensor came in); refuses other dtypes."""
    was_tensor = isinstance(image, Tensor)
    array = image.data if was_tensor else image
    if not hasattr(array, "dtype"):
        array = numpy.asarray(array)
    if array.dtype == numpy.uint8:
        return array, 255.0, was_tensor
    if array.dtype.kind == "f":
        return array, 1.0, was_tensor
    raise invalid(op, "image", "a uint8 image (0..255) or a float image (0..1)", f"dtype {array.dtype}")


def _number(op: str, argument: str, value) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, numpy.integer, numpy.floating))
        or not (math.isfinite(value))
    ):
        raise invalid(op, argument, "a finite number", value)
    return float(value)


def _finish(values, like, top: float, was_tensor: bool):
    """``values`` clipped to [0, top] in ``like``'s dtype (uint8 rounded), as ``like``'s kind."""
    xp = get_array_module(values)
    values = xp.clip(values, 0.0, top)
    out = xp.rint(values).astype(numpy.uint8) if like.dtype == numpy.uint8 else values.astype(like.dtype)
    return Tensor._make(out) if was_tensor else out


def invert(image):
    """The negative: ``top - x`` (``255 - x`` for uint8, ``1 - x`` for floats).

    Examples:
        >>> invert(numpy.array([0, 100, 255], dtype=numpy.uint8))
        array([255, 155,   0], dtype=uint8)
    """
    array, top, was_tensor = _unwrap("invert", image)
    return _finish(top - array.astype(numpy.float64), array, top, was_tensor)


def brightness(image, delta: float):
    """Add ``delta`` to every pixel (negative darkens), clipped: the lecture's ``x + 128``.

    Examples:
        >>> brightness(numpy.array([0, 100, 200], dtype=numpy.uint8), 128)
        array([128, 228, 255], dtype=uint8)
    """
    array, top, was_tensor = _unwrap("brightness", image)
    delta = _number("brightness", "delta", delta)
    return _finish(array.astype(numpy.float64) + delta, array, top, was_tensor)


def contrast(image, factor: float, pivot="mid"):
    """Stretch values away from ``pivot`` by ``factor``: ``pivot + factor * (x - pivot)``, clipped.

    Args:
        factor: >= 0; above 1 raises contrast, below 1 lowers it, 0 makes the image flat.
        pivot: the value that stays fixed: ``'mid'`` (mid-grey, 127.5 or 0.5, the default),
            ``'mean'`` (the image's mean over all pixels and channels, which keeps the
            average brightness), or a number in the image's units. With pivot 0 this is
            the lecture's ``x * 2``.

    Examples:
        >>> contrast(numpy.array([0.25, 0.5, 1.0]), 2.0)
        array([0. , 0.5, 1. ])
    """
    array, top, was_tensor = _unwrap("contrast", image)
    factor = _number("contrast", "factor", factor)
    if factor < 0:
        raise invalid("contrast", "factor", "a number >= 0", factor)
    values = array.astype(numpy.float64)
    if isinstance(pivot, str) and pivot == "mid":
        centre = top / 2
    elif isinstance(pivot, str) and pivot == "mean":
        centre = values.mean()
    elif isinstance(pivot, str):
        raise invalid("contrast", "pivot", "'mid', 'mean' or a number", pivot)
    else:
        centre = _number("contrast", "pivot", pivot)
    return _finish(centre + factor * (values - centre), array, top, was_tensor)


def gamma(image, g: float):
    """Gamma correction ``top * (x / top) ** g``: ``g < 1`` brightens the shadows, ``g > 1`` darkens.

    The lecture's ``(x / 255) ** (1/3) * 255`` is ``gamma(image, 1/3)``.

    Examples:
        >>> gamma(numpy.array([0.25, 1.0]), 0.5)
        array([0.5, 1. ])
    """
    array, top, was_tensor = _unwrap("gamma", image)
    g = _number("gamma", "g", g)
    if g <= 0:
        raise invalid("gamma", "g", "a positive number", g)
    # clipped first: a fractional power of a negative (out-of-range float) value has no real answer
    values = get_array_module(array).clip(array.astype(numpy.float64) / top, 0.0, 1.0)
    return _finish(top * values**g, array, top, was_tensor)


def threshold(image, t: float):
    """Binarise: pixels ``>= t`` become the top value (255 or 1), the others 0, per channel.

    Examples:
        >>> threshold(numpy.array([10, 128, 200], dtype=numpy.uint8), 128)
        array([  0, 255, 255], dtype=uint8)
    """
    array, top, was_tensor = _unwrap("threshold", image)
    t = _number("threshold", "t", t)
    return _finish((array >= t) * top, array, top, was_tensor)
