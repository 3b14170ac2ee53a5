"""Augmentation recipes: what ``convstack train --augment standard|strong`` means for each kind of data.

Three kinds of image data, three recipes (all but the last step work on float images in
[0, 1]; ``Normalize`` comes after them, ``RandomErasing`` after it, so that it erases to the
mean):

=========  ====================================  =================================================
kind       standard                              strong (standard, then ...)
=========  ====================================  =================================================
natural    pad-crop (padding side / 8, CIFAR's   TrivialAugmentWide, RandomErasing(p=0.25)
           4 at 32 px) + horizontal flip;
           from 64 px: RandomResizedCrop + flip
clothing   pad-crop (padding 4 at 28 px) +       TrivialAugmentWide, RandomErasing(p=0.25)
           horizontal flip
digits     pad-crop (padding 2), no flip         RandomAffine(10 deg, 10% shift, 0.9-1.1 zoom,
                                                 10 deg shear), RandomErasing(p=0.25)
=========  ====================================  =================================================

Why the digits differ: a mirrored 2, 3, 4, 5, 7 or 9 is not that digit any more (and some
become another), so no flip; and TrivialAugment's rotations up to 135 degrees turn 6 into 9,
so the strong recipe keeps to small affine changes. Clothing is left-right symmetric, or
(shoes, which Fashion-MNIST shows facing left) still the same class when mirrored.
"""

from __future__ import annotations

from convstack.data.affine import RandomAffine
from convstack.data.auto_augment import TrivialAugmentWide
from convstack.data.crop import RandomResizedCrop
from convstack.data.erasing import RandomErasing
from convstack.data.geometric import RandomCrop, RandomHorizontalFlip
from convstack.data.transforms import Compose, Normalize, ToTensor
from convstack.nn.functional._utils import invalid

LEVELS = ("none", "standard", "strong")
KINDS = ("natural", "clothing", "digits")
#: The kind of each dataset ``convstack train`` knows by name; image folders count as natural images.
DATASET_KINDS = {"cifar10": "natural", "cifar100": "natural", "fashion-mnist": "clothing", "mnist": "digits"}
#: ``convstack train``'s level when ``--augment`` is left out: natural images (CIFAR-style training) get crops
#: and flips; the MNIST-style sets stay unaugmented, as their reference runs and figures were made.
DEFAULT_LEVELS = {"natural": "standard", "clothing": "none", "digits": "none"}


def dataset_kind(name: str) -> str:
    """``'natural'``, ``'clothing'`` or ``'digits'`` for a dataset name (``folder:...``: natural)."""
    return DATASET_KINDS.get(name, "natural")


def default_level(dataset: str) -> str:
    """The augmentation level ``convstack train`` uses on ``dataset`` when ``--augment`` is not given."""
    return DEFAULT_LEVELS[dataset_kind(dataset)]


def _standard(kind: str, side: int) -> list:
    if kind == "digits":
        return [RandomCrop(side, padding=2)]
    if kind == "natural" and side >= 64:
        return [RandomResizedCrop(side), RandomHorizontalFlip()]
    return [RandomCrop(side, padding=max(1, round(side / 8))), RandomHorizontalFlip()]


def _strong_extra(kind: str) -> list:
    if kind == "digits":
        return [RandomAffine(10, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=10)]
    return [TrivialAugmentWide()]


def train_transform(level: str, kind: str, side: int, mean, std) -> Compose:
    """The training transform for ``level`` on ``kind`` data of ``side`` pixels: uint8 images in, normalised out.

    Examples:
        >>> train_transform("standard", "natural", 32, (0.5,) * 3, (0.25,) * 3)   # doctest: +ELLIPSIS
        Compose([ToTensor(...), RandomCrop(size=(32, 32), padding=(4, 4, 4, 4), ...), RandomHorizontalFlip(...), ...
    """
    if level not in LEVELS:
        raise invalid("train_transform", "level", " or ".join(repr(v) for v in LEVELS), level)
    if kind not in KINDS:
        raise invalid("train_transform", "kind", " or ".join(repr(v) for v in KINDS), kind)
    steps = [ToTensor()]
    if level != "none":
        steps += _standard(kind, side)
    if level == "strong":
        steps += _strong_extra(kind)
    steps.append(Normalize(mean, std))
    if level == "strong":
        steps.append(RandomErasing(p=0.25))
    return Compose(steps)
