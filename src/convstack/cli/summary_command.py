"""``convstack summary MODEL``: per layer the input and output shapes, parameters and mult-adds; totals and memory."""

from __future__ import annotations

import inspect

from convstack.cli import args as A
from convstack.cli.common import model_type
from convstack.models import MODELS, from_spec, get_model
from convstack.models.summary import default_input_shape, summary


def add_parser(subparsers):
    p = subparsers.add_parser(
        "summary",
        help="print a model's layers: input and output shapes, parameters, mult-adds; totals and memory",
        description="Like torchinfo: one row per layer call, then the parameters, the multiply-accumulates "
        "and an estimate of the memory of one sample.",
    )
    p.add_argument("model", type=model_type, help="zoo model name or spec:STRING")
    p.add_argument(
        "--input-size",
        type=A.input_shape,
        default=None,
        help="one sample's shape, CxHxW (1-D models CxL, 3-D models CxDxHxW); default the model's own "
        "(lenet5 1x28x28, resnet18 3x224x224, temporal_cnn 1x128, cnn3d 1x32x32x32)",
    )
    p.add_argument("--num-classes", type=A.positive_int, default=None, help="default: the model's own")
    p.set_defaults(run=run)


def _defaults(name: str) -> dict:
    """The builder's own ``num_classes``, ``in_channels`` and ``input_size`` defaults."""
    builder = from_spec if name.startswith("spec:") else MODELS[name]
    parameters = inspect.signature(builder).parameters
    return {key: parameters[key].default for key in ("num_classes", "in_channels", "input_size")
            if key in parameters and parameters[key].default is not inspect.Parameter.empty}


def run(args) -> int:
    options = _defaults(args.model)
    if args.num_classes is not None:
        options["num_classes"] = args.num_classes
    if args.input_size is not None:
        options.update(in_channels=args.input_size[0], input_size=args.input_size[-1])
    model = get_model(args.model, **options)
    shape = args.input_size or default_input_shape(model, options.get("in_channels", 1), options.get("input_size", 28))
    print(summary(model, shape))
    return 0
