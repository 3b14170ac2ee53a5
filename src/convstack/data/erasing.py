"""``RandomErasing`` (Zhong et al. 2020, "Random erasing data augmentation"), torchvision.v2's rule.

With probability ``p`` a rectangle is erased: its area a fraction of the image drawn from
``scale``, its aspect ratio (height / width) log-uniform in ``ratio``, up to 10 draws until
it fits strictly inside the image (else nothing is erased), then a uniformly drawn position.
Each sample of a batch draws its own rectangle: one boolean mask per batch, no loop.
"""

from __future__ import annotations

import math
import numbers

import numpy

from convstack import backend
from convstack.data._transform import Transform, resolve_generator
from convstack.data.color import as_nchw
from convstack.nn.functional._utils import invalid


class RandomErasing(Transform):
    """Erase a random rectangle of each image with probability ``p``.

    Args:
        p: probability that an image is erased.
        scale: (min, max) fraction of the image area erased.
        ratio: (min, max) aspect ratio (height / width) of the rectangle.
        value: what fills the rectangle: a number, one number per channel, or ``'random'``
            (standard normal noise per pixel: use it after ``Normalize``).
        inplace: write into the input instead of a copy.
        generator: a ``numpy.random.Generator`` (default: the loader's stream or convstack's default).

    Shape:
        (C, H, W) -> (C, H, W); batched (N, C, H, W).

    Examples:
        >>> float(RandomErasing(p=1.0, value=0)(numpy.ones((1, 8, 8), numpy.float32)).min())
        0.0
    """

    def __init__(self, p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0, inplace=False, generator=None):
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise invalid("RandomErasing", "p", "a probability in [0, 1]", p)
        self.p = float(p)
        self.scale = self._pair(scale, "scale", upper=1.0)
        self.ratio = self._pair(ratio, "ratio")
        if isinstance(value, str):
            if value != "random":
                raise invalid("RandomErasing", "value", "a number, one number per channel or 'random'", value)
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            value = (float(value),)
        else:
            try:
                value = tuple(float(v) for v in value)
            except (TypeError, ValueError):
                raise invalid("RandomErasing", "value", "a number, one number per channel or 'random'",
                              value) from None
        self.value = value
        self.inplace = bool(inplace)
        self.generator = generator

    @staticmethod
    def _pair(value, argument, upper=math.inf):
        try:
            low, high = (float(v) for v in value)
        except (TypeError, ValueError):
            raise invalid("RandomErasing", argument, "a pair (min, max)", value) from None
        if not 0 < low <= high <= upper:
            limit = "" if upper == math.inf else f" <= {upper:g}"
            raise invalid("RandomErasing", argument, f"a pair (min, max) with 0 < min <= max{limit}", value)
        return low, high

    def sample_boxes(self, generator, count: int, height: int, width: int):
        """(erase?, top, left, box height, box width) for ``count`` images (arrays)."""
        erase = generator.random(count) < self.p
        area = height * width * generator.uniform(*self.scale, size=(count, 10))
        aspect = numpy.exp(generator.uniform(math.log(self.ratio[0]), math.log(self.ratio[1]), size=(count, 10)))
        box_h = numpy.rint(numpy.sqrt(area * aspect)).astype(numpy.int64)
        box_w = numpy.rint(numpy.sqrt(area / aspect)).astype(numpy.int64)
        fits = (box_h < height) & (box_w < width)
        first = fits.argmax(axis=1)
        erase &= fits.any(axis=1)
        box_h, box_w = box_h[numpy.arange(count), first], box_w[numpy.arange(count), first]
        top = numpy.floor(generator.random(count) * (height - box_h + 1)).astype(numpy.int64)
        left = numpy.floor(generator.random(count) * (width - box_w + 1)).astype(numpy.int64)
        return erase, top, left, box_h, box_w

    def apply(self, array, batched):
        images = as_nchw(array, batched, "RandomErasing")
        xp = backend.get_array_module(images)
        count, channels, height, width = images.shape
        if self.value != "random" and len(self.value) not in (1, channels):
            raise ValueError(
                f"RandomErasing: {len(self.value)} fill values for images with {channels} channels; "
                f"expected 1 or {channels}"
            )
        generator = resolve_generator(self.generator)
        erase, top, left, box_h, box_w = self.sample_boxes(generator, count, height, width)
        rows = numpy.arange(height)[None, :, None]
        cols = numpy.arange(width)[None, None, :]
        mask = ((rows >= top[:, None, None]) & (rows < (top + box_h)[:, None, None])
                & (cols >= left[:, None, None]) & (cols < (left + box_w)[:, None, None]) & erase[:, None, None])
        mask = xp.asarray(mask)[:, None]  # (N, 1, H, W)
        if self.value == "random":
            fill = xp.asarray(generator.standard_normal(images.shape), dtype=images.dtype)
        else:
            fill = xp.asarray(self.value, dtype=numpy.float64).reshape(1, -1, 1, 1).astype(images.dtype)
        if self.inplace:
            xp.copyto(images, xp.broadcast_to(fill, images.shape), where=mask)
            return images.reshape(array.shape)
        return xp.where(mask, fill, images).reshape(array.shape)
