"""What the ``Trainer`` does across ranks when its model is a ``DistributedDataParallel``.

Every rank runs the same loop on its own shard; these functions keep the ranks' decisions
identical: the loss each rank checks (the mean over all ranks: one non-finite loss stops
or skips the step everywhere), the epoch's figures (summed over all ranks) and the
evaluation (each rank a contiguous shard, the results gathered in dataset order, so
every rank holds the same figures, the same as one process would compute).
"""

from __future__ import annotations

import copy

import numpy

from convstack.data.distributed_sampler import ShardSampler
from convstack.distributed.collectives import all_gather_into_tensor, all_reduce
from convstack.distributed.group import ReduceOp
from convstack.train.metrics import confusion_matrix


def unwrap(model):
    """The model a ``DistributedDataParallel`` wraps (what checkpoints hold), or ``model`` itself."""
    from convstack.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model


def process_group_of(model):
    """The process group of a ``DistributedDataParallel`` model of more than one rank, else None."""
    from convstack.nn.parallel import DistributedDataParallel

    if isinstance(model, DistributedDataParallel) and model.process_group.size > 1:
        return model.process_group
    return None


def mean_over_ranks(group, value: float) -> float:
    """The mean of every rank's ``value`` (NaN or infinite when any rank's is)."""
    total = numpy.array([value], dtype=numpy.float64)
    all_reduce(total, ReduceOp.SUM, group)
    return float(total[0]) / group.size


def sum_over_ranks(group, *values) -> list:
    """Each of ``values`` summed over the ranks (float64)."""
    totals = numpy.array(values, dtype=numpy.float64)
    all_reduce(totals, ReduceOp.SUM, group)
    return totals.tolist()


def max_over_ranks(group, value: float) -> float:
    longest = numpy.array([value], dtype=numpy.float64)
    all_reduce(longest, ReduceOp.MAX, group)
    return float(longest[0])


def _gather_rows(group, array):
    """Every rank's ``array`` (rows of varying counts), concatenated in rank order; the same on all ranks."""
    array = numpy.ascontiguousarray(array)
    counts = numpy.empty((group.size, 1), dtype=numpy.int64)
    all_gather_into_tensor(counts, numpy.array([len(array)], dtype=numpy.int64), group)
    longest = int(counts.max())
    padded = numpy.zeros((longest, *array.shape[1:]), dtype=array.dtype)
    padded[: len(array)] = array
    gathered = numpy.empty((group.size, *padded.shape), dtype=array.dtype)
    all_gather_into_tensor(gathered, padded, group)
    return numpy.concatenate([gathered[rank, : counts[rank, 0]] for rank in range(group.size)])


def evaluate_sharded(model, loader, loss_fn, num_classes, group) -> dict:
    """``evaluate`` on this rank's contiguous shard of ``loader.dataset``, combined over the ranks.

    Returns what ``evaluate`` returns for the whole dataset (loss, accuracies, confusion
    matrix, predictions and targets in dataset order), on every rank.
    """
    from convstack.train.trainer import evaluate

    shard = copy.copy(loader)  # the same loader settings over this rank's slice
    shard.sampler, shard.shuffle = ShardSampler(loader.dataset, group.size, group.rank), False
    local = evaluate(model, shard, loss_fn, num_classes)
    seen = len(local["targets"])
    loss_sum, top1, top5, total = sum_over_ranks(
        group, local["loss"] * seen, local["acc"] * seen, local["top5"] * seen, seen
    )
    predictions = _gather_rows(group, local["predictions"].astype(numpy.int64))
    targets = _gather_rows(group, local["targets"].astype(numpy.int64))
    classes = num_classes or int(max(predictions.max(initial=0), targets.max(initial=0)) + 1)
    total = max(total, 1)
    return {
        "loss": loss_sum / total,
        "acc": round(top1) / total,
        "top5": round(top5) / total,
        "confusion": confusion_matrix(predictions, targets, classes),
        "predictions": predictions,
        "targets": targets,
    }
