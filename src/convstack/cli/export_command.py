"""``convstack export CHECKPOINT``: a trained model as ONNX (checked, compared with onnxruntime) or as weights.

``--format onnx`` traces the model on one input of ``--input-size`` (default: the size it was
trained on), writes the ONNX file, checks it with ``onnx.checker`` and, when onnxruntime is
installed, runs it and prints the largest difference from convstack's own output.
``--format pt`` / ``safetensors`` write the state dict for PyTorch (``torch.load`` /
``load_state_dict``; torchvision's names for the zoo's ResNets, VGGs, AlexNet and GoogLeNet).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy

from convstack.cli import args as A
from convstack.cli.common import load_run, refuse_overwriting

FORMATS = {"onnx": ".onnx", "pt": ".pt", "safetensors": ".safetensors"}


def add_parser(subparsers):
    p = subparsers.add_parser(
        "export",
        help="export a trained model to ONNX (or its weights for PyTorch)",
        description="Export a checkpoint written by `convstack train`: to ONNX (checked with onnx.checker and, "
        "when installed, compared with onnxruntime), or its state dict as .pt or .safetensors.",
    )
    p.add_argument("checkpoint", help="a checkpoint written by convstack train (best.ckpt, last.ckpt)")
    p.add_argument("--format", choices=tuple(FORMATS), default="onnx", help="onnx (default), pt or safetensors")
    p.add_argument(
        "--out", default=None, help="file to write (default: the checkpoint's name with the format's suffix)"
    )
    p.add_argument(
        "--input-size",
        type=A.input_shape,
        default=None,
        help="CxHxW of the traced input (CxL, CxDxHxW for 1-D, 3-D models; default: the trained size)",
    )
    p.add_argument("--opset", type=A.positive_int, default=17, help="ONNX operator set (default 17)")
    p.add_argument("--static-batch", action="store_true", help="fix the batch size at 1 (default: left free)")
    p.set_defaults(run=run)


def _input_shape(args, config) -> tuple:
    if args.input_size is not None:
        return args.input_size
    options = config.get("model_options", {})
    if "in_channels" not in options or "input_size" not in options:
        raise ValueError("the checkpoint does not record its input size; pass --input-size CxHxW")
    return (int(options["in_channels"]), int(options["input_size"]), int(options["input_size"]))


def run(args) -> int:
    import convstack as cs

    out = Path(args.out) if args.out else Path(args.checkpoint).with_suffix(FORMATS[args.format])
    refuse_overwriting(out, "--out" if args.out else "the default --out", checkpoint=args.checkpoint)
    needs = {"pt": ("torch", "PyTorch", "torch"), "onnx": ("onnx", "the onnx package", "onnx")}.get(args.format)
    if needs is not None and importlib.util.find_spec(needs[0]) is None:
        raise ImportError(f"export --format {args.format} needs {needs[1]}: pip install 'convstack[{needs[2]}]'"
                          + (" (or --format safetensors, which needs nothing more)" if args.format == "pt" else ""))
    model, config = load_run(args.checkpoint)
    if args.format != "onnx":
        from convstack.io.torch_weights import save_torch_state_dict

        save_torch_state_dict(model, out)
        print(f"wrote {out} ({out.stat().st_size:,} bytes): the state dict of {config['model']}")
        return 0
    import onnx

    from convstack.io.onnx_export import export_onnx

    shape = _input_shape(args, config)
    example = cs.tensor(numpy.random.default_rng(0).standard_normal((1, *shape)).astype(numpy.float32))
    proto = export_onnx(model, example, out, opset=args.opset, dynamic_batch=not args.static_batch, check=False)
    onnx.checker.check_model(proto, full_check=True)
    dims = "x".join(str(d.dim_param or d.dim_value) for d in proto.graph.input[0].type.tensor_type.shape.dim)
    print(
        f"wrote {out} ({out.stat().st_size:,} bytes): {config['model']}, {len(proto.graph.node)} nodes, opset "
        f"{args.opset}, input {proto.graph.input[0].name} {dims}; onnx.checker: ok"
    )
    if proto.doc_string:
        print(f"note: {proto.doc_string}")
    try:
        import onnxruntime
    except ImportError:
        print("onnxruntime is not installed: no comparison run")
        return 0
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (theirs,) = session.run(None, {proto.graph.input[0].name: example.numpy()})[:1]
    with cs.no_grad():
        ours = model(example).numpy()
    difference = float(numpy.abs(theirs - ours).max())
    print(
        f"onnxruntime {onnxruntime.__version__}: max |onnxruntime - convstack| = {difference:.2e} "
        f"(max |output| {float(numpy.abs(ours).max()):.3g})"
    )
    return 0
