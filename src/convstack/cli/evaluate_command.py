"""``convstack evaluate CHECKPOINT``: accuracy, per-class accuracy and the confusion matrix."""

from __future__ import annotations

from convstack import data
from convstack.cli.common import load_dataset, load_run, transform_for
from convstack.train import evaluate, format_confusion, per_class_accuracy


def add_parser(subparsers):
    p = subparsers.add_parser("evaluate", help="evaluate a checkpoint on its dataset's test split")
    p.add_argument("checkpoint")
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--data-root", default=None)
    p.set_defaults(run=run)


def run(args) -> int:
    model, config = load_run(args.checkpoint, needs=("classes", "normalize"))
    if "dataset" not in config:
        raise ValueError(f"{args.checkpoint}: records no dataset to evaluate on")
    raw = load_dataset(config["dataset"], args.split, args.data_root)
    norm = config["normalize"]
    dataset = data.ImageArrayDataset(raw.images, raw.labels, transform=transform_for(norm["mean"], norm["std"]))
    classes = config["classes"]
    results = evaluate(model, data.DataLoader(dataset, batch_size=256), num_classes=len(classes))
    print(
        f"accuracy {results['acc']:.2%}  top-5 {results['top5']:.2%}  loss {results['loss']:.4f}  "
        f"({len(dataset):,} images)"
    )
    print("per-class accuracy:")
    for name, value in zip(classes, per_class_accuracy(results["confusion"])):
        print(f"  {name:<14} {value:.2%}")
    print("confusion matrix (rows: true class, columns: predicted):")
    print(format_confusion(results["confusion"], classes))
    return 0
