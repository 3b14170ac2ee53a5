"""``convstack train``: train a model on a dataset, checkpointing every epoch.

On several processes (``--nproc N``, or started by ``mpiexec -n N``) every rank trains the
same model on its shard of each epoch (``DistributedDataParallel``, ``DistributedSampler``);
rank 0 alone prints and writes the run folder (see ``train_distributed``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import warnings

import numpy

from convstack import allocator, data, distributed, optim, threads
from convstack import random as cs_random
from convstack.atomic import write_text
from convstack.cli import args as A
from convstack.cli import augment_options, watch_options
from convstack.cli.common import (
    as_float_list,
    build_model,
    dataset_type,
    image_shape,
    load_dataset,
    model_type,
    refuse_overwriting,
    transform_for,
)
from convstack.cli.train_distributed import join_ranks, launch_ranks, shared_run_folder, started_by_launcher
from convstack.io.checkpoint import load_checkpoint
from convstack.nn.parallel import DistributedDataParallel
from convstack.train import Trainer, format_confusion
from convstack.train.finetune import prepare_finetune
from convstack.train.trainer import NonFiniteLossError
from convstack.vis import write_report

# The options that define a run, with their defaults. They are parsed with the default None so
# that `--resume` can tell an option given on the command line from one left out: left out, the
# run's own value is used; given, it must agree with the run's (see resume_options).
DEFAULTS = {
    "model": "lenet5",
    "dataset": "fashion-mnist",
    "epochs": 10,
    "batch_size": 64,
    "optimizer": "sgd",
    "lr": 0.05,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "scheduler": "cosine",
    "seed": 0,
    "limit_train": None,
    "init_from": None,
    "freeze": [],
    "num_classes": None,
    **augment_options.DEFAULTS,
}
# Options that may change on --resume without changing the run: the same batches come out whatever the
# number of DataLoader workers.
FREE_ON_RESUME = ("workers",)
HYPERPARAMETERS = ("epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "scheduler", "seed",
                   "limit_train")


def add_parser(subparsers):
    p = subparsers.add_parser(
        "train",
        help="train a model (default: LeNet-5 on Fashion-MNIST)",
        description="Train a model. With no options: LeNet-5 on the best Fashion-MNIST found "
        "(else the bundled sample), 10 epochs, SGD with momentum. With --resume, options left out "
        "take the run's values; --epochs may be lowered, or raised under --scheduler none or step; "
        "any other option that differs from the run's is refused.",
    )
    p.add_argument("--model", type=model_type, help="zoo model name or spec:STRING (default lenet5)")
    p.add_argument("--dataset", type=dataset_type, help="fashion-mnist (default) | mnist | cifar10 | folder:PATH")
    p.add_argument("--data-root", default=None, help="folder holding the dataset files (searched first)")
    p.add_argument("--epochs", type=A.positive_int, help="epochs in all (default 10)")
    p.add_argument("--batch-size", type=A.positive_int,
                   help="images per step on each process (default 64): N processes take N x this per step")
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), help="default sgd")
    p.add_argument("--lr", type=A.positive_float, help="learning rate (default 0.05)")
    p.add_argument("--momentum", type=A.unit_interval, help="default 0.9")
    p.add_argument("--weight-decay", type=A.non_negative_float, help="L2 decay on weights, not biases (default 5e-4)")
    p.add_argument("--scheduler", choices=("cosine", "step", "onecycle", "none"), help="default cosine")
    p.add_argument("--seed", type=A.non_negative_int, help="default 0")
    p.add_argument("--out", default=None, help="run folder (default runs/MODEL-TIMESTAMP)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.ckpt")
    p.add_argument("--limit-train", type=A.positive_int, help="use only the first N training images")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--on-nonfinite",
        choices=("stop", "skip"),
        default="stop",
        help="when the loss becomes NaN or infinite: stop with an error (default) or skip that step",
    )
    p.add_argument(
        "--init-from",
        metavar="FILE",
        help="start from these weights: a convstack checkpoint, or a .pt/.pth/.safetensors state dict",
    )
    p.add_argument(
        "--freeze",
        action="append",
        metavar="PATTERN",
        help="do not train parameters matching this name pattern, e.g. 'features.*' (repeatable)",
    )
    p.add_argument(
        "--num-classes",
        type=A.positive_int,
        help="outputs of the model's head (default: the dataset's classes); a new head when "
        "--init-from has another size",
    )
    p.add_argument(
        "--nproc",
        type=A.positive_int,
        default=None,
        metavar="N",
        help="train on N processes of this machine (starts mpiexec -n N; needs convstack[mpi]); "
        "for several machines run mpiexec yourself",
    )
    p.add_argument(
        "--threads",
        type=A.positive_int,
        default=None,
        help="compute threads per process, for the compiled kernels and OpenBLAS together (default: the cores "
        "available, shared among the processes when there are several)",
    )
    p.add_argument(
        "--timeout",
        type=A.positive_float,
        default=120.0,
        metavar="SECONDS",
        help="with several processes: how long one waits for the others before the run stops (default 120)",
    )
    augment_options.add_arguments(p)
    watch_options.add_arguments(p)
    p.set_defaults(run=run, train_parser=p)


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def resume_options(args, checkpoint) -> None:
    """Fill the options left out from the run's stored configuration; refuse those that contradict it.

    ``--epochs`` may differ: the run continues to the new total, its cosine or step schedule
    re-planned for it (from the next epoch on, the rate a run started with that many epochs
    would have had); a one-cycle schedule, planned batch by batch for the stored total,
    refuses it. Everything else that changes the run (model, data, optimizer and its
    hyperparameters, seed, initial weights, frozen layers, augmentation) must be as stored; the number of
    DataLoader workers may change (the batches do not).
    Returns the stored options.
    """
    config = load_checkpoint(checkpoint).get("config")
    if not isinstance(config, dict):
        raise ValueError(f"--resume: {checkpoint} holds no run configuration to resume")
    stored = dict(config.get("hyperparameters") or {})
    stored.update(model=config.get("model"), dataset=config.get("dataset"), init_from=config.get("init_from"),
                  freeze=config.get("freeze") or [])
    stored.update(augment_options.stored_options(config.get("augmentation")))
    if "num_classes" in (config.get("model_options") or {}):
        stored["num_classes"] = config["model_options"]["num_classes"]
    conflicts = []
    for name, default in DEFAULTS.items():
        given = getattr(args, name)
        if name not in stored or name in FREE_ON_RESUME:  # (an older run's, or one that does not change the run)
            setattr(args, name, default if given is None else given)
            continue
        if given is None or given == stored[name]:
            setattr(args, name, stored[name])
        elif name == "epochs" and stored.get("scheduler") != "onecycle":
            continue  # documented above
        else:
            reason = ""
            if name == "epochs":
                count = stored[name]
                reason = f" (its one-cycle schedule was planned for {count} epoch{'s' * (count != 1)})"
            conflicts.append(f"{_option(name)} {_text(given)} differs from the run's {_text(stored[name])}{reason}")
    if conflicts:
        raise ValueError(f"--resume {checkpoint}: " + "; ".join(conflicts) + "; leave these options out to resume "
                         "the run as it was, or start a new run from its weights (--out NEW --init-from "
                         f"{checkpoint})")
    return stored


def _text(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]" if value else "none"
    return str(value)


def run(args) -> int:
    watch_options.check(args)
    if args.nproc is not None and args.nproc > 1 and not started_by_launcher():
        return launch_ranks(args)
    group = join_ranks(args)
    if group is None:
        return _train(args, None)
    try:
        code = _train(args, group)
    except (ValueError, OSError) as error:  # one line, as in one process, then stop every rank
        print(f"convstack train: error on rank {group.rank}: {error}", file=sys.stderr, flush=True)
        group.abort(2)
        raise  # not reached: abort ends every rank
    # Any other exception leaves the group up, so that the excepthook it installed aborts every rank.
    distributed.destroy_process_group()
    return code


def _train(args, group) -> int:
    main = group is None or group.rank == 0  # rank 0 alone prints and writes
    out = shared_run_folder(args, group)
    stored = {}
    if args.resume:
        if not (out / "last.ckpt").exists():
            raise ValueError(f"--resume needs {out / 'last.ckpt'}, which does not exist")
        stored = resume_options(args, out / "last.ckpt")
    else:
        for name, default in DEFAULTS.items():
            if getattr(args, name) is None:
                setattr(args, name, default)
        augment_options.resolve_defaults(args)
        if args.init_from is not None:
            written = [out / name for name in ("last.ckpt", "best.ckpt")]
            refuse_overwriting(written, "--out", init_from=args.init_from)
    allocator.tune()  # this process is ours: keep the step's arrays mapped between steps
    if group is None:  # (each rank of several got its share of the cores when it joined)
        threads.set_num_threads(args.threads)
    cs_random.manual_seed(args.seed)
    with contextlib.nullcontext() if main else warnings.catch_warnings():
        if not main:
            warnings.simplefilter("ignore")  # rank 0 says it (the bundled sample's fallback)
        train_raw = load_dataset(args.dataset, "train", args.data_root, quiet=not main)
        test_raw = load_dataset(args.dataset, "test", args.data_root, quiet=not main)
    if args.limit_train:
        train_raw = data.Subset(train_raw, list(range(min(args.limit_train, len(train_raw)))))
    base = train_raw.dataset if isinstance(train_raw, data.Subset) else train_raw
    mean, std = data.channel_stats(base.images)
    transform = transform_for(mean, std)
    channels, height, _ = image_shape(base)
    train_transform = augment_options.train_transform(args, args.dataset, height, mean, std)
    train_set = data.ImageArrayDataset(base.images, base.labels, transform=train_transform, classes=base.classes)
    if isinstance(train_raw, data.Subset):
        train_set = data.Subset(train_set, train_raw.indices)
    test_set = data.ImageArrayDataset(test_raw.images, test_raw.labels, transform=transform, classes=test_raw.classes)
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
        "hyperparameters": {k: getattr(args, k) for k in HYPERPARAMETERS},
        "augmentation": augment_options.describe(args),
    }
    model = build_model(config)
    if args.resume and (args.init_from or args.freeze):  # the checkpoint holds the weights: only freeze again
        prepare_finetune(model, None, args.freeze, num_classes)
    elif args.init_from or args.freeze:
        report = prepare_finetune(model, args.init_from, args.freeze, num_classes)
        if main:
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
    if group is None:
        train_loader = data.DataLoader(
            train_set, batch_size=args.batch_size, shuffle=True, prefetch=2,
            batch_transform=augment_options.batch_transform(args, num_classes),
            **augment_options.loader_options(args))
    else:  # each rank a shard of every epoch; the Trainer sets the sampler's epoch
        sampler = data.DistributedSampler(train_set, group.size, group.rank, seed=args.seed)
        train_loader = data.DataLoader(
            train_set, batch_size=args.batch_size, sampler=sampler, prefetch=2,
            batch_transform=augment_options.batch_transform(args, num_classes),
            **augment_options.loader_options(args))
        model = DistributedDataParallel(model, process_group=group)
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
    # The page and the event files are rank 0's, as the run folder is.
    watch_args = args if main else argparse.Namespace(**{**vars(args), "live": False, "tensorboard": None})
    watchers = watch_options.Watchers(watch_args, out, test_set, test_raw.images, classes)
    trainer = Trainer(
        model,
        optimizer,
        loss_fn=augment_options.loss_fn(args),
        scheduler=scheduler,
        scheduler_interval=interval,
        callbacks=watchers.callbacks,
        out_dir=out,
        progress=not args.no_progress,
        config=config,
        on_nonfinite=args.on_nonfinite,
    )
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "config.json", json.dumps(config, indent=1))
        ranks = "" if group is None else f" on {group.size} processes ({args.batch_size} images each per step)"
        print(f"training {args.model} on {args.dataset} for {args.epochs} epochs{ranks}; run folder {out}",
              file=sys.stderr)
    start = time.perf_counter()
    if args.resume:
        trainer.load(out / "last.ckpt", train_loader)
        if scheduler is not None and args.epochs != stored.get("epochs", args.epochs):
            horizon = {"cosine": {"T_max": args.epochs}, "step": {"step_size": max(1, args.epochs // 3)}}
            scheduler.replan(**horizon[args.scheduler])
    try:
        with numpy.errstate(over="ignore", invalid="ignore", divide="ignore"):  # divergence is reported below
            trainer.fit(train_loader, test_loader, epochs=args.epochs)
    except NonFiniteLossError as error:
        lr = float(optimizer.param_groups[0]["lr"])
        if error.batch is None:
            raise ValueError(f"every batch of epoch {error.epoch} had a non-finite loss: the weights have diverged; "
                             f"lower --lr (the rate was {lr:g})") from None
        raise ValueError(f"non-finite loss ({error.loss}) at epoch {error.epoch}, batch {error.batch}; lower --lr "
                         f"(the rate was {lr:g}) or pass --on-nonfinite skip") from None
    finally:
        train_loader.shutdown_workers()
    elapsed = time.perf_counter() - start
    if trainer.skipped_steps and main:
        print(f"skipped {trainer.skipped_steps} steps with a non-finite loss (--on-nonfinite skip)", file=sys.stderr)
    results = trainer.evaluate(test_loader, num_classes=len(classes))
    if not main:
        return 0
    model = trainer.model.module if group is not None else model
    summary = {
        "test_accuracy": results["acc"],
        "test_top5": results["top5"],
        "test_loss": results["loss"],
        "train_seconds": trainer.train_time,
        "wall_seconds": elapsed,
        "seed": args.seed,
    }
    write_text(out / "results.json", json.dumps(summary, indent=1))
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
