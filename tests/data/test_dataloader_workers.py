"""DataLoader(num_workers=N): the same batches as in-process loading, errors with the worker's traceback, shutdown."""

import os

import numpy as np
import pytest

import convstack as cs
from convstack.data import (
    Compose,
    DataLoader,
    ImageArrayDataset,
    MixUp,
    Normalize,
    RandomCrop,
    RandomErasing,
    RandomHorizontalFlip,
    ToTensor,
    TrivialAugmentWide,
    get_worker_info,
)


class Squares:
    """Per-sample dataset (no get_batch): sample i is a 1x2x2 image of i, label i % 3."""

    def __len__(self):
        return 23

    def __getitem__(self, index):
        return np.full((1, 2, 2), index, np.float32), index % 3


class Exploding(Squares):
    def __getitem__(self, index):
        if index == 13:
            raise ValueError(f"bad sample {index}")
        return super().__getitem__(index)


class Dying(Squares):
    def __getitem__(self, index):
        if index == 13 and get_worker_info() is not None:
            os._exit(3)
        return super().__getitem__(index)


class WhoMadeIt(Squares):
    def __getitem__(self, index):
        info = get_worker_info()
        return np.zeros((1, 1, 1), np.float32), -1 if info is None else info.id


def _images(n=96):
    rng = np.random.default_rng(0)
    transform = Compose([ToTensor(), RandomCrop(12, padding=2), RandomHorizontalFlip(), TrivialAugmentWide(),
                         Normalize((0.5,) * 3, (0.25,) * 3), RandomErasing(p=0.5)])
    return ImageArrayDataset(rng.integers(0, 256, (n, 3, 12, 12), dtype=np.uint8), np.arange(n) % 10,
                             transform=transform)


def _epochs(loader, count=2):
    return [[(x.data.copy(), y.data.copy()) for x, y in loader] for _ in range(count)]


def _assert_same(a, b):
    assert len(a) == len(b)
    for epoch_a, epoch_b in zip(a, b):
        assert len(epoch_a) == len(epoch_b)
        for (xa, ya), (xb, yb) in zip(epoch_a, epoch_b):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)


def test_workers_make_the_same_batches_as_the_main_process():
    dataset = _images()
    options = dict(batch_size=16, shuffle=True, batch_transform=MixUp(alpha=0.4, num_classes=10))
    cs.manual_seed(4)
    inline = _epochs(DataLoader(dataset, prefetch=0, **options))
    cs.manual_seed(4)
    threaded = _epochs(DataLoader(dataset, prefetch=2, **options))
    cs.manual_seed(4)
    loader = DataLoader(dataset, num_workers=2, persistent_workers=True, **options)
    in_workers = _epochs(loader)
    loader.shutdown_workers()
    _assert_same(inline, threaded)
    _assert_same(inline, in_workers)
    assert not np.array_equal(inline[0][0][0], inline[1][0][0])  # a new epoch, new order and draws


def test_per_sample_datasets_in_one_worker_keep_the_order():
    inline = _epochs(DataLoader(Squares(), batch_size=4, seed=1, shuffle=True), 1)
    in_worker = _epochs(DataLoader(Squares(), batch_size=4, seed=1, shuffle=True, num_workers=1), 1)
    _assert_same(inline, in_worker)
    assert len(in_worker[0]) == 6 and in_worker[0][-1][0].shape == (3, 1, 2, 2)


def test_an_error_in_a_worker_is_raised_with_its_traceback():
    iterator = iter(DataLoader(Exploding(), batch_size=2, num_workers=2))
    with pytest.raises(ValueError) as caught:
        for _ in iterator:
            pass
    message = str(caught.value)
    assert "Caught ValueError in DataLoader worker process" in message and "bad sample 13" in message
    assert "test_dataloader_workers.py" in message and "__getitem__" in message  # the worker's own traceback
    with pytest.raises(StopIteration):
        next(iterator)
    assert not any(worker.is_alive() for worker in iterator._pool._workers)


def test_a_worker_that_dies_is_reported():
    with pytest.raises(RuntimeError, match=r"DataLoader worker \d \(pid \d+\) exited unexpectedly \(exit code 3\)"):
        list(DataLoader(Dying(), batch_size=2, num_workers=1))


def test_closing_early_stops_the_workers_and_worker_info():
    iterator = iter(DataLoader(WhoMadeIt(), batch_size=3, num_workers=2, prefetch=1))
    _, made_by = next(iterator)
    assert set(made_by.data.tolist()) <= {0, 1}
    workers = iterator._pool._workers
    assert all(worker.is_alive() for worker in workers)
    iterator.close()
    assert not any(worker.is_alive() for worker in workers)
    assert get_worker_info() is None
    assert next(iter(DataLoader(WhoMadeIt(), batch_size=3)))[1].data.tolist() == [-1, -1, -1]


def test_persistent_workers_outlive_the_epoch_and_stop_with_the_loader():
    loader = DataLoader(Squares(), batch_size=5, num_workers=1, persistent_workers=True)
    list(loader)
    pool = loader._pool
    first = pool.pids
    abandoned = iter(loader)
    next(abandoned)  # an epoch left unfinished: its late batches must not leak into the next one
    assert [y.data.tolist() for _, y in loader] == [[0, 1, 2, 0, 1], [2, 0, 1, 2, 0], [1, 2, 0, 1, 2],
                                                    [0, 1, 2, 0, 1], [2, 0, 1]]
    assert loader._pool.pids == first
    loader.shutdown_workers()
    assert not any(worker.is_alive() for worker in pool._workers)


def test_unpicklable_parts_and_bad_arguments_are_refused():
    with pytest.raises(TypeError, match=r"DataLoader\(num_workers=1\): the dataset, transform, collate_fn and "
                                        r"batch_transform must be picklable"):
        next(iter(DataLoader(Squares(), batch_size=2, num_workers=1, transform=lambda x: x)))
    with pytest.raises(ValueError, match="DataLoader: invalid value for argument `num_workers`"):
        DataLoader(Squares(), num_workers=-1)
    with pytest.raises(ValueError, match="argument `multiprocessing_context`: expected None, 'forkserver' or"):
        DataLoader(Squares(), num_workers=1, multiprocessing_context="fork")
    with pytest.raises(ValueError, match="argument `persistent_workers`: expected False when num_workers is 0"):
        DataLoader(Squares(), persistent_workers=True)


def test_spawn_start_method_works():
    batches = list(DataLoader(Squares(), batch_size=12, num_workers=1, multiprocessing_context="spawn"))
    assert [len(y) for _, y in batches] == [12, 11]
