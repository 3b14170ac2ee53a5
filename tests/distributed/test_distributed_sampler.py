"""DistributedSampler and ShardSampler: every rank's shard, disjoint and together the dataset; DataLoader(sampler=)."""

import numpy as np
import pytest

from convstack.data import DataLoader, DistributedSampler, ShardSampler, TensorDataset


def shards(size, ranks, **options):
    return [list(DistributedSampler(range(size), num_replicas=ranks, rank=r, **options)) for r in range(ranks)]


@pytest.mark.parametrize("size, ranks", [(12, 2), (12, 3), (60, 4), (7, 7), (100, 1)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_shards_are_disjoint_and_cover_the_dataset(size, ranks, shuffle):
    parts = shards(size, ranks, shuffle=shuffle, seed=3)
    assert [len(p) for p in parts] == [size // ranks] * ranks
    every = [i for p in parts for i in p]
    assert sorted(every) == list(range(size))  # disjoint and covering


@pytest.mark.parametrize("size, ranks", [(10, 3), (11, 4), (5, 8)])
def test_an_uneven_dataset_is_padded_with_its_own_beginning_or_dropped(size, ranks):
    padded = shards(size, ranks, shuffle=False)
    assert all(len(p) == -(-size // ranks) for p in padded)
    every = [i for p in padded for i in p]
    assert set(every) == set(range(size))
    order = [padded[position % ranks][position // ranks] for position in range(len(every))]
    assert order == [i % size for i in range(len(every))]  # padding repeats the order from its start
    dropped = shards(size, ranks, shuffle=False, drop_last=True)
    assert all(len(p) == size // ranks for p in dropped)
    kept = [i for p in dropped for i in p]
    assert len(kept) == len(set(kept)) == size // ranks * ranks


def test_every_rank_draws_the_same_permutation_and_each_epoch_another():
    samplers = [DistributedSampler(range(50), num_replicas=2, rank=r, seed=7) for r in (0, 1)]
    first = [list(s) for s in samplers]
    assert sorted(first[0] + first[1]) == list(range(50))
    assert list(samplers[0]) == first[0]  # the same epoch again: the same order
    for sampler in samplers:
        sampler.set_epoch(1)
    second = [list(s) for s in samplers]
    assert sorted(second[0] + second[1]) == list(range(50)) and second != first
    other_seed = DistributedSampler(range(50), num_replicas=2, rank=0, seed=8)
    assert list(other_seed) != first[0]


def test_the_unshuffled_order_matches_pytorch():
    torch_data = pytest.importorskip("torch.utils.data")
    for size, ranks, drop_last in [(10, 3, False), (10, 3, True), (11, 4, False), (5, 8, False)]:
        for rank in range(ranks):
            ours = DistributedSampler(range(size), ranks, rank, shuffle=False, drop_last=drop_last)
            theirs = torch_data.DistributedSampler(range(size), ranks, rank, shuffle=False, drop_last=drop_last)
            assert list(ours) == list(theirs) and len(ours) == len(theirs)


@pytest.mark.parametrize("size, ranks", [(10, 3), (37, 2), (3, 5)])
def test_evaluation_shards_take_each_sample_once_in_order(size, ranks):
    parts = [list(ShardSampler(range(size), num_replicas=ranks, rank=r)) for r in range(ranks)]
    assert [i for p in parts for i in p] == list(range(size))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"DistributedSampler: invalid value for argument `rank`: expected an integer "
                                         r"from 0 to 1 \(num_replicas - 1\), received 2"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="argument `num_replicas`: expected a positive integer, received 0"):
        ShardSampler(range(4), num_replicas=0, rank=0)
    with pytest.raises(RuntimeError, match="pass num_replicas and rank, or call convstack.distributed.init_process"):
        DistributedSampler(range(4))
    with pytest.raises(ValueError, match="argument `epoch`: expected a non-negative integer, received -1"):
        DistributedSampler(range(4), 1, 0).set_epoch(-1)


def test_a_data_loader_follows_its_sampler():
    dataset = TensorDataset(np.arange(20, dtype=np.float32).reshape(20, 1), np.arange(20))
    sampler = DistributedSampler(dataset, num_replicas=3, rank=1, seed=2)
    loader = DataLoader(dataset, batch_size=3, sampler=sampler, prefetch=0)
    assert len(loader) == 3  # 7 samples in batches of 3
    labels = [int(i) for _, targets in loader for i in targets.numpy()]
    assert labels == list(sampler)
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        DataLoader(dataset, shuffle=True, sampler=sampler)
    with pytest.raises(ValueError, match="argument `sampler`: expected an iterable of indices with len"):
        DataLoader(dataset, sampler=5)
