"""Geometric transforms on the last two dimensions (..., H, W): pad, random crop, flips, resize."""

from __future__ import annotations

import functools

import numpy

from convstack import backend
from convstack.data._transform import Transform, resolve_generator
from convstack.nn.functional._utils import invalid, ntuple


def _padding4(padding, op):
    """torchvision's convention: int, (left/right, top/bottom) or (left, top, right, bottom)."""
    values = (padding,) if isinstance(padding, int) else tuple(padding)
    valid = all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values)
    if len(values) not in (1, 2, 4) or not valid:
        raise invalid(op, "padding", "a non-negative integer or a tuple of 2 or 4 of them", padding)
    if len(values) == 1:
        return values * 4
    if len(values) == 2:
        return values * 2
    return values


PADDING_MODES = ("constant", "edge", "reflect", "symmetric")


def _pad(array, left, top, right, bottom, fill, mode):
    if not (left or top or right or bottom):
        return array
    xp = backend.get_array_module(array)
    widths = [(0, 0)] * (array.ndim - 2) + [(top, bottom), (left, right)]
    if mode == "constant":
        return xp.pad(array, widths, mode="constant", constant_values=fill)
    return xp.pad(array, widths, mode=mode)


class Pad(Transform):
    """Pad the last two dimensions (..., H, W).

    Args:
        padding: int (all sides), (left/right, top/bottom) or (left, top, right, bottom).
        fill: the value for ``padding_mode='constant'``.
        padding_mode: ``'constant'``, ``'edge'``, ``'reflect'`` or ``'symmetric'``.

    Shape:
        (..., H, W) -> (..., H + top + bottom, W + left + right).
    """

    def __init__(self, padding, fill=0, padding_mode: str = "constant"):
        self.padding = _padding4(padding, "Pad")
        if padding_mode not in PADDING_MODES:
            raise invalid("Pad", "padding_mode", " or ".join(repr(m) for m in PADDING_MODES), padding_mode)
        self.fill = fill
        self.padding_mode = padding_mode

    def apply(self, array, batched):
        self._check_spatial(array, batched)
        return _pad(array, *self.padding, self.fill, self.padding_mode)


class RandomCrop(Transform):
    """Crop a random ``size`` window, after optional padding; each sample of a batch its own window.

    Args:
        size: int or (height, width) of the crop.
        padding: as ``Pad`` (the usual CIFAR recipe is ``RandomCrop(32, padding=4)``).
        pad_if_needed: pad images smaller than ``size`` on both sides instead of failing.
        fill, padding_mode: as ``Pad``.
        generator: a ``numpy.random.Generator`` (default: the loader's stream or convstack's default).

    Shape:
        (..., H, W) -> (..., size[0], size[1]).
    """

    def __init__(self, size, padding=0, pad_if_needed=False, fill=0, padding_mode="constant", generator=None):
        self.size = ntuple(size, 2, "RandomCrop", "size")
        self.padding = _padding4(padding, "RandomCrop")
        if padding_mode not in PADDING_MODES:
            raise invalid("RandomCrop", "padding_mode", " or ".join(repr(m) for m in PADDING_MODES), padding_mode)
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode
        self.generator = generator

    def apply(self, array, batched):
        self._check_spatial(array, batched)
        array = _pad(array, *self.padding, self.fill, self.padding_mode)
        (height, width), (in_height, in_width) = self.size, array.shape[-2:]
        if self.pad_if_needed and (in_height < height or in_width < width):
            extra_h, extra_w = max(height - in_height, 0), max(width - in_width, 0)
            array = _pad(array, extra_w, extra_h, extra_w, extra_h, self.fill, self.padding_mode)
            in_height, in_width = array.shape[-2:]
        if in_height < height or in_width < width:
            raise ValueError(
                f"RandomCrop: crop size {self.size} is larger than the (padded) image of shape {tuple(array.shape)}"
            )
        generator = resolve_generator(self.generator)
        if not batched:
            top = int(generator.integers(0, in_height - height + 1))
            left = int(generator.integers(0, in_width - width + 1))
            return array[..., top : top + height, left : left + width].copy()
        xp = backend.get_array_module(array)
        count = array.shape[0]
        tops = xp.asarray(generator.integers(0, in_height - height + 1, size=count))
        lefts = xp.asarray(generator.integers(0, in_width - width + 1, size=count))
        row_stride, col_stride = array.strides[-2:]
        windows = backend.as_strided(
            array,
            array.shape[:-2] + (in_height - height + 1, in_width - width + 1, height, width),
            array.strides[:-2] + (row_stride, col_stride, row_stride, col_stride),
        )  # (N, ..., top, left, height, width)
        return windows[xp.arange(count), ..., tops, lefts, :, :]  # (N, ..., height, width)


class _RandomFlip(Transform):
    axis = -1

    def __init__(self, p: float = 0.5, generator=None):
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise invalid(type(self).__name__, "p", "a probability in [0, 1]", p)
        self.p = float(p)
        self.generator = generator

    def apply(self, array, batched):
        self._check_spatial(array, batched)
        xp = backend.get_array_module(array)
        generator = resolve_generator(self.generator)
        if not batched:
            return xp.flip(array, axis=self.axis).copy() if generator.random() < self.p else array
        flips = xp.asarray(generator.random(array.shape[0]) < self.p)
        out = array.copy()
        out[flips] = xp.flip(array[flips], axis=self.axis)
        return out


class RandomHorizontalFlip(_RandomFlip):
    """Mirror left-right with probability ``p`` (each sample of a batch independently)."""

    axis = -1


class RandomVerticalFlip(_RandomFlip):
    """Mirror top-bottom with probability ``p`` (each sample of a batch independently)."""

    axis = -2


class Resize(Transform):
    """Resize the last two dimensions by nearest-neighbour or bilinear interpolation.

    Matches ``torch.nn.functional.interpolate(mode='nearest' | 'bilinear', align_corners=False)``
    (no antialiasing). uint8 images are interpolated in float32 and rounded back.

    Args:
        size: (height, width), or an int: the shorter edge becomes ``size``, keeping the aspect ratio.
        interpolation: ``'bilinear'`` (default) or ``'nearest'``.

    Shape:
        (..., H, W) -> (..., size[0], size[1]).

    Examples:
        >>> Resize(32)(numpy.zeros((1, 28, 28), numpy.float32)).shape   # LeNet-5 wants 32x32
        (1, 32, 32)
    """

    def __init__(self, size, interpolation: str = "bilinear"):
        self.size = size if isinstance(size, int) and not isinstance(size, bool) else ntuple(size, 2, "Resize", "size")
        if isinstance(self.size, int) and self.size < 1:
            raise invalid("Resize", "size", "a positive integer or (height, width)", size)
        if interpolation not in ("bilinear", "nearest"):
            raise invalid("Resize", "interpolation", "'bilinear' or 'nearest'", interpolation)
        self.interpolation = interpolation

    def output_size(self, height: int, width: int) -> tuple:
        if not isinstance(self.size, int):
            return self.size
        if height <= width:
            return self.size, max(1, int(self.size * width / height))
        return max(1, int(self.size * height / width)), self.size

    def apply(self, array, batched):
        self._check_spatial(array, batched)
        xp = backend.get_array_module(array)
        in_height, in_width = array.shape[-2:]
        out_height, out_width = self.output_size(in_height, in_width)
        if (out_height, out_width) == (in_height, in_width):
            return array
        work = array if array.dtype.kind == "f" else array.astype(xp.float32)
        if self.interpolation == "nearest":
            rows = _nearest_indices(xp, in_height, out_height)
            cols = _nearest_indices(xp, in_width, out_width)
            out = xp.take(xp.take(array, rows, axis=-2), cols, axis=-1)
            return out
        # Two gathers and a lerp per axis, not matrix products: BLAS threads would fight the
        # model's for the cores when this runs in the loader's prefetch thread.
        out = _linear_along(xp, work, in_height, out_height, axis=-2)
        out = _linear_along(xp, out, in_width, out_width, axis=-1)
        if array.dtype.kind != "f":
            info = xp.iinfo(array.dtype)
            return xp.clip(xp.rint(out), info.min, info.max).astype(array.dtype)
        return out


def _nearest_indices(xp, in_size, out_size):
    # PyTorch's 'nearest': source = floor(destination * in / out), in float32.
    scale = xp.float32(in_size / out_size)
    return xp.minimum(xp.floor(xp.arange(out_size, dtype=xp.float32) * scale).astype(xp.int64), in_size - 1)


@functools.lru_cache(maxsize=64)
def _linear_weights(in_size, out_size):
    """Source indices (low, high) and weights of 1-D linear interpolation, half-pixel centres.

    Output pixel ``o`` reads ``(o + 0.5) * in / out - 0.5`` clamped at the borders, as
    ``align_corners=False``.
    """
    source = numpy.maximum((numpy.arange(out_size) + 0.5) * (in_size / out_size) - 0.5, 0.0)
    low = numpy.minimum(numpy.floor(source).astype(numpy.int64), in_size - 1)
    high = numpy.minimum(low + 1, in_size - 1)
    return low, high, source - low


def _linear_along(xp, array, in_size, out_size, axis):
    """Linear interpolation along ``axis`` (-2 or -1)."""
    low, high, weight = _linear_weights(in_size, out_size)
    weight = xp.asarray(weight, dtype=array.dtype).reshape((-1, 1) if axis == -2 else (-1,))  # broadcast
    below = xp.take(array, xp.asarray(low), axis=axis)
    out = xp.take(array, xp.asarray(high), axis=axis)
    # In place: every fresh batch-sized temporary costs a page-faulting allocation.
    out -= below
    out *= weight
    out += below
    return out
