"""``convstack train``'s augmentation options: --augment, --mixup, --cutmix, --label-smoothing, --workers.

Kept apart from train_command so that the command gains them with a few calls: the options,
the training transform, the batch transform (MixUp/CutMix), the loss and the loader settings.
"""

from __future__ import annotations

import functools

from convstack.cli import args as A
from convstack.data import CutMix, MixUp, RandomChoice, recipes

#: The options' defaults. They are parsed with the default None, as `convstack train`'s other options,
#: so that `--resume` tells an option given from one left out (see train_command.resume_options).
#: ``augment`` None: the dataset's own level (`resolve_defaults`).
DEFAULTS = {"augment": None, "mixup": 0.0, "cutmix": 0.0, "label_smoothing": 0.0, "workers": 0}


def add_arguments(parser) -> None:
    parser.add_argument(
        "--augment",
        choices=recipes.LEVELS,
        help="training augmentation (default: standard for natural images, cifar10 and folder:, none for "
        "fashion-mnist and mnist): standard = pad-crop and flip (no flip for mnist); strong adds "
        "TrivialAugmentWide (small affine changes for mnist) and random erasing; see docs/augmentation.md",
    )
    parser.add_argument("--mixup", type=A.non_negative_float, metavar="ALPHA",
                        help="MixUp with Beta(ALPHA, ALPHA) mixing ratios (0: off; 0.2 is usual)")
    parser.add_argument("--cutmix", type=A.non_negative_float, metavar="ALPHA",
                        help="CutMix with Beta(ALPHA, ALPHA) (0: off; 1.0 is usual); with --mixup, one of the two "
                        "per batch")
    parser.add_argument("--label-smoothing", type=A.unit_interval, metavar="S",
                        help="cross-entropy against (1 - S) one-hot + S uniform (0: off; 0.1 is usual)")
    parser.add_argument("--workers", type=A.non_negative_int, metavar="N",
                        help="worker processes that load and augment the training batches (default 0: a thread)")


def resolve_defaults(args) -> None:
    """``--augment`` left out (and not taken from a resumed run): the level the dataset calls for."""
    if args.augment is None:
        args.augment = recipes.default_level(args.dataset)


def stored_options(augmentation: dict | None) -> dict:
    """A run's stored augmentation options; a run from before they existed trained without augmentation."""
    return {"augment": "none", **(augmentation or {})}


def train_transform(args, dataset: str, side: int, mean, std):
    """The training transform that ``--augment`` asks for (the test transform stays unaugmented)."""
    return recipes.train_transform(args.augment, recipes.dataset_kind(dataset), side, mean, std)


def batch_transform(args, num_classes: int):
    """MixUp, CutMix, a random choice of the two per batch, or None."""
    mixers = []
    if args.mixup > 0:
        mixers.append(MixUp(alpha=args.mixup, num_classes=num_classes))
    if args.cutmix > 0:
        mixers.append(CutMix(alpha=args.cutmix, num_classes=num_classes))
    if not mixers:
        return None
    return mixers[0] if len(mixers) == 1 else RandomChoice(mixers)


def loss_fn(args):
    """Cross-entropy, with ``--label-smoothing``; None (the Trainer's default) when there is none."""
    if args.label_smoothing == 0:
        return None
    from convstack.nn.functional import cross_entropy

    return functools.partial(cross_entropy, label_smoothing=args.label_smoothing)


def loader_options(args) -> dict:
    """DataLoader settings for the training set: workers kept for the whole run."""
    if args.workers == 0:
        return {}
    return {"num_workers": args.workers, "persistent_workers": True}


def describe(args) -> dict:
    """The options as they go into the run's config.json."""
    return {"augment": args.augment, "mixup": args.mixup, "cutmix": args.cutmix,
            "label_smoothing": args.label_smoothing, "workers": args.workers}
