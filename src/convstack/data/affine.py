"""Rotations and affine maps of images: ``rotate``, ``affine``, ``RandomRotation``, ``RandomAffine``.

torchvision.transforms.v2's semantics (see ``_sampling`` for the geometry): ``rotate`` turns
counter-clockwise by ``angle`` degrees about the centre (as ``PIL.Image.rotate``); ``affine``
applies rotation (clockwise, torchvision's convention for ``affine``), scale, shear and a
translation in pixels, about ``center`` (default the image centre). Interpolation
``'nearest'`` (torchvision's default) or ``'bilinear'``; ``fill`` (default 0) paints what comes
from outside the image.

Random transforms draw one set of parameters per sample, for a batch too (torchvision draws
one per call); ``RandomRotation(expand=True)`` draws one angle per batch, since every image of
a batch must have the same size.
"""

from __future__ import annotations

import math
import numbers

import numpy

from convstack.data._sampling import (
    centre_offset,
    check_center,
    check_fill,
    expanded_size,
    interpolation_mode,
    inverse_affine_matrices,
    warp,
)
from convstack.data._transform import Transform, _unwrap, resolve_generator
from convstack.nn.functional._utils import invalid
from convstack.tensor import Tensor


def as_batch_of_images(array, batched: bool):
    """(..., H, W) data as (N, C, H, W) and the function that gives the result its layout back."""
    lead = array.shape[:-2]
    count = lead[0] if batched else 1
    channels = int(numpy.prod(lead[1:] if batched else lead, dtype=numpy.int64))
    four_d = array.reshape(count, channels, *array.shape[-2:])

    def restore(out):
        return out.reshape(*lead, *out.shape[-2:])

    return four_d, restore


def affine(img, angle, translate, scale, shear, interpolation="nearest", fill=0, center=None):
    """Apply one affine map to ``img`` (..., H, W): ``torchvision.transforms.v2.functional.affine``.

    Args:
        angle: rotation in degrees, clockwise on screen.
        translate: (tx, ty) in pixels (right, down).
        scale: zoom factor (> 0).
        shear: degrees; a number (x shear), or (shear_x, shear_y).
        interpolation: ``'nearest'`` or ``'bilinear'``.
        fill: the value of pixels coming from outside (None: plain zero padding).
        center: (x, y) in pixels, default the image centre.

    Shape:
        (..., H, W) -> (..., H, W).
    """
    shear = (float(shear), 0.0) if isinstance(shear, numbers.Real) else tuple(float(s) for s in shear)
    return _warp_one(img, [angle], [translate[0]], [translate[1]], [scale], [shear[0]], [shear[1]],
                     interpolation, fill, center)


def rotate(img, angle, interpolation="nearest", expand=False, center=None, fill=0):
    """Rotate ``img`` (..., H, W) counter-clockwise by ``angle`` degrees (``v2.functional.rotate``).

    With ``expand`` the output grows to hold the whole rotated image (``center`` is then ignored).
    """
    return _warp_one(img, [-(angle % 360.0)], [0.0], [0.0], [1.0], [0.0], [0.0], interpolation, fill,
                     None if expand else center, expand=expand)


def _warp_one(img, angle, tx, ty, scale, shear_x, shear_y, interpolation, fill, center, expand=False):
    array, wrap = _unwrap(img, "affine")
    four_d, restore = as_batch_of_images(array, batched=False)
    out = _apply(four_d, angle, tx, ty, scale, shear_x, shear_y, interpolation_mode(interpolation, "affine"),
                 check_fill(fill, "affine"), check_center(center, "affine"), expand)
    out = restore(out)
    return Tensor._make(out) if wrap else out


def _apply(four_d, angle, tx, ty, scale, shear_x, shear_y, interpolation, fill, center, expand=False):
    height, width = four_d.shape[-2:]
    cx, cy = centre_offset(center, width, height)
    matrices = inverse_affine_matrices(angle, tx, ty, scale, shear_x, shear_y, cx, cy)
    if len(matrices) == 1 and four_d.shape[0] > 1:
        matrices = numpy.repeat(matrices, four_d.shape[0], axis=0)
    out_size = expanded_size(matrices[0], width, height) if expand else None
    return warp(four_d, matrices, out_size, interpolation, fill)


def _range(value, op: str, argument: str, centred: bool = True, minimum=None):
    """A number d as (-d, d) (``centred``) or a pair (low, high), checked."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if value < 0:
            raise invalid(op, argument, "a non-negative number or a pair (min, max)", value)
        low, high = (-float(value), float(value)) if centred else (float(value), float(value))
    else:
        try:
            low, high = (float(v) for v in value)
        except (TypeError, ValueError):
            raise invalid(op, argument, "a number or a pair (min, max)", value) from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high or (minimum is not None and low < minimum):
        bound = f" with min >= {minimum}" if minimum is not None else ""
        raise invalid(op, argument, f"a pair (min, max) with min <= max{bound}", value)
    return low, high


class RandomRotation(Transform):
    """Rotate by an angle drawn uniformly from ``degrees`` (counter-clockwise, degrees).

    Args:
        degrees: d for (-d, d), or (min, max).
        interpolation: ``'nearest'`` (default) or ``'bilinear'``.
        expand: grow the output to hold the whole rotated image (one angle per batch then).
        center: (x, y) in pixels, default the image centre.
        fill: value of the pixels from outside the image (a number or one per channel).
        generator: a ``numpy.random.Generator`` (default: the loader's stream or convstack's default).

    Shape:
        (..., H, W) -> (..., H, W), or larger with ``expand``.

    Examples:
        >>> RandomRotation(15)(numpy.zeros((1, 28, 28), numpy.float32)).shape
        (1, 28, 28)
    """

    def __init__(self, degrees, interpolation="nearest", expand=False, center=None, fill=0, generator=None):
        self.degrees = _range(degrees, "RandomRotation", "degrees")
        self.interpolation = interpolation_mode(interpolation, "RandomRotation")
        self.expand = bool(expand)
        self.center = check_center(center, "RandomRotation")
        self.fill = check_fill(fill, "RandomRotation")
        self.generator = generator

    def apply(self, array, batched):
        self._check_spatial(array, batched)
        four_d, restore = as_batch_of_images(array, batched)
        count = 1 if self.expand else four_d.shape[0]
        angle = resolve_generator(self.generator).uniform(*self.degrees, size=count)
        zeros, ones = numpy.zeros(count), numpy.ones(count)
        # rotate(angle) is affine(-angle): torchvision's rotate turns counter-clockwise, affine clockwise.
        out = _apply(four_d, -(angle % 360.0), zeros, zeros, ones, zeros, zeros, self.interpolation, self.fill,
                     None if self.expand else self.center, self.expand)
        return restore(out)


class RandomAffine(Transform):
    """Random rotation, translation, scale and shear, each sample its own (torchvision's ``RandomAffine``).

    Args:
        degrees: rotation range, d for (-d, d) or (min, max); clockwise (torchvision's ``affine``).
        translate: (a, b): horizontal shift drawn from (-a W, a W) and vertical from (-b H, b H),
            rounded to whole pixels; None for none.
        scale: (min, max) zoom; None for 1.
        shear: degrees: s for an x shear in (-s, s), (min, max) for x, or (xmin, xmax, ymin, ymax).
        interpolation, fill, center, generator: as ``RandomRotation``.

    Shape:
        (..., H, W) -> (..., H, W).
    """

    def __init__(self, degrees, translate=None, scale=None, shear=None, interpolation="nearest", fill=0,
                 center=None, generator=None):
        op = "RandomAffine"
        self.degrees = _range(degrees, op, "degrees")
        if translate is not None:
            try:
                translate = tuple(float(t) for t in translate)
            except (TypeError, ValueError):
                translate = ()
            if len(translate) != 2 or not all(0.0 <= t <= 1.0 for t in translate):
                raise invalid(op, "translate", "None or a pair of fractions in [0, 1]", translate)
        self.translate = translate
        self.scale = None if scale is None else _range(scale, op, "scale", centred=False, minimum=0.0)
        if self.scale is not None and self.scale[0] <= 0:
            raise invalid(op, "scale", "a pair (min, max) of positive numbers", scale)
        self.shear = None if shear is None else self._shear(shear)
        self.interpolation = interpolation_mode(interpolation, op)
        self.fill = check_fill(fill, op)
        self.center = check_center(center, op)
        self.generator = generator

    @staticmethod
    def _shear(shear):
        if isinstance(shear, numbers.Real) or len(shear) == 2:
            return _range(shear, "RandomAffine", "shear")
        if len(shear) == 4:
            return _range(shear[:2], "RandomAffine", "shear") + _range(shear[2:], "RandomAffine", "shear")
        raise invalid("RandomAffine", "shear", "a number, or 2 or 4 numbers", shear)

    def sample_parameters(self, generator, count: int, height: int, width: int) -> dict:
        """Angle, translation, scale and shears for ``count`` samples (arrays of length ``count``)."""
        angle = generator.uniform(*self.degrees, size=count)
        tx = ty = numpy.zeros(count)
        if self.translate is not None:
            max_dx, max_dy = self.translate[0] * width, self.translate[1] * height
            tx = numpy.rint(generator.uniform(-max_dx, max_dx, size=count))
            ty = numpy.rint(generator.uniform(-max_dy, max_dy, size=count))
        scale = numpy.ones(count) if self.scale is None else generator.uniform(*self.scale, size=count)
        shear_x = shear_y = numpy.zeros(count)
        if self.shear is not None:
            shear_x = generator.uniform(*self.shear[:2], size=count)
            if len(self.shear) == 4:
                shear_y = generator.uniform(*self.shear[2:], size=count)
        return dict(angle=angle, tx=tx, ty=ty, scale=scale, shear_x=shear_x, shear_y=shear_y)

    def apply(self, array, batched):
        self._check_spatial(array, batched)
        four_d, restore = as_batch_of_images(array, batched)
        height, width = four_d.shape[-2:]
        p = self.sample_parameters(resolve_generator(self.generator), four_d.shape[0], height, width)
        out = _apply(four_d, p["angle"], p["tx"], p["ty"], p["scale"], p["shear_x"], p["shear_y"],
                     self.interpolation, self.fill, self.center)
        return restore(out)
