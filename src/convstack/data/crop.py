"""Crops: ``CenterCrop``, ``RandomResizedCrop`` (and ``resized_crop``, its deterministic core).

A resized crop is separable: along each axis, output pixel ``o`` is a weighted sum of a few
input pixels (its *taps*). The taps of every sample (its own crop box) are computed at once,
(N, out, K) indices and weights, and applied with one gather per tap, so a batch with a
different box per image costs no loop over images. The weights are
``torch.nn.functional.interpolate``'s with ``align_corners=False``: ``'nearest'`` (index
``floor(o * scale)``), ``'bilinear'``, and bilinear with ``antialias=True`` (a triangle filter
widened by the downscaling factor, as PIL and torchvision's default; the same as plain
bilinear when enlarging).
"""

from __future__ import annotations

import math

import numpy

from convstack import backend
from convstack.data._sampling import interpolation_mode, restore_dtype
from convstack.data._transform import Transform, _unwrap, resolve_generator
from convstack.data.affine import as_batch_of_images
from convstack.data.geometric import _pad
from convstack.nn.functional._utils import invalid, ntuple
from convstack.tensor import Tensor


def resize_taps(start, length, out_size: int, interpolation: str, antialias: bool):
    """Indices and weights (N, out_size, K) reading ``length`` pixels from ``start`` (arrays (N,)).

    Output pixel ``o`` of sample ``n`` is ``sum_k weight[n, o, k] * input[index[n, o, k]]``.
    """
    start = numpy.asarray(start, dtype=numpy.int64).reshape(-1, 1, 1)
    length = numpy.asarray(length, dtype=numpy.int64).reshape(-1, 1, 1)
    o = numpy.arange(out_size).reshape(1, -1, 1)
    if interpolation == "nearest":
        # PyTorch's 'nearest': floor(o * in / out), the scale in float32.
        scale = (length / out_size).astype(numpy.float32)
        index = numpy.minimum(numpy.floor(o.astype(numpy.float32) * scale).astype(numpy.int64), length - 1)
        return start + index, numpy.ones(index.shape)
    scale = length / out_size
    if not antialias:
        source = numpy.maximum((o + 0.5) * scale - 0.5, 0.0)
        low = numpy.minimum(numpy.floor(source).astype(numpy.int64), length - 1)
        high = numpy.minimum(low + 1, length - 1)
        fraction = source - low
        return start + numpy.concatenate([low, high], -1), numpy.concatenate([1 - fraction, fraction], -1)
    # Antialiased: a triangle of half-width `support` input pixels around the centre; weights normalised.
    support = numpy.maximum(scale, 1.0)
    centre = scale * (o + 0.5)
    first = numpy.maximum(numpy.trunc(centre - support + 0.5), 0).astype(numpy.int64)
    end = numpy.minimum(numpy.trunc(centre + support + 0.5).astype(numpy.int64), length)
    taps = int(numpy.ceil(2 * support.max())) + 1
    index = first + numpy.arange(taps)  # (N, out, K)
    weight = numpy.maximum(0.0, 1.0 - numpy.abs((index - centre + 0.5) / support)) * (index < end)
    weight /= weight.sum(-1, keepdims=True)
    return start + numpy.minimum(index, length - 1), weight


def _resample_axis(array, index, weight, axis: int, work_dtype):
    """Apply taps (N, out, K) along ``axis`` (-2 or -1) of ``array`` (N, C, H, W)."""
    xp = backend.get_array_module(array)
    shape = (array.shape[0], 1, index.shape[1], 1) if axis == -2 else (array.shape[0], 1, 1, index.shape[1])
    out = None
    for k in range(index.shape[2]):  # a few taps: one gather each
        tap = xp.take_along_axis(array, xp.asarray(index[:, :, k].reshape(shape)), axis=axis)
        term = tap.astype(work_dtype, copy=False) * xp.asarray(weight[:, :, k].reshape(shape), dtype=work_dtype)
        out = term if out is None else out + term
    return out


def resized_crop_batch(four_d, top, left, height, width, size, interpolation="bilinear", antialias=True):
    """Crop box (top, left, height, width) of each sample (arrays (N,)) resized to ``size``: (N, C, h, w)."""
    xp = backend.get_array_module(four_d)
    work_dtype = four_d.dtype if four_d.dtype.kind == "f" else numpy.dtype(numpy.float32)
    row_index, row_weight = resize_taps(top, height, size[0], interpolation, antialias)
    col_index, col_weight = resize_taps(left, width, size[1], interpolation, antialias)
    out = _resample_axis(four_d, row_index, row_weight, -2, work_dtype)
    out = _resample_axis(out, col_index, col_weight, -1, work_dtype)
    if interpolation == "nearest":
        return out.astype(four_d.dtype, copy=False)
    return restore_dtype(out, four_d.dtype, xp)


def resized_crop(img, top, left, height, width, size, interpolation="bilinear", antialias=True):
    """Crop ``img`` (..., H, W) to the box and resize it to ``size`` (``v2.functional.resized_crop``)."""
    array, wrap = _unwrap(img, "resized_crop")
    four_d, restore = as_batch_of_images(array, batched=False)
    size = ntuple(size, 2, "resized_crop", "size")
    out = restore(resized_crop_batch(four_d, [top], [left], [height], [width], size,
                                     interpolation_mode(interpolation, "resized_crop"), antialias))
    return Tensor._make(out) if wrap else out


class CenterCrop(Transform):
    """Crop the centre ``size`` window; smaller images are first padded with zeros (torchvision's rule).

    Args:
        size: int or (height, width).

    Shape:
        (..., H, W) -> (..., size[0], size[1]).
    """

    def __init__(self, size):
        self.size = ntuple(size, 2, "CenterCrop", "size")

    def apply(self, array, batched):
        self._check_spatial(array, batched)
        (crop_h, crop_w), (height, width) = self.size, array.shape[-2:]
        if crop_h > height or crop_w > width:
            left, top = max(crop_w - width, 0) // 2, max(crop_h - height, 0) // 2
            right, bottom = max(crop_w - width + 1, 0) // 2, max(crop_h - height + 1, 0) // 2
            array = _pad(array, left, top, right, bottom, 0, "constant")
            height, width = array.shape[-2:]
        top, left = int(round((height - crop_h) / 2.0)), int(round((width - crop_w) / 2.0))
        return array[..., top : top + crop_h, left : left + crop_w].copy()


class RandomResizedCrop(Transform):
    """Crop a random box of random area and aspect ratio, resized to ``size`` (Szegedy et al. 2015).

    Each sample's box: area a fraction of the image drawn from ``scale``, aspect ratio
    (width / height) log-uniform in ``ratio``; up to 10 draws until the box fits, else the
    largest centred box within ``ratio`` (torchvision's ``get_params``).

    Args:
        size: int or (height, width) of the output.
        scale: (min, max) fraction of the image area.
        ratio: (min, max) aspect ratio.
        interpolation: ``'bilinear'`` (default) or ``'nearest'``.
        antialias: filter when shrinking (torchvision's default True).
        generator: a ``numpy.random.Generator`` (default: the loader's stream or convstack's default).

    Shape:
        (..., H, W) -> (..., size[0], size[1]).

    Examples:
        >>> RandomResizedCrop(24)(numpy.zeros((3, 32, 32), numpy.float32)).shape
        (3, 24, 24)
    """

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0), interpolation="bilinear",
                 antialias=True, generator=None):
        self.size = ntuple(size, 2, "RandomResizedCrop", "size")
        self.scale = _positive_pair(scale, "scale")
        self.ratio = _positive_pair(ratio, "ratio")
        self.interpolation = interpolation_mode(interpolation, "RandomResizedCrop")
        self.antialias = bool(antialias)
        self.generator = generator

    def sample_boxes(self, generator, count: int, height: int, width: int):
        """(top, left, box height, box width), arrays of ``count``, as torchvision's ``get_params``."""
        area = height * width
        target_area = area * generator.uniform(*self.scale, size=(count, 10))
        aspect = numpy.exp(generator.uniform(math.log(self.ratio[0]), math.log(self.ratio[1]), size=(count, 10)))
        box_w = numpy.rint(numpy.sqrt(target_area * aspect)).astype(numpy.int64)
        box_h = numpy.rint(numpy.sqrt(target_area / aspect)).astype(numpy.int64)
        fits = (box_w > 0) & (box_w <= width) & (box_h > 0) & (box_h <= height)
        first = fits.argmax(axis=1)
        found = fits.any(axis=1)
        box_w, box_h = box_w[numpy.arange(count), first], box_h[numpy.arange(count), first]
        # Fallback: the centred box of the whole image, trimmed to the ratio range.
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            fallback_w, fallback_h = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            fallback_w, fallback_h = int(round(height * self.ratio[1])), height
        else:
            fallback_w, fallback_h = width, height
        box_w, box_h = numpy.where(found, box_w, fallback_w), numpy.where(found, box_h, fallback_h)
        top = numpy.floor(generator.random(count) * (height - box_h + 1)).astype(numpy.int64)
        left = numpy.floor(generator.random(count) * (width - box_w + 1)).astype(numpy.int64)
        top = numpy.where(found, top, (height - box_h) // 2)
        left = numpy.where(found, left, (width - box_w) // 2)
        return top, left, box_h, box_w

    def apply(self, array, batched):
        self._check_spatial(array, batched)
        four_d, restore = as_batch_of_images(array, batched)
        height, width = four_d.shape[-2:]
        top, left, box_h, box_w = self.sample_boxes(resolve_generator(self.generator), four_d.shape[0], height, width)
        out = resized_crop_batch(four_d, top, left, box_h, box_w, self.size, self.interpolation, self.antialias)
        return restore(out)


def _positive_pair(value, argument):
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise invalid("RandomResizedCrop", argument, "a pair (min, max)", value) from None
    if not (0 < low <= high and math.isfinite(high)):
        raise invalid("RandomResizedCrop", argument, "a pair (min, max) with 0 < min <= max", value)
    return low, high

