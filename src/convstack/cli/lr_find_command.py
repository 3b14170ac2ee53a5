"""``convstack lr-find``: the learning-rate range test (Smith 2017)."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from convstack import data, optim
from convstack import random as cs_random
from convstack.atomic import atomic_write, write_text
from convstack.cli import args as A
from convstack.cli.common import build_model, dataset_type, image_shape, load_dataset, model_type, transform_for
from convstack.train.lr_finder import lr_range_test


def add_parser(subparsers):
    p = subparsers.add_parser("lr-find", help="learning-rate range test: suggest a learning rate")
    p.add_argument("--model", type=model_type, default="lenet5")
    p.add_argument("--dataset", type=dataset_type, default="fashion-mnist")
    p.add_argument("--data-root", default=None)
    p.add_argument("--batch-size", type=A.positive_int, default=64)
    p.add_argument("--momentum", type=A.unit_interval, default=0.9)
    p.add_argument("--start-lr", type=A.positive_float, default=1e-5)
    p.add_argument("--end-lr", type=A.positive_float, default=3.0)
    p.add_argument("--steps", type=A.positive_int, default=200)
    p.add_argument("--seed", type=A.non_negative_int, default=0)
    p.add_argument("--out", default="runs/lr-find", help="folder for lr_find.csv and lr_find.png")
    p.set_defaults(run=run)


def run(args) -> int:
    if args.start_lr >= args.end_lr:
        print(
            f"convstack lr-find: error: --start-lr ({args.start_lr}) must be below --end-lr ({args.end_lr})",
            file=sys.stderr,
        )
        return 2
    cs_random.manual_seed(args.seed)
    raw = load_dataset(args.dataset, "train", args.data_root)
    mean, std = data.channel_stats(raw.images)
    dataset = data.ImageArrayDataset(raw.images, raw.labels, transform=transform_for(mean, std))
    channels, height, _ = image_shape(raw)
    classes = int(raw.labels.max()) + 1
    model = build_model(
        {"model": args.model, "model_options": {"num_classes": classes, "in_channels": channels, "input_size": height}}
    )
    optimizer = optim.SGD(model.parameters(), lr=args.start_lr, momentum=args.momentum)
    loader = data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True)
    result = lr_range_test(model, optimizer, loader, start_lr=args.start_lr, end_lr=args.end_lr, steps=args.steps)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(["lr", "smoothed_loss"])
    writer.writerows(zip(result["lrs"], result["losses"]))
    write_text(out / "lr_find.csv", table.getvalue())
    plotted = _plot(result, out / "lr_find.png")
    print(f"suggested learning rate: {result['suggested_lr']:.3g} ({len(result['lrs'])} steps)")
    print(
        f"wrote {out / 'lr_find.csv'}"
        + (f" and {out / 'lr_find.png'}" if plotted else " (install matplotlib for the plot)")
    )
    return 0


def _plot(result, path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(result["lrs"], result["losses"])
    ax.axvline(result["suggested_lr"], color="red", linestyle="--", label=f"suggested {result['suggested_lr']:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("smoothed training loss")
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda stream: fig.savefig(stream, format="png", dpi=100))
    plt.close(fig)
    return True
