"""``convstack train``: train a model on a dataset, checkpointing every epoch."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from convstack import data, optim
from convstack import random as cs_random
from convstack.cli import args as A
from convstack.cli import watch_options
from convstack.cli.common import (
    as_float_list,
    build_model,
    dataset_type,
    image_shape,
    load_dataset,
    model_type,
    transform_for,
)
from convstack.train import Trainer, evaluate, format_confusion
from convstack.train.finetune import prepare_finetune
from convstack.vis import write_report


def add_parser(subparsers):
    p = subparsers.add_parser(
        "train",
        help="train a model (default: LeNet-5 on Fashion-MNIST)",
        description="Train a model. With no options: LeNet-5 on the best Fashion-MNIST found "
        "(else the bundled sample), 10 epochs, SGD with momentum.",
    )
    p.add_argument("--model", type=model_type, default="lenet5", help="zoo model name or spec:STRING (default lenet5)")
    p.add_argument(
        "--dataset", type=dataset_type, default="fashion-mnist", help="fashion-mnist | mnist | cifar10 | folder:PATH"
    )
    p.add_argument("--data-root", default=None, help="folder holding the dataset files (searched first)")
    p.add_argument("--epochs", type=A.positive_int, default=10)
    p.add_argument("--batch-size", type=A.positive_int, default=64)
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default="sgd")
    p.add_argument("--lr", type=A.positive_float, default=0.05, help="learning rate (default 0.05)")
    p.add_argument("--momentum", type=A.unit_interval, default=0.9)
    p.add_argument("--weight-decay", type=A.non_negative_float, default=5e-4, help="L2 decay on weights, not biases")
    p.add_argument("--scheduler", choices=("cosine", "step", "onecycle", "none"), default="cosine")
    p.add_argument("--seed", type=A.non_negative_int, default=0)
    p.add_argument("--out", default=None, help="run folder (default runs/MODEL-TIMESTAMP)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.ckpt")
    p.add_argument("--limit-train", type=A.positive_int, default=None, help="use only the first N training images")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--init-from",
        default=None,
        metavar="FILE",
        help="start from these weights: a convstack checkpoint, or a .pt/.pth/.safetensors state dict",
    )
    p.add_argument(
        "--freeze",
        action="append",
        default=[],
        metavar="PATTERN",
        help="do not train parameters matching this name pattern, e.g. 'features.*' (repeatable)",
    )
    p.add_argument(
        "--num-classes",
        type=A.positive_int,
        default=None,
        help="outputs of the model's head (default: the dataset's classes); a new head when "
        "--init-from has another size",
    )
    watch_options.add_arguments(p)
    p.set_defaults(run=run)


def run(args) -> int:
    watch_options.check(args)
    out = (
        Path(args.out)
        if args.out
        else Path("runs") / f"{args.model.replace(':', '_')}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    if args.resume and not (out / "last.ckpt").exists():
        print(f"convstack train: error: --resume needs {out / 'last.ckpt'}, which does not exist", file=sys.stderr)
        return 2
    cs_random.manual_seed(args.seed)
    train_raw = load_dataset(args.dataset, "train", args.data_root)
    test_raw = load_dataset(args.dataset, "test", args.data_root)
    if args.limit_train:
        train_raw = data.Subset(train_raw, list(range(min(args.limit_train, len(train_raw)))))
    base = train_raw.dataset if isinstance(train_raw, data.Subset) else train_raw
    mean, std = data.channel_stats(base.images)
    transform = transform_for(mean, std)
    train_set = data.ImageArrayDataset(base.images, base.labels, transform=transform, classes=base.classes)
    if isinstance(train_raw, data.Subset):
        train_set = data.Subset(train_set, train_raw.indices)
    test_set = data.ImageArrayDataset(test_raw.images, test_raw.labels, transform=transform, classes=test_raw.classes)
    channels, height, _ = image_shape(base)
    classes = list(base.classes) if base.classes is not None else [str(i) for i in range(int(base.labels.max()) + 1)]
    if args.num_classes is not None and args.num_classes < len(classes):
        print(
            f"convstack train: error: --num-classes {args.num_classes} is fewer than the dataset's "
            f"{len(classes)} classes",
            file=sys.stderr,
        )
        return 2
    num_classes = args.num_classes or len(classes)
    classes += [str(i) for i in range(len(classes), num_classes)]  # a head wider than the dataset's classes
    config = {
        "model": args.model,
        "model_options": {"num_classes": num_classes, "in_channels": channels, "input_size": height},
        "init_from": args.init_from,
        "freeze": args.freeze,
        "dataset": args.dataset,
        "classes": classes,
        "normalize": {"mean": as_float_list(mean), "std": as_float_list(std)},
        "hyperparameters": {
            k: getattr(args, k)
            for k in ("epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "scheduler", "seed")
        },
    }
    model = build_model(config)
    if args.init_from or args.freeze:
        report = prepare_finetune(model, args.init_from, args.freeze, num_classes)
        print(
            f"fine-tuning: {len(report['loaded'])} tensors from {args.init_from}, head {report['head']} "
            f"{'new' if report['head_reset'] else 'loaded'}, {len(report['frozen'])} parameters frozen",
            file=sys.stderr,
        )
    groups = optim.param_groups_weight_decay(model, args.weight_decay)
    if args.optimizer == "sgd":
        optimizer = optim.SGD(groups, lr=args.lr, momentum=args.momentum)
    elif args.optimizer == "adam":
        optimizer = optim.Adam(groups, lr=args.lr)
    else:
        optimizer = optim.AdamW(groups, lr=args.lr)
    train_loader = data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True, prefetch=2)
    test_loader = data.DataLoader(test_set, batch_size=256)
    scheduler, interval = None, "epoch"
    if args.scheduler == "cosine":
        scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    elif args.scheduler == "step":
        scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=max(1, args.epochs // 3), gamma=0.1)
    elif args.scheduler == "onecycle":
        scheduler = optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=args.lr, total_steps=args.epochs * len(train_loader)
        )
        interval = "batch"
    watchers = watch_options.Watchers(args, out, test_set, test_raw.images, classes)
    trainer = Trainer(
        model,
        optimizer,
        scheduler=scheduler,
        scheduler_interval=interval,
        callbacks=watchers.callbacks,
        out_dir=out,
        progress=not args.no_progress,
        config=config,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=1))
    print(f"training {args.model} on {args.dataset} for {args.epochs} epochs; run folder {out}", file=sys.stderr)
    start = time.perf_counter()
    trainer.fit(train_loader, test_loader, epochs=args.epochs, resume=args.resume)
    elapsed = time.perf_counter() - start
    results = evaluate(model, test_loader, num_classes=len(classes))
    summary = {
        "test_accuracy": results["acc"],
        "test_top5": results["top5"],
        "test_loss": results["loss"],
        "train_seconds": trainer.train_time,
        "wall_seconds": elapsed,
        "seed": args.seed,
    }
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    sample_inputs, sample_targets = next(iter(data.DataLoader(test_set, batch_size=16)))
    try:
        report = write_report(
            out,
            model,
            config,
            trainer.history,
            results,
            sample_inputs.numpy(),
            display_images=test_raw.images[:16],
            sample_targets=sample_targets.numpy(),
            class_names=classes,
            metrics=summary,
        )
        print(f"report: {report}", file=sys.stderr)
    except ImportError as error:  # matplotlib is an optional extra
        print(f"convstack train: no report ({error})", file=sys.stderr)
    watchers.close()
    print(format_confusion(results["confusion"], classes))
    print(
        f"test accuracy {results['acc']:.2%} (top-5 {results['top5']:.2%}) after {trainer.epoch} epochs, "
        f"{trainer.train_time:.1f}s training; run folder {out} (last.ckpt, best.ckpt, history.csv)"
    )
    return 0
