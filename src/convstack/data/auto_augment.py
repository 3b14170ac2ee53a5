"""Automatic augmentation policies: ``TrivialAugmentWide`` and ``RandAugment``.

TrivialAugment (Müller & Hutter 2021) applies one operation per image, drawn uniformly, at a
magnitude drawn uniformly from ``num_magnitude_bins`` levels; RandAugment (Cubuk et al. 2020)
applies ``num_ops`` operations in turn, each drawn uniformly, all at the fixed level
``magnitude``. Signed operations (shears, translations, rotation, the enhancers) take either
sign with probability 1/2. The operations, their magnitude ranges and their semantics are
torchvision.transforms.v2's (``_AUGMENTATION_SPACE`` of each, ``_apply_image_or_video_transform``):

    Identity, ShearX/Y (shear = atan(m) about the top-left corner), TranslateX/Y (int(m) pixels),
    Rotate (m degrees, counter-clockwise), Brightness/Color/Contrast/Sharpness (factor 1 + m),
    Posterize (int(m) bits), Solarize (threshold m x bound), AutoContrast, Equalize

Each image of a batch draws its own operations and magnitudes; the images that drew the same
operation are transformed together, one vectorised call per operation.
"""

from __future__ import annotations

import numpy

from convstack.data import color, tone
from convstack.data._sampling import check_fill, interpolation_mode
from convstack.data._transform import Transform, resolve_generator
from convstack.data.affine import _apply as _affine
from convstack.data.color import as_nchw
from convstack.nn.functional._utils import invalid


def _shear(axis):
    def apply(images, magnitudes, interpolation, fill):
        shear = numpy.degrees(numpy.arctan(magnitudes))
        zeros, ones = numpy.zeros_like(shear), numpy.ones_like(shear)
        shear_x, shear_y = (shear, zeros) if axis == "x" else (zeros, shear)
        return _affine(images, zeros, zeros, zeros, ones, shear_x, shear_y, interpolation, fill, center=(0.0, 0.0))

    return apply


def _translate(axis):
    def apply(images, magnitudes, interpolation, fill):
        shift = numpy.trunc(magnitudes)  # int(m), as torchvision
        zeros, ones = numpy.zeros_like(shift), numpy.ones_like(shift)
        tx, ty = (shift, zeros) if axis == "x" else (zeros, shift)
        return _affine(images, zeros, tx, ty, ones, zeros, zeros, interpolation, fill, center=None)

    return apply


def _rotate(images, magnitudes, interpolation, fill):
    zeros, ones = numpy.zeros_like(magnitudes), numpy.ones_like(magnitudes)
    return _affine(images, -(magnitudes % 360.0), zeros, zeros, ones, zeros, zeros, interpolation, fill, center=None)


def _enhance(kernel):
    def apply(images, magnitudes, interpolation, fill):
        return kernel(images, 1.0 + magnitudes)

    return apply


def _posterize(images, magnitudes, interpolation, fill):
    return tone.posterize_batch(images, magnitudes.astype(numpy.int64))


def _solarize(images, magnitudes, interpolation, fill):
    return tone.solarize_batch(images, color.bound_of(images.dtype) * magnitudes)


def _no_magnitude(kernel):
    def apply(images, magnitudes, interpolation, fill):
        return kernel(images)

    return apply


#: Operation name -> how it transforms a group of images (images, magnitudes, interpolation, fill).
OPERATIONS = {
    "Identity": None,
    "ShearX": _shear("x"),
    "ShearY": _shear("y"),
    "TranslateX": _translate("x"),
    "TranslateY": _translate("y"),
    "Rotate": _rotate,
    "Brightness": _enhance(color.brightness_batch),
    "Color": _enhance(color.saturation_batch),
    "Contrast": _enhance(color.contrast_batch),
    "Sharpness": _enhance(tone.sharpness_batch),
    "Posterize": _posterize,
    "Solarize": _solarize,
    "AutoContrast": _no_magnitude(tone.autocontrast_batch),
    "Equalize": _no_magnitude(tone.equalize_batch),
}
SIGNED = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast", "Sharpness"}


def _posterize_bits(bins: int, span: int):
    return (8 - numpy.rint(numpy.arange(bins) / ((bins - 1) / span))).astype(numpy.float64)


def trivial_augment_space(bins: int, height: int, width: int) -> dict:
    """TrivialAugmentWide's magnitude levels per operation (None: the operation has no magnitude)."""
    levels = lambda high: numpy.linspace(0.0, high, bins)  # noqa: E731
    return {
        "Identity": None, "ShearX": levels(0.99), "ShearY": levels(0.99), "TranslateX": levels(32.0),
        "TranslateY": levels(32.0), "Rotate": levels(135.0), "Brightness": levels(0.99), "Color": levels(0.99),
        "Contrast": levels(0.99), "Sharpness": levels(0.99), "Posterize": _posterize_bits(bins, 6),
        "Solarize": numpy.linspace(1.0, 0.0, bins), "AutoContrast": None, "Equalize": None,
    }


def rand_augment_space(bins: int, height: int, width: int) -> dict:
    """RandAugment's magnitude levels per operation (translations scale with the image)."""
    levels = lambda high: numpy.linspace(0.0, high, bins)  # noqa: E731
    return {
        "Identity": None, "ShearX": levels(0.3), "ShearY": levels(0.3),
        "TranslateX": levels(150.0 / 331.0 * width), "TranslateY": levels(150.0 / 331.0 * height),
        "Rotate": levels(30.0), "Brightness": levels(0.9), "Color": levels(0.9), "Contrast": levels(0.9),
        "Sharpness": levels(0.9), "Posterize": _posterize_bits(bins, 4), "Solarize": numpy.linspace(1.0, 0.0, bins),
        "AutoContrast": None, "Equalize": None,
    }


class _AutoAugment(Transform):
    def __init__(self, num_magnitude_bins, interpolation, fill, generator):
        op = type(self).__name__
        if isinstance(num_magnitude_bins, bool) or not isinstance(num_magnitude_bins, int) or num_magnitude_bins < 2:
            raise invalid(op, "num_magnitude_bins", "an integer >= 2", num_magnitude_bins)
        self.num_magnitude_bins = num_magnitude_bins
        self.interpolation = interpolation_mode(interpolation, op)
        self.fill = check_fill(fill, op)
        self.generator = generator

    def _round(self, images, space, generator, bins):
        """One operation per image: drawn, given its magnitude and sign, applied group by group."""
        names = list(space)
        count = images.shape[0]
        chosen = generator.integers(len(names), size=count)
        level = generator.integers(self.num_magnitude_bins, size=count) if bins is None else numpy.full(count, bins)
        negate = generator.integers(2, size=count) == 1
        out = images.copy()
        for index, name in enumerate(names):
            members = numpy.flatnonzero(chosen == index)
            if members.size == 0 or OPERATIONS[name] is None:
                continue
            magnitudes = numpy.zeros(members.size) if space[name] is None else space[name][level[members]]
            if name in SIGNED:
                magnitudes = numpy.where(negate[members], -magnitudes, magnitudes)
            out[members] = OPERATIONS[name](out[members], magnitudes, self.interpolation, self.fill)
        return out


class TrivialAugmentWide(_AutoAugment):
    """One random operation per image at a random magnitude (Müller & Hutter 2021, the "wide" space).

    Args:
        num_magnitude_bins: magnitude levels (31 as torchvision).
        interpolation: ``'nearest'`` (default) or ``'bilinear'`` for the geometric operations.
        fill: value of pixels coming from outside the image (None: zero).
        generator: a ``numpy.random.Generator`` (default: the loader's stream or convstack's default).

    Images are float in [0, 1] or uint8, with 1 or 3 channels: put it before ``Normalize``.

    Shape:
        (C, H, W) -> (C, H, W); batched (N, C, H, W).
    """

    def __init__(self, num_magnitude_bins=31, interpolation="nearest", fill=None, generator=None):
        super().__init__(num_magnitude_bins, interpolation, fill, generator)

    def apply(self, array, batched):
        images = as_nchw(array, batched, "TrivialAugmentWide")
        space = trivial_augment_space(self.num_magnitude_bins, *images.shape[-2:])
        out = self._round(images, space, resolve_generator(self.generator), bins=None)
        return out.reshape(array.shape)


class RandAugment(_AutoAugment):
    """``num_ops`` random operations per image at the fixed level ``magnitude`` (Cubuk et al. 2020).

    Args:
        num_ops: operations applied in turn.
        magnitude: the level, in [0, num_magnitude_bins).
        num_magnitude_bins: levels (31 as torchvision).
        interpolation, fill, generator: as ``TrivialAugmentWide``.

    Shape:
        (C, H, W) -> (C, H, W); batched (N, C, H, W).
    """

    def __init__(self, num_ops=2, magnitude=9, num_magnitude_bins=31, interpolation="nearest", fill=None,
                 generator=None):
        super().__init__(num_magnitude_bins, interpolation, fill, generator)
        if isinstance(num_ops, bool) or not isinstance(num_ops, int) or num_ops < 0:
            raise invalid("RandAugment", "num_ops", "a non-negative integer", num_ops)
        if isinstance(magnitude, bool) or not isinstance(magnitude, int) or not 0 <= magnitude < num_magnitude_bins:
            raise invalid("RandAugment", "magnitude", f"an integer in [0, {num_magnitude_bins})", magnitude)
        self.num_ops = num_ops
        self.magnitude = magnitude

    def apply(self, array, batched):
        images = as_nchw(array, batched, "RandAugment")
        space = rand_augment_space(self.num_magnitude_bins, *images.shape[-2:])
        generator = resolve_generator(self.generator)
        out = images
        for _ in range(self.num_ops):
            out = self._round(out, space, generator, bins=self.magnitude)
        return out.reshape(array.shape)

