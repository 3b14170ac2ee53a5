"""Batch transforms that mix images and labels: ``MixUp``, ``CutMix`` and ``RandomChoice``.

Called on a whole batch, ``transform(images, labels)``, they return the mixed images and soft
labels (N, num_classes) that ``F.cross_entropy`` accepts as class probabilities, with
torchvision.transforms.v2's rules: each image is mixed with the one before it in the batch
(``roll(1, 0)``), with one ratio λ ~ Beta(alpha, alpha) per batch.

* MixUp (Zhang et al. 2018): ``λ x + (1 - λ) x_rolled``, labels likewise.
* CutMix (Yun et al. 2019): a box of area about ``(1 - λ) H W`` centred on a uniform point
  (clipped at the borders) is pasted from the rolled batch; the labels mix with the
  box's actual share of the image.

Use them in the training loop, or as the DataLoader's ``batch_transform``::

    mix = RandomChoice([MixUp(alpha=0.2, num_classes=10), CutMix(alpha=1.0, num_classes=10)])
    loader = DataLoader(train, batch_size=128, shuffle=True, batch_transform=mix)
"""

from __future__ import annotations

import math
import numbers

from convstack import backend
from convstack.data._transform import resolve_generator
from convstack.nn.functional._utils import invalid
from convstack.tensor import Tensor


def _raw(value):
    return (value.data, True) if isinstance(value, Tensor) else (value, False)


class _MixBase:
    def __init__(self, alpha, num_classes, generator):
        op = type(self).__name__
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not (alpha > 0 and math.isfinite(alpha)):
            raise invalid(op, "alpha", "a positive number (the Beta distribution's parameter)", alpha)
        if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                        or num_classes < 1):
            raise invalid(op, "num_classes", "None or a positive integer", num_classes)
        self.alpha = float(alpha)
        self.num_classes = num_classes
        self.generator = generator

    def __call__(self, images, labels):
        op = type(self).__name__
        array, wrap_images = _raw(images)
        targets, wrap_labels = _raw(labels)
        xp = backend.get_array_module(array)
        if array.ndim < 2 or array.dtype.kind != "f":
            raise ValueError(f"{op}: expected a float batch of images (N, C, H, W), received "
                             f"{array.dtype} {tuple(array.shape)}")
        soft = self._soft_labels(targets, array.shape[0], xp, array.dtype)
        generator = resolve_generator(self.generator)
        mixed, soft = self.mix(array, soft, generator)
        return (Tensor._make(mixed) if wrap_images else mixed), (Tensor._make(soft) if wrap_labels else soft)

    def _soft_labels(self, targets, count, xp, dtype):
        op = type(self).__name__
        targets = xp.asarray(targets)
        if targets.ndim == 1 and targets.dtype.kind in "iu":
            if self.num_classes is None:
                raise ValueError(f"{op}: class-index labels need num_classes (e.g. {op}(alpha=1.0, num_classes=10))")
            if targets.size and (int(targets.min()) < 0 or int(targets.max()) >= self.num_classes):
                raise ValueError(f"{op}: labels must lie in [0, {self.num_classes}), received values from "
                                 f"{int(targets.min())} to {int(targets.max())}")
            soft = xp.zeros((targets.shape[0], self.num_classes), dtype=dtype)
            soft[xp.arange(targets.shape[0]), targets] = 1
        elif targets.ndim == 2 and targets.dtype.kind == "f":
            soft = targets.astype(dtype, copy=False)
        else:
            raise ValueError(f"{op}: expected labels (N,) of class indices or (N, num_classes) probabilities, "
                             f"received {targets.dtype} {tuple(targets.shape)}")
        if soft.shape[0] != count:
            raise ValueError(f"{op}: {count} images but {soft.shape[0]} labels")
        return soft

    @staticmethod
    def _mix_labels(soft, lam):
        xp = backend.get_array_module(soft)
        return soft * lam + xp.roll(soft, 1, axis=0) * (1.0 - lam)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha}, num_classes={self.num_classes})"


class MixUp(_MixBase):
    """Blend each image and label with the previous one in the batch, by λ ~ Beta(alpha, alpha).

    Args:
        alpha: the Beta distribution's parameter (1.0: λ uniform; 0.2 is a common choice).
        num_classes: width of the soft labels (needed for class-index labels).
        generator: a ``numpy.random.Generator`` (default: the loader's stream or convstack's default).

    Shape:
        images (N, C, H, W) float, labels (N,) int or (N, num_classes) float ->
        images (N, C, H, W), labels (N, num_classes).

    Examples:
        >>> mixup = MixUp(alpha=1.0, num_classes=3)
        >>> images, labels = mixup(numpy.zeros((4, 1, 2, 2), numpy.float32), numpy.arange(4) % 3)
        >>> labels.shape
        (4, 3)
    """

    def __init__(self, alpha=1.0, num_classes=None, generator=None):
        super().__init__(alpha, num_classes, generator)

    def mix(self, images, soft, generator):
        xp = backend.get_array_module(images)
        lam = float(generator.beta(self.alpha, self.alpha))
        mixed = images * images.dtype.type(lam) + xp.roll(images, 1, axis=0) * images.dtype.type(1.0 - lam)
        return mixed, self._mix_labels(soft, lam)


class CutMix(_MixBase):
    """Paste a box from the previous image of the batch; labels mix by the box's area.

    Args:
        alpha: the Beta distribution's parameter (1.0 as in the paper).
        num_classes: width of the soft labels (needed for class-index labels).
        generator: a ``numpy.random.Generator`` (default: the loader's stream or convstack's default).

    Shape:
        as ``MixUp``.
    """

    def __init__(self, alpha=1.0, num_classes=None, generator=None):
        super().__init__(alpha, num_classes, generator)

    @staticmethod
    def box(lam: float, height: int, width: int, generator) -> tuple[int, int, int, int]:
        """(x1, y1, x2, y2): torchvision's box of about (1 - lam) of the area, centre uniform."""
        centre_x, centre_y = int(generator.integers(width)), int(generator.integers(height))
        r = 0.5 * math.sqrt(1.0 - lam)
        half_w, half_h = int(r * width), int(r * height)
        return (max(centre_x - half_w, 0), max(centre_y - half_h, 0),
                min(centre_x + half_w, width), min(centre_y + half_h, height))

    def mix(self, images, soft, generator):
        xp = backend.get_array_module(images)
        lam = float(generator.beta(self.alpha, self.alpha))
        height, width = images.shape[-2:]
        x1, y1, x2, y2 = self.box(lam, height, width, generator)
        mixed = images.copy()
        mixed[..., y1:y2, x1:x2] = xp.roll(images, 1, axis=0)[..., y1:y2, x1:x2]
        share = 1.0 - (x2 - x1) * (y2 - y1) / (width * height)
        return mixed, self._mix_labels(soft, share)


class RandomChoice:
    """Apply one of ``transforms``, drawn per call with probabilities ``p`` (default uniform).

    Works for batch transforms such as ``[MixUp(...), CutMix(...)]`` (called with
    ``(images, labels)``) and for ordinary ones (called with one argument).
    """

    def __init__(self, transforms, p=None, generator=None):
        self.transforms = list(transforms)
        if not self.transforms or not all(callable(t) for t in self.transforms):
            raise invalid("RandomChoice", "transforms", "a non-empty list of callables", transforms)
        if p is None:
            p = [1.0] * len(self.transforms)
        p = [float(v) for v in p]
        if len(p) != len(self.transforms) or any(v < 0 for v in p) or sum(p) <= 0:
            raise invalid("RandomChoice", "p", f"{len(self.transforms)} non-negative weights, not all 0", p)
        self.p = [v / sum(p) for v in p]
        self.generator = generator

    def __call__(self, *inputs):
        generator = resolve_generator(self.generator)
        index = int(generator.choice(len(self.transforms), p=self.p))
        return self.transforms[index](*inputs)

    def __repr__(self) -> str:
        return f"RandomChoice({self.transforms!r}, p={self.p})"

