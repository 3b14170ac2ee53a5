"""What several commands share: finding datasets, building models, reading checkpoints."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy

from convstack import data, models
from convstack.io.checkpoint import load_checkpoint, load_model_checkpoint

DATASETS = ("fashion-mnist", "mnist", "cifar10")


def dataset_type(text: str) -> str:
    import argparse

    if text in DATASETS or text.startswith("folder:"):
        return text
    raise argparse.ArgumentTypeError(f"expected one of {', '.join(DATASETS)} or folder:PATH, received {text!r}")


def model_type(text: str) -> str:
    import argparse

    if text in models.MODELS or text.startswith("spec:"):
        return text
    raise argparse.ArgumentTypeError(
        f"expected one of {', '.join(sorted(models.MODELS))} or spec:..., received {text!r}"
    )


def load_dataset(name: str, split: str, root=None, quiet: bool = False):
    """The raw (uint8) dataset ``name`` for ``split``; says on stderr where it came from.

    A ``root`` the user names must exist and hold the dataset: nothing else is searched then.
    """
    if root is not None and not Path(root).is_dir():
        raise ValueError(f"--data-root {root}: no such folder")
    if name == "fashion-mnist":
        dataset = data.fashion_mnist(split, root=root)
    elif name == "mnist":
        dataset = data.mnist(split, root=root)
    elif name == "cifar10":
        dataset = data.cifar10(split, root=root)
    elif name.startswith("folder:"):
        folder = Path(name[len("folder:") :]) / split
        dataset = data.ImageFolder(folder if folder.exists() else Path(name[len("folder:") :]))
    else:
        raise ValueError(f"unknown dataset {name!r}")
    source = getattr(dataset, "source", None)
    if root is not None and not _inside(source, root):
        raise ValueError(f"--data-root {root}: the {name} {split} files are not there (found them in {source})")
    if not quiet:
        print(f"{name} {split}: {len(dataset):,} images from {getattr(dataset, 'source', 'unknown')}", file=sys.stderr)
    return dataset


def _inside(source, root) -> bool:
    """Whether the dataset's ``source`` path is ``root`` or lies under it."""
    if source is None:
        return False
    source, root = Path(str(source)).resolve(), Path(root).resolve()
    return source == root or root in source.parents


def image_shape(dataset) -> tuple:
    """(channels, height, width) of one sample after ToTensor."""
    images = dataset.images
    if images.ndim == 3:
        return (1, images.shape[1], images.shape[2])
    if images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        return (images.shape[3], images.shape[1], images.shape[2])
    return tuple(images.shape[1:])


def transform_for(mean, std):
    return data.Compose([data.ToTensor(), data.Normalize(mean, std)])


def build_model(config: dict):
    return models.get_model(config["model"], **config["model_options"])


def load_run(checkpoint):
    """(model with the checkpoint's weights, config) from a checkpoint written by ``convstack train``."""
    state = load_checkpoint(checkpoint)
    if "config" not in state or "model" not in state or "model" not in state["config"]:
        raise ValueError(f"{checkpoint}: not a convstack training checkpoint (no model configuration)")
    config = state["config"]
    model = build_model(config)
    load_model_checkpoint(checkpoint, model)  # all weights or, with a clear error naming the file, none
    model.eval()
    return model, config


def as_float_list(values) -> list:
    return [float(v) for v in numpy.atleast_1d(numpy.asarray(values))]
