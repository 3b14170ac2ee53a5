"""``convstack summary MODEL``: each layer's output shape and parameter count, and totals."""

from __future__ import annotations

from convstack.cli import args as A
from convstack.cli.common import model_type
from convstack.models import get_model
from convstack.models.summary import summary


def add_parser(subparsers):
    p = subparsers.add_parser("summary", help="print a model's layers, output shapes and parameter counts")
    p.add_argument("model", type=model_type, help="zoo model name or spec:STRING")
    p.add_argument("--input-size", type=A.input_shape, default=None, help="CxHxW (default: the model's own, 1x28x28)")
    p.add_argument("--num-classes", type=A.positive_int, default=10)
    p.set_defaults(run=run)


def run(args) -> int:
    shape = args.input_size or (1, 28, 28)
    model = get_model(args.model, num_classes=args.num_classes, in_channels=shape[0], input_size=shape[-1])
    print(summary(model, shape))
    return 0
