"""``convstack visualize CHECKPOINT``: filters, feature maps, saliency, Grad-CAM, guided backprop, deconvnet."""

from __future__ import annotations

from pathlib import Path

from convstack.cli.common import load_run, refuse_overwriting, transform_for
from convstack.cli.predict_command import load_image
from convstack.vis import _model, _plot

WHATS = ("filters", "maps", "saliency", "gradcam", "guided", "deconv")


def add_parser(subparsers):
    p = subparsers.add_parser(
        "visualize",
        help="draw filters, feature maps, saliency, Grad-CAM, guided backprop or deconvnet pictures",
        description="Draw what a trained network learned and where it looks; writes PNG files to --out.",
    )
    p.add_argument("checkpoint")
    p.add_argument("--image", default=None, help="PNG/JPEG image to explain (all but --what filters)")
    p.add_argument("--what", choices=WHATS, default="filters")
    p.add_argument(
        "--layer",
        default=None,
        help="layer name as in `convstack summary` (default: first conv for filters/maps; for gradcam the last "
        "conv block's output after its nonlinearity; "
        "for deconv, project that layer's strongest activation instead of the class score)",
    )
    p.add_argument("--target", type=int, default=None, help="class to explain (default: the predicted class)")
    p.add_argument("--out", default=".", help="folder for the PNG files (default: the current folder)")
    p.set_defaults(run=run)


def run(args) -> int:
    from convstack import vis

    out = Path(args.out)
    what = args.what
    planned = [out / "filters.png", out / "gabor.png"] if what == "filters" else (
        [out / f"{Path(args.image).stem}-{what}.png"] if args.image is not None else [])
    refuse_overwriting(planned, "--out", checkpoint=args.checkpoint, image=args.image)
    model, config = load_run(args.checkpoint, needs=("classes", "normalize", "input"))
    if what == "filters":
        name = args.layer or _model.default_conv(model, "first", "visualize")
        layer = _model.find_layer(model, name, "visualize")
        if getattr(getattr(layer, "weight", None), "ndim", 0) != 4:
            raise ValueError(f"visualize: --what filters needs a Conv2d layer; {name!r} is {type(layer).__name__}")
        written = [out / "filters.png"]
        vis.filter_grid(layer, written[0])
        if layer.weight.shape[1] in (1, 3):
            written.append(out / "gabor.png")
            vis.gabor_comparison(layer, written[1])
    else:
        if args.image is None:
            raise ValueError(f"visualize: --what {what} needs --image FILE")
        options = config["model_options"]
        raw = load_image(args.image, options["in_channels"], options["input_size"])  # uint8 (C, H, W)
        norm = config["normalize"]
        input = _plot.to_numpy(transform_for(norm["mean"], norm["std"])(raw))  # (C, H, W) float32
        target = args.target  # checked against the model's classes (or the layer's channels) by convstack.vis
        stem = Path(args.image).stem
        written = [out / f"{stem}-{what}.png"]
        if what == "maps":
            name = args.layer or _model.default_conv(model, "first", "visualize")
            vis.feature_maps(model, name, input, written[0])
        elif what == "saliency":
            vis.saliency(model, input, target, written[0], image=raw)
        elif what == "gradcam":
            vis.grad_cam(model, args.layer, input, target, written[0], image=raw)  # None: the last block's output
        elif what == "guided":
            vis.guided_backprop(model, input, target, written[0], image=raw)
        else:
            vis.deconvnet(model, input, target, args.layer, written[0], image=raw)
    for path in written:
        print(path)
    return 0
