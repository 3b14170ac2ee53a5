"""Colour adjustments and ``ColorJitter``, with torchvision.transforms.v2's formulas.

Images are float in [0, 1] or uint8 in [0, 255], channel-first: (C, H, W) one image, or
(N, C, H, W) with one factor per sample (the batch kernels below). As torchvision:

* ``brightness``: ``x * f``;
* ``contrast``: blend with the mean of the grayscale image, ``f x + (1 - f) mean``;
* ``saturation``: blend with the grayscale image (a grayscale image is left as it is);
* ``hue``: rotate the hue by ``f`` turns (f in [-0.5, 0.5]) through HSV;
* grayscale is ``0.2989 R + 0.587 G + 0.114 B``.

Results are clipped to [0, bound]; uint8 results are truncated back to uint8 (as
torchvision's ``.to(torch.uint8)``).
"""

from __future__ import annotations

import numbers

import numpy

from convstack import backend
from convstack.data._transform import Transform, _unwrap, resolve_generator
from convstack.nn.functional._utils import invalid
from convstack.tensor import Tensor


def bound_of(dtype) -> float:
    """The largest value of an image of this dtype: 1.0 for floats, the integer maximum otherwise."""
    dtype = numpy.dtype(dtype)
    return 1.0 if dtype.kind == "f" else float(numpy.iinfo(dtype).max)


def as_nchw(array, batched: bool, op: str):
    """Channel-first image data as (N, C, H, W): (H, W) and (C, H, W) samples, (N, H, W) and (N, C, H, W) batches."""
    rank = array.ndim - batched
    if rank == 2:
        return array.reshape(array.shape[0] if batched else 1, 1, *array.shape[-2:])
    if rank == 3:
        return array if batched else array[None]
    expected = "a batch (N, C, H, W) or (N, H, W)" if batched else "an image (C, H, W) or (H, W)"
    raise ValueError(f"{op}: expected {expected}, received shape {tuple(array.shape)}")


def work_array(array):
    """``array`` as floats to compute on: itself when float, float32 otherwise."""
    return array if array.dtype.kind == "f" else array.astype(numpy.float32)


def to_dtype(out, dtype, xp):
    """Clip to [0, bound] and convert back (uint8: truncation, as torchvision's ``.to``)."""
    out = xp.clip(out, 0, bound_of(dtype))
    return out if numpy.dtype(dtype).kind == "f" else out.astype(dtype)


def per_sample(values, xp, dtype):
    """Factors (N,) shaped (N, 1, 1, 1) to broadcast over images."""
    return xp.asarray(numpy.asarray(values, dtype=numpy.float64), dtype=dtype).reshape(-1, 1, 1, 1)


def blend(image, other, ratio):
    """torchvision's ``_blend``: ``ratio * image + (1 - ratio) * other`` clipped, in ``image``'s dtype."""
    xp = backend.get_array_module(image)
    work = work_array(image)
    ratio = per_sample(ratio, xp, work.dtype)
    return to_dtype(work * ratio + other * (1 - ratio), image.dtype, xp)


def grayscale(image):
    """(N, 3, H, W) -> (N, 1, H, W) float luma ``0.2989 R + 0.587 G + 0.114 B`` (floored for integer images)."""
    xp = backend.get_array_module(image)
    work = work_array(image)
    luma = work[:, 0:1] * 0.2989 + work[:, 1:2] * 0.587 + work[:, 2:3] * 0.114
    luma = luma.astype(work.dtype, copy=False)
    return luma if image.dtype.kind == "f" else xp.floor(luma)


def _check_colour_channels(image, op):
    if image.shape[1] not in (1, 3):
        raise ValueError(f"{op}: expected images with 1 or 3 channels, received shape {tuple(image.shape[1:])}")


def brightness_batch(image, factors):
    """``x * f`` per sample: (N, C, H, W), factors (N,)."""
    xp = backend.get_array_module(image)
    work = work_array(image)
    return to_dtype(work * per_sample(factors, xp, work.dtype), image.dtype, xp)


def contrast_batch(image, factors):
    """Blend each image with the mean of its grayscale: (N, C, H, W) with C 1 or 3, factors (N,)."""
    _check_colour_channels(image, "adjust_contrast")
    gray = grayscale(image) if image.shape[1] == 3 else work_array(image)
    return blend(image, gray.mean(axis=(1, 2, 3), keepdims=True), factors)


def saturation_batch(image, factors):
    """Blend each image with its grayscale version (grayscale images are returned unchanged)."""
    _check_colour_channels(image, "adjust_saturation")
    if image.shape[1] == 1:
        return image
    return blend(image, grayscale(image), factors)


def hue_batch(image, factors):
    """Shift the hue by ``f`` turns, f in [-0.5, 0.5] (grayscale images are returned unchanged)."""
    _check_colour_channels(image, "adjust_hue")
    if image.shape[1] == 1:
        return image
    xp = backend.get_array_module(image)
    work = image.astype(xp.float32) / 255.0 if image.dtype.kind != "f" else image
    h, s, v = _rgb_to_hsv(work, xp)
    h = xp.remainder(h + per_sample(factors, xp, work.dtype)[:, 0], 1.0)
    out = _hsv_to_rgb(h, s, v, xp)
    if image.dtype.kind == "f":
        return out.astype(image.dtype, copy=False)
    # torchvision's float -> uint8 conversion: x * (255 + 1 - 1e-3), truncated.
    return (out * (bound_of(image.dtype) + 1.0 - 1e-3)).astype(image.dtype)


def _rgb_to_hsv(image, xp):
    """(N, 3, H, W) RGB in [0, 1] -> h, s, v each (N, H, W) (Pillow's and torchvision's algorithm)."""
    r, g, b = image[:, 0], image[:, 1], image[:, 2]
    maxc, minc = image.max(axis=1), image.min(axis=1)
    equal = maxc == minc
    spread = maxc - minc
    s = spread / xp.where(equal, 1, maxc)
    divisor = xp.where(equal, 1, spread)
    rc, gc, bc = (maxc - r) / divisor, (maxc - g) / divisor, (maxc - b) / divisor
    h = xp.where(maxc == r, bc - gc, xp.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = xp.fmod(h / 6.0 + 1.0, 1.0)
    return h.astype(image.dtype, copy=False), s, maxc


def _hsv_to_rgb(h, s, v, xp):
    h6 = h * 6
    sector = xp.floor(h6)
    f = h6 - sector
    sector = sector.astype(xp.int64) % 6
    p = xp.clip(v * (1 - s), 0, 1)
    q = xp.clip(v * (1 - s * f), 0, 1)
    t = xp.clip(v * (1 - s * (1 - f)), 0, 1)
    # Per sector (0..5) which of v, p, q, t each of R, G, B takes.
    candidates = xp.stack([v, p, q, t])  # (4, N, H, W)
    select = xp.asarray([[0, 2, 1, 1, 3, 0], [3, 0, 0, 2, 1, 1], [1, 1, 3, 0, 0, 2]])[:, sector]  # (3, N, H, W)
    out = xp.take_along_axis(candidates[:, None], select[None], axis=0)[0]  # (3, N, H, W)
    return xp.moveaxis(out, 0, 1).astype(h.dtype, copy=False)


def _functional(kernel, op, low=0.0, high=float("inf")):
    argument = op.replace("adjust_", "") + "_factor"

    def adjust(img, factor):
        if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not low <= factor <= high:
            raise invalid(op, argument, f"a number in [{low:g}, {high:g}]", factor)
        array, wrap = _unwrap(img, op)
        if array.ndim < 3:
            raise ValueError(f"{op}: expected an image (..., C, H, W), received shape {tuple(array.shape)}")
        flat = array.reshape(-1, *array.shape[-3:])
        out = kernel(flat, numpy.full(flat.shape[0], float(factor))).reshape(array.shape)
        return Tensor._make(out) if wrap else out

    adjust.__name__ = op
    adjust.__doc__ = f"``{op}(img, factor)`` on (..., C, H, W): see ``convstack.data.color`` ({kernel.__doc__})"
    return adjust


adjust_brightness = _functional(brightness_batch, "adjust_brightness")
adjust_contrast = _functional(contrast_batch, "adjust_contrast")
adjust_saturation = _functional(saturation_batch, "adjust_saturation")
adjust_hue = _functional(hue_batch, "adjust_hue", low=-0.5, high=0.5)


def _factor_range(value, argument, center=1.0, bound=(0.0, float("inf"))):
    """torchvision's ``_check_input``: a number v -> (center - v, center + v) clipped at 0, or (min, max)."""
    if value is None:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if value < 0:
            raise invalid("ColorJitter", argument, "a non-negative number or a pair (min, max)", value)
        value = (center - float(value), center + float(value))
        if argument != "hue":
            value = (max(value[0], 0.0), value[1])
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise invalid("ColorJitter", argument, "a number or a pair (min, max)", value) from None
    if not bound[0] <= low <= high <= bound[1]:
        raise invalid("ColorJitter", argument, f"values within [{bound[0]}, {bound[1]}], min <= max", value)
    return None if low == high == center else (low, high)


class ColorJitter(Transform):
    """Randomly change brightness, contrast, saturation and hue, in a random order per sample.

    Args:
        brightness: b for a factor in [max(0, 1 - b), 1 + b], or (min, max).
        contrast: as ``brightness``.
        saturation: as ``brightness`` (no effect on grayscale images).
        hue: h in [0, 0.5] for a shift in [-h, h] turns, or (min, max) within [-0.5, 0.5].
        generator: a ``numpy.random.Generator`` (default: the loader's stream or convstack's default).

    Shape:
        (C, H, W) -> (C, H, W) with C 1 or 3 (contrast, saturation and hue need them); batched (N, C, H, W).

    Examples:
        >>> ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)   # doctest: +ELLIPSIS
        ColorJitter(brightness=(0.6, 1.4), contrast=(0.6, 1.4), saturation=(0.6, 1.4), hue=(-0.1, 0.1)...)
    """

    _KERNELS = (brightness_batch, contrast_batch, saturation_batch, hue_batch)

    def __init__(self, brightness=None, contrast=None, saturation=None, hue=None, generator=None):
        self.brightness = _factor_range(brightness, "brightness")
        self.contrast = _factor_range(contrast, "contrast")
        self.saturation = _factor_range(saturation, "saturation")
        self.hue = _factor_range(hue, "hue", center=0.0, bound=(-0.5, 0.5))
        self.generator = generator

    def apply(self, array, batched):
        images = as_nchw(array, batched, "ColorJitter")
        generator = resolve_generator(self.generator)
        count = images.shape[0]
        order = numpy.argsort(generator.random((count, 4)), axis=1)  # each sample its own order of the four
        ranges = (self.brightness, self.contrast, self.saturation, self.hue)
        factors = [None if r is None else generator.uniform(*r, size=count) for r in ranges]
        out = images.copy()
        for position in range(4):
            for op, kernel in enumerate(self._KERNELS):
                if factors[op] is None:
                    continue
                chosen = order[:, position] == op
                if chosen.all():
                    out = kernel(out, factors[op])
                elif chosen.any():
                    out[chosen] = kernel(out[chosen], factors[op][chosen])
        return out.reshape(array.shape)
