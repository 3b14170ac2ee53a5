"""Image transforms that work on one sample and, vectorised, on a whole batch.

Every transform here is called as ``transform(sample)`` on one image and as
``transform.batch(images)`` on a batch whose first dimension is the sample index; the
batch form is one array operation, with random transforms drawing one value per sample.
``apply_batch`` uses ``.batch`` when a transform has it and calls any other callable once
per sample, so user functions still work (only slower).

Layouts: ``ToTensor`` accepts HxW, HxWxC or CxHxW uint8 arrays (or PIL images) and
returns float32 CxHxW in [0, 1]; every other transform works on channel-first data and
touches only the last two dimensions (..., H, W). Tensors in give Tensors out; arrays in
give arrays out (``ToTensor`` always gives a Tensor).

Random transforms draw from their ``generator`` argument, else from the stream the
DataLoader sets for the epoch (derived from its shuffle generator, so prefetching does
not change the numbers), else from ``convstack.random.default_generator()``: either way
``convstack.manual_seed`` makes them reproducible.
"""

from __future__ import annotations

import contextlib
import functools
import threading

import numpy

from convstack import backend
from convstack.nn.functional._utils import invalid, ntuple
from convstack.random import default_generator
from convstack.tensor import Tensor

_local = threading.local()


def resolve_generator(generator=None) -> numpy.random.Generator:
    """``generator`` if given, else the loader's stream for this thread, else the default generator."""
    if generator is not None:
        return generator
    current = getattr(_local, "generator", None)
    return current if current is not None else default_generator()


@contextlib.contextmanager
def use_generator(generator):
    """Within the block (and this thread), transforms without a generator draw from ``generator``."""
    previous = getattr(_local, "generator", None)
    _local.generator = generator
    try:
        yield generator
    finally:
        _local.generator = previous


def _unwrap(value, op):
    if isinstance(value, Tensor):
        return value.data, True
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return value, False
    if type(value).__module__.startswith("PIL."):
        raise TypeError(f"{op}: received a PIL image; put ToTensor() first to convert it")
    return numpy.asarray(value), False


def _stack(outputs):
    if isinstance(outputs[0], Tensor):
        xp = backend.get_array_module(outputs[0].data)
        return Tensor._make(xp.stack([o.data for o in outputs]))
    xp = backend.get_array_module(outputs[0])
    return xp.stack([xp.asarray(o) for o in outputs])


def apply_batch(transform, batch):
    """``transform`` applied to every sample of ``batch``: vectorised when it has ``.batch``."""
    if transform is None:
        return batch
    vectorised = getattr(transform, "batch", None)
    if callable(vectorised):
        return vectorised(batch)
    if isinstance(batch, Tensor):
        return _stack([transform(Tensor._make(sample)) for sample in batch.data])
    return _stack([transform(sample) for sample in batch])


class Transform:
    """Base class: subclasses implement ``apply(array, batched)`` on raw arrays."""

    def __call__(self, sample):
        array, wrap = _unwrap(sample, type(self).__name__)
        out = self.apply(array, batched=False)
        return Tensor._make(out) if wrap else out

    def batch(self, samples):
        array, wrap = _unwrap(samples, type(self).__name__)
        out = self.apply(array, batched=True)
        return Tensor._make(out) if wrap else out

    def apply(self, array, batched: bool):
        raise NotImplementedError

    def _check_spatial(self, array, batched):
        if array.ndim < 2 + batched:
            raise ValueError(
                f"{type(self).__name__}: expected {'a batch (N, ..., H, W)' if batched else 'an image (..., H, W)'}, "
                f"received shape {tuple(array.shape)}"
            )

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class Compose:
    """Apply ``transforms`` in order; ``batch`` vectorises each one that can be."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, sample):
        for transform in self.transforms:
            sample = transform(sample)
        return sample

    def batch(self, samples):
        for transform in self.transforms:
            samples = apply_batch(transform, samples)
        return samples

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(repr(t) for t in self.transforms) + "])"


class ToTensor(Transform):
    """uint8 images (or PIL images) to float32 Tensors (C, H, W) in [0, 1]; floats are cast, not scaled.

    Args:
        layout: ``'HWC'`` or ``'CHW'`` for 3-D images; ``None`` guesses: channel-first when the
            first dimension is 1, 3 or 4 and the last is not, otherwise channel-last (as PIL
            and ``torchvision.transforms.ToTensor``).

    Shape:
        (H, W), (H, W, C) or (C, H, W) -> (C, H, W); batched, (N, ...) -> (N, C, H, W).
    """

    def __init__(self, layout: str | None = None):
        if layout not in (None, "HWC", "CHW"):
            raise invalid("ToTensor", "layout", "None, 'HWC' or 'CHW'", layout)
        self.layout = layout

    def __call__(self, sample):
        if type(sample).__module__.startswith("PIL."):
            sample = numpy.asarray(sample)
        array = sample.data if isinstance(sample, Tensor) else sample
        return Tensor._make(self.apply(array if hasattr(array, "shape") else numpy.asarray(array), batched=False))

    def batch(self, samples):
        if isinstance(samples, (list, tuple)):
            return _stack([self(sample) for sample in samples])
        array = samples.data if isinstance(samples, Tensor) else samples
        return Tensor._make(self.apply(array if hasattr(array, "shape") else numpy.asarray(array), batched=True))

    def apply(self, array, batched):
        xp = backend.get_array_module(array)
        rank = array.ndim - batched
        if rank == 2:
            array = array[..., None, :, :]  # (..., 1, H, W)
        elif rank == 3:
            channel_first = self.layout == "CHW" or (
                self.layout is None and array.shape[-3] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4)
            )
            if not channel_first:
                array = xp.moveaxis(array, -1, -3)  # (..., H, W, C) -> (..., C, H, W)
        else:
            raise ValueError(
                f"ToTensor: expected {'a batch of ' if batched else 'an '}image of shape (H, W), (H, W, C) or "
                f"(C, H, W){' with a leading batch dimension' if batched else ''}, received shape {tuple(array.shape)}"
            )
        if array.dtype == xp.uint8:
            return xp.ascontiguousarray(xp.divide(array, xp.float32(255), dtype=xp.float32))
        if array.dtype.kind == "f":
            return xp.ascontiguousarray(array, dtype=xp.float32)
        raise TypeError(f"ToTensor: expected uint8 or floating-point images, received dtype {array.dtype}")


class Normalize(Transform):
    """Per channel ``(x - mean[c]) / std[c]`` on float images (C, H, W) or batches (N, C, H, W).

    Args:
        mean, std: one value per channel (or one value for all); see ``channel_stats``.

    Examples:
        >>> Normalize((0.2860,), (0.3530,))   # Fashion-MNIST training split
        Normalize(mean=(0.286,), std=(0.353,))
    """

    def __init__(self, mean, std):
        self.mean = tuple(float(m) for m in numpy.atleast_1d(mean))
        self.std = tuple(float(s) for s in numpy.atleast_1d(std))
        if len(self.mean) != len(self.std) or not all(s > 0 for s in self.std):
            raise invalid("Normalize", "std", f"{len(self.mean)} positive values (one per mean)", std)

    def apply(self, array, batched):
        if array.dtype.kind != "f":
            raise TypeError(f"Normalize: expected floating-point images (put ToTensor() first), received {array.dtype}")
        self._check_spatial(array, batched)
        xp = backend.get_array_module(array)
        channels = array.shape[-3] if array.ndim - batched >= 3 else 1
        if len(self.mean) not in (1, channels):
            raise ValueError(
                f"Normalize: {len(self.mean)} means for images with {channels} channels (shape {tuple(array.shape)})"
            )
        per_channel = (-1, 1, 1) if array.ndim - batched >= 3 else (-1, 1)  # (C, 1, 1), or (1, 1) for (H, W)
        mean = xp.asarray(self.mean, dtype=array.dtype).reshape(per_channel)
        scale = xp.asarray([1.0 / s for s in self.std], dtype=array.dtype).reshape(per_channel)
        return (array - mean) * scale


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
