"""What several commands share: finding datasets, building models, reading checkpoints."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy

from convstack import backend, data, models
from convstack.io.checkpoint import CheckpointError, load_checkpoint, load_model_checkpoint, one_line
from convstack.structure import kind

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


def load_run(checkpoint, needs=()):
    """(model with the checkpoint's weights, config) from a checkpoint written by ``convstack train``.

    Every field of the stored configuration is checked first, those named in ``needs``
    (``"classes"``, ``"normalize"``, ``"input"``: the input size) required, so that an edited
    or hostile file is refused with ``CheckpointError`` naming it and the field.
    """
    state = load_checkpoint(checkpoint)
    if not isinstance(state.get("config"), dict) or "model" not in state or "model" not in state["config"]:
        raise CheckpointError(f"{checkpoint}: not a convstack training checkpoint (no model configuration)")
    config = state["config"]
    check_run_config(config, checkpoint, needs)
    try:
        model = build_model(config)
    except (TypeError, ValueError, MemoryError) as error:
        raise CheckpointError(f"{checkpoint}: its configuration does not build a model ({one_line(error)})") from None
    load_model_checkpoint(checkpoint, model)  # all weights or, with a clear error naming the file, none
    model.eval()
    return model, config


def check_run_config(config: dict, checkpoint, needs=()) -> None:
    """Refuse a stored run configuration whose fields are of the wrong kind (or missing, for ``needs``)."""

    def refuse(field: str, value, expected: str):
        raise CheckpointError(f"{checkpoint}: corrupted configuration: {field} is {kind(value)} "
                              f"({str(value)[:60]}), expected {expected}")

    model, options = config.get("model"), config.get("model_options", {})
    if not isinstance(model, str) or not (model in models.MODELS or model.startswith("spec:")):
        refuse("model", model, "a zoo model name or spec:...")
    if not isinstance(options, dict):
        refuse("model_options", options, "a dict")
    for name in ("in_channels", "input_size") if "input" in needs else ():
        if name not in options:
            refuse(f"model_options.{name}", None, "a positive integer")
    for name, value in options.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            refuse(f"model_options.{name}", value, "a positive integer")
    if "in_channels" in options and "input_size" in options:
        backend.check_allocation(4 * options["in_channels"] * options["input_size"] ** 2,
                                 f"{checkpoint}: one input image of the stored size",
                                 f"in_channels {options['in_channels']}, input_size {options['input_size']}",
                                 hint="the stored configuration is corrupted")
    if "classes" in config or "classes" in needs:
        classes = config.get("classes")
        if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
            refuse("classes", classes, "a non-empty list of class names")
        if len(classes) < options.get("num_classes", 0):
            refuse("classes", classes, f"a name for each of the {options['num_classes']} classes (model_options)")
    if "normalize" in config or "normalize" in needs:
        normalize = config.get("normalize")
        if not isinstance(normalize, dict):
            refuse("normalize", normalize, "a dict with mean and std")
        for name in ("mean", "std"):
            values = normalize.get(name)
            ok = isinstance(values, list) and len(values) in (1, options.get("in_channels", len(values)))
            if not ok or not all(not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
                                 for v in values):
                refuse(f"normalize.{name}", values, "a list of finite numbers, one per channel")
        if not all(v > 0 for v in normalize["std"]):
            refuse("normalize.std", normalize["std"], "positive numbers")
    if not isinstance(config.get("dataset", ""), str):
        refuse("dataset", config.get("dataset"), "a dataset name")


def as_float_list(values) -> list:
    return [float(v) for v in numpy.atleast_1d(numpy.asarray(values))]


def same_file(a, b) -> bool:
    """Whether paths ``a`` and ``b`` name one file (links and ``..`` included), existing or not."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def refuse_overwriting(outputs, option: str, **inputs) -> None:
    """Raise ``ValueError`` when a file the command would write is one of its inputs.

    Args:
        outputs: the paths the command is about to write.
        option: the argument that chose them (``--out``), named in the message.
        inputs: ``argument name=path`` of every file the command reads (None: not given).
    """
    for output in [outputs] if isinstance(outputs, (str, Path)) else outputs:
        for argument, path in inputs.items():
            if path is not None and same_file(output, path):
                which = "itself" if str(output) == str(path) else str(path)
                raise ValueError(f"{option} {output} is the input {argument.upper()} {which}: writing it would "
                                 f"destroy the input; choose another --out")
