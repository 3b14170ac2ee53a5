"""Samplers that give each rank its own share of a dataset, for ``DataLoader(..., sampler=...)``.

``DistributedSampler`` is PyTorch's, for training: every epoch one permutation of the
whole dataset, the same on every rank (seeded by ``seed + epoch``), dealt out in turn, so
that rank r takes positions r, r + N, r + 2N, ... Without ``drop_last`` the permutation is
padded with its own beginning to a multiple of N (every rank the same number of batches,
a few samples seen twice); with it, the tail that does not divide is dropped.

``ShardSampler`` is for evaluation: contiguous slices, no padding, no shuffle, so that
over all ranks each sample is seen exactly once and the results gathered in rank order
are in dataset order.
"""

from __future__ import annotations

import math

import numpy

from convstack.nn.functional._utils import invalid


def _world(op: str, num_replicas, rank) -> tuple:
    """``(num_replicas, rank)`` checked, taken from the default process group where None."""
    if num_replicas is None or rank is None:
        from convstack.distributed import group

        if not group.is_initialized():
            raise RuntimeError(f"{op}: pass num_replicas and rank, or call convstack.distributed.init_process_group()")
        num_replicas = group.get_world_size() if num_replicas is None else num_replicas
        rank = group.get_rank() if rank is None else rank
    if isinstance(num_replicas, bool) or not isinstance(num_replicas, int) or num_replicas < 1:
        raise invalid(op, "num_replicas", "a positive integer", num_replicas)
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < num_replicas:
        raise invalid(op, "rank", f"an integer from 0 to {num_replicas - 1} (num_replicas - 1)", rank)
    return num_replicas, rank


class DistributedSampler:
    """The indices of rank ``rank``'s shard of ``dataset``, a new shuffle each epoch (``set_epoch``).

    Args:
        dataset: anything with ``len()``.
        num_replicas: the number of ranks (default: the default group's world size).
        rank: this rank (default: the default group's rank).
        shuffle: a permutation seeded by ``seed + epoch``, the same on every rank.
        seed: the base of that seed; must be the same on every rank.
        drop_last: drop the tail that does not divide among the ranks instead of padding.

    Shape:
        ``len(sampler)`` is ``ceil(len(dataset) / num_replicas)``, or with ``drop_last``
        ``floor(len(dataset) / num_replicas)``.

    Examples:
        >>> sampler = DistributedSampler(range(10), num_replicas=3, rank=1, shuffle=False)
        >>> list(sampler)
        [1, 4, 7, 0]
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False):
        self.num_replicas, self.rank = _world("DistributedSampler", num_replicas, rank)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise invalid("DistributedSampler", "seed", "a non-negative integer", seed)
        self.dataset = dataset
        self.shuffle, self.seed, self.drop_last = bool(shuffle), seed, bool(drop_last)
        self.epoch = 0
        size = len(dataset)
        if self.drop_last:
            self.num_samples = size // self.num_replicas
        else:
            self.num_samples = math.ceil(size / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use epoch ``epoch``'s permutation (call it on every rank each epoch)."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise invalid("DistributedSampler.set_epoch", "epoch", "a non-negative integer", epoch)
        self.epoch = epoch

    def indices(self) -> numpy.ndarray:
        """This rank's indices for the current epoch, int64 (num_samples,)."""
        size = len(self.dataset)
        if self.shuffle:
            order = numpy.random.default_rng(self.seed + self.epoch).permutation(size)
        else:
            order = numpy.arange(size)
        if self.total_size > size:  # pad with the permutation's beginning (repeated if need be)
            order = numpy.resize(order, self.total_size)
        order = order[: self.total_size]
        return order[self.rank :: self.num_replicas].astype(numpy.int64)

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples

    def __repr__(self) -> str:
        return (f"DistributedSampler(num_replicas={self.num_replicas}, rank={self.rank}, shuffle={self.shuffle}, "
                f"seed={self.seed}, drop_last={self.drop_last})")


class ShardSampler:
    """The contiguous slice of ``dataset`` that rank ``rank`` evaluates: each sample once over all ranks.

    Rank r takes ``[r * size // num_replicas, (r + 1) * size // num_replicas)``: slices differ
    in length by at most one, none overlaps, together they are the dataset in order.

    Examples:
        >>> [list(ShardSampler(range(10), num_replicas=3, rank=r)) for r in range(3)]
        [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    """

    def __init__(self, dataset, num_replicas=None, rank=None):
        self.num_replicas, self.rank = _world("ShardSampler", num_replicas, rank)
        self.dataset = dataset
        size = len(dataset)
        self.start = self.rank * size // self.num_replicas
        self.stop = (self.rank + 1) * size // self.num_replicas

    def indices(self) -> numpy.ndarray:
        return numpy.arange(self.start, self.stop, dtype=numpy.int64)

    def __iter__(self):
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.stop - self.start

    def __repr__(self) -> str:
        return f"ShardSampler(num_replicas={self.num_replicas}, rank={self.rank}, samples {self.start}-{self.stop})"
