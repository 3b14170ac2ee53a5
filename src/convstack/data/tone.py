"""Tone operations of the AutoAugment family, with torchvision.transforms.v2's formulas.

On (N, C, H, W) batches, float in [0, 1] or uint8, one magnitude per sample:

* ``sharpness``: blend with the image smoothed by ``[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13``
  (borders kept), as PIL's ``ImageEnhance.Sharpness``;
* ``posterize``: keep ``bits`` bits per value (uint8: a bit mask; floats: ``floor(x 2^b) / 2^b``);
* ``solarize``: invert the values at or above ``threshold``;
* ``autocontrast``: stretch each channel to [0, bound];
* ``equalize``: histogram equalisation per channel, on 256 levels (PIL's ``ImageOps.equalize``
  lookup table; float images are quantised to uint8 for it and converted back).
"""

from __future__ import annotations

import numbers

import numpy

from convstack import backend
from convstack.data._transform import _unwrap
from convstack.data.color import bound_of, per_sample, to_dtype, work_array
from convstack.nn.functional._utils import invalid
from convstack.tensor import Tensor


def sharpness_batch(image, factors):
    """Blend with a 3x3 smoothing of the image: factor 0 smooths, 1 keeps, 2 sharpens; (N, C, H, W), (N,)."""
    xp = backend.get_array_module(image)
    height, width = image.shape[-2:]
    if height <= 2 or width <= 2:
        return image
    work = work_array(image).copy()
    # The 3x3 kernel [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13 on the interior, as nine shifted slices.
    blurred = 4.0 * work[..., 1:-1, 1:-1]
    for dy in range(3):
        for dx in range(3):
            blurred = blurred + work[..., dy : height - 2 + dy, dx : width - 2 + dx]
    blurred = (blurred / 13.0).astype(work.dtype, copy=False)
    if image.dtype.kind != "f":
        blurred = xp.rint(blurred)
    interior = work[..., 1:-1, 1:-1]
    interior += (blurred - interior) * (1.0 - per_sample(factors, xp, work.dtype))
    return to_dtype(work, image.dtype, xp)


def posterize_batch(image, bits):
    """Keep the ``bits`` (N,) highest bits of every value (1 to 8)."""
    xp = backend.get_array_module(image)
    bits = numpy.asarray(bits, dtype=numpy.int64)
    if image.dtype.kind == "f":
        levels = per_sample(2.0**bits, xp, image.dtype)
        return xp.clip(xp.floor(image * levels), 0, levels - 1) / levels
    value_bits = numpy.iinfo(image.dtype).bits
    masks = ((1 << numpy.minimum(bits, value_bits)) - 1) << (value_bits - numpy.minimum(bits, value_bits))
    return image & xp.asarray(masks.astype(image.dtype)).reshape(-1, 1, 1, 1)


def solarize_batch(image, thresholds):
    """``bound - x`` where ``x >= threshold`` (one threshold per sample, in the image's units)."""
    xp = backend.get_array_module(image)
    threshold = per_sample(thresholds, xp, numpy.float64)
    return xp.where(image >= threshold, (bound_of(image.dtype) - image).astype(image.dtype), image)


def autocontrast_batch(image, _unused=None):
    """Stretch each channel of each image linearly so that its minimum is 0 and its maximum the bound."""
    xp = backend.get_array_module(image)
    bound = bound_of(image.dtype)
    work = work_array(image)
    low = work.min(axis=(-2, -1), keepdims=True)
    high = work.max(axis=(-2, -1), keepdims=True)
    flat = high == low
    inverse_scale = xp.where(flat, 1.0, (high - low) / bound).astype(work.dtype)
    low = xp.where(flat, 0.0, low).astype(work.dtype)
    return to_dtype((work - low) / inverse_scale, image.dtype, xp)


def equalize_batch(image, _unused=None):
    """Histogram equalisation of each channel of each image (PIL's lookup table)."""
    xp = backend.get_array_module(image)
    as_uint8 = image if image.dtype == numpy.uint8 else _float_to_uint8(image, xp)
    count, channels = as_uint8.shape[:2]
    flat = as_uint8.reshape(count * channels, -1).astype(xp.int64)  # one row per channel image
    rows = flat.shape[0]
    offsets = xp.arange(rows, dtype=xp.int64)[:, None] * 256
    histogram = xp.bincount((flat + offsets).ravel(), minlength=rows * 256).reshape(rows, 256)
    cumulative = xp.cumsum(histogram, axis=1)
    # PIL: step = (pixels not of the last occupied level) // 255; nothing to do where that is 0.
    last_level = cumulative.argmax(axis=1)
    step = (flat.shape[1] - histogram[xp.arange(rows), last_level]) // 255
    valid = step != 0
    step = xp.where(valid, step, 1)[:, None]
    lut = xp.clip((cumulative - histogram + step // 2) // step, 0, 255)  # (rows, 256)
    equalized = xp.take_along_axis(lut, flat, axis=1)
    out = xp.where(valid[:, None], equalized, flat).astype(numpy.uint8).reshape(as_uint8.shape)
    if image.dtype == numpy.uint8:
        return out
    return (out / 255.0).astype(image.dtype)


def _float_to_uint8(image, xp):
    """torchvision's float -> uint8 conversion: ``x * (256 - 1e-3)``, truncated."""
    return (xp.clip(image, 0, 1) * (256.0 - 1e-3)).astype(numpy.uint8)


def invert_batch(image, _unused=None):
    """``bound - x``."""
    return (bound_of(image.dtype) - image).astype(image.dtype)


def _functional(kernel, op, argument=None, check=None, expected=""):
    def adjust(img, *value):
        if argument is not None and (len(value) != 1 or isinstance(value[0], bool) or not check(value[0])):
            raise invalid(op, argument, expected, value[0] if len(value) == 1 else value)
        array, wrap = _unwrap(img, op)
        if array.ndim < 3:
            raise ValueError(f"{op}: expected an image (..., C, H, W), received shape {tuple(array.shape)}")
        flat = array.reshape(-1, *array.shape[-3:])
        values = numpy.full(flat.shape[0], value[0]) if argument is not None else None
        out = kernel(flat, values).reshape(array.shape)
        return Tensor._make(out) if wrap else out

    adjust.__name__ = op
    adjust.__doc__ = f"``{op}`` on one image (..., C, H, W): {kernel.__doc__}"
    return adjust


adjust_sharpness = _functional(sharpness_batch, "adjust_sharpness", "sharpness_factor",
                               lambda v: isinstance(v, numbers.Real) and v >= 0, "a non-negative number")
posterize = _functional(posterize_batch, "posterize", "bits",
                        lambda v: isinstance(v, (int, numpy.integer)) and 0 <= v <= 8, "an integer from 0 to 8")
solarize = _functional(solarize_batch, "solarize", "threshold",
                       lambda v: isinstance(v, numbers.Real) and v >= 0, "a non-negative number (in the image's units)")
autocontrast = _functional(autocontrast_batch, "autocontrast")
equalize = _functional(equalize_batch, "equalize")
invert = _functional(invert_batch, "invert")
