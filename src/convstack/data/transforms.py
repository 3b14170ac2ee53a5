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

import numpy

from convstack import backend
from convstack.data._transform import (
    Compose,
    Transform,
    _stack,
    apply_batch,
    resolve_generator,
    use_generator,
)
from convstack.data.geometric import Pad, RandomCrop, RandomHorizontalFlip, RandomVerticalFlip, Resize
from convstack.nn.functional._utils import invalid
from convstack.tensor import Tensor

__all__ = [
    "Transform", "Compose", "ToTensor", "Normalize", "Pad", "RandomCrop", "RandomHorizontalFlip",
    "RandomVerticalFlip", "Resize", "apply_batch", "resolve_generator", "use_generator",
]


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
