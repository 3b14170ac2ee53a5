"""``convstack predict CHECKPOINT IMAGE...``: top-k classes with probabilities."""

from __future__ import annotations

import numpy

from convstack.autograd import no_grad
from convstack.cli import args as A
from convstack.cli.common import load_run, transform_for
from convstack.data import Resize, read_image
from convstack.nn.functional import softmax
from convstack.tensor import Tensor


def add_parser(subparsers):
    p = subparsers.add_parser("predict", help="classify PNG/JPEG images with a checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top-k", type=A.positive_int, default=3)
    p.set_defaults(run=run)


def load_image(path, channels: int, size: int) -> numpy.ndarray:
    """An image file as uint8 (C, size, size): converted to gray or RGB and resized to what the model takes."""
    image = read_image(path, mode="L" if channels == 1 else "RGB")
    image = image[None] if image.ndim == 2 else image.transpose(2, 0, 1)  # (C, H, W)
    if image.shape[1:] != (size, size):
        image = Resize((size, size))(image)
    return image


def run(args) -> int:
    model, config = load_run(args.checkpoint, needs=("classes", "normalize", "input"))
    options = config["model_options"]
    norm = config["normalize"]
    transform = transform_for(norm["mean"], norm["std"])
    images = [transform(load_image(p, options["in_channels"], options["input_size"])) for p in args.images]
    batch = Tensor(numpy.stack([numpy.asarray(getattr(i, "data", i)) for i in images]).astype(numpy.float32))
    with no_grad():
        probabilities = softmax(model(batch), dim=1).numpy()
    classes = config["classes"]
    k = min(args.top_k, len(classes))
    for path, row in zip(args.images, probabilities):
        best = numpy.argsort(-row)[:k]
        print(f"{path}: " + ", ".join(f"{classes[i]} {row[i]:.1%}" for i in best))
    return 0
