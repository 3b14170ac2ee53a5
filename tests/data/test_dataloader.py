import gc
import threading
import time

import numpy as np
import pytest

import convstack as cs
from convstack.data import (
    Compose,
    DataLoader,
    ImageArrayDataset,
    RandomCrop,
    RandomHorizontalFlip,
    TensorDataset,
    ToTensor,
)


def _labels(loader):
    return np.concatenate([batch[-1].data for batch in loader])


def _image_dataset(n=50, transform=None):
    rng = np.random.default_rng(0)
    return ImageArrayDataset(rng.integers(0, 256, (n, 6, 6), dtype=np.uint8), np.arange(n) % 10, transform=transform)


class PerSample:
    """A dataset without batch indexing: the loader must fall back to __getitem__."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full((1, 2, 2), i, np.float32), i


@pytest.mark.parametrize("prefetch", [0, 2])
@pytest.mark.parametrize("drop_last, sizes", [(False, [4, 4, 2]), (True, [4, 4])])
def test_batches_cover_dataset_in_order(prefetch, drop_last, sizes):
    loader = DataLoader(TensorDataset(np.arange(10, dtype=np.float32), np.arange(10)), batch_size=4,
                        drop_last=drop_last, prefetch=prefetch)
    batches = list(loader)
    assert len(loader) == len(sizes) and [x.shape[0] for x, _ in batches] == sizes
    assert all(isinstance(x, cs.Tensor) and y.dtype == np.int64 for x, y in batches)
    np.testing.assert_array_equal(_labels(loader), np.arange(sum(sizes)))


def test_image_batches_are_float_nchw_and_int64():
    images, labels = next(iter(DataLoader(_image_dataset(), batch_size=8)))
    assert images.shape == (8, 1, 6, 6) and images.dtype == np.float32
    assert labels.shape == (8,) and labels.dtype == np.int64


def test_per_sample_fallback_collates():
    loader = DataLoader(PerSample(5), batch_size=2, prefetch=0)
    x, y = next(iter(loader))
    assert x.shape == (2, 1, 2, 2) and y.data.tolist() == [0, 1] and y.dtype == np.int64


def test_getitems_is_used_when_present():
    calls = []

    class Batched(PerSample):
        def __getitems__(self, indices):
            calls.append(list(indices))
            return [self[i] for i in indices]

    list(DataLoader(Batched(5), batch_size=3, prefetch=0))
    assert calls == [[0, 1, 2], [3, 4]]


def test_custom_collate_fn():
    loader = DataLoader(PerSample(4), batch_size=2, collate_fn=lambda samples: ("x", [s[1] for s in samples]))
    assert list(loader) == [("x", [0, 1]), ("x", [2, 3])]


@pytest.mark.parametrize("prefetch", [0, 3])
def test_shuffle_is_a_permutation_and_reshuffles_each_epoch(prefetch):
    loader = DataLoader(TensorDataset(np.arange(100)), batch_size=7, shuffle=True, prefetch=prefetch)
    first, second = _labels(loader), _labels(loader)
    assert sorted(first.tolist()) == list(range(100))
    assert not np.array_equal(first, second) and not np.array_equal(first, np.arange(100))


def test_shuffle_reproducible_from_manual_seed_seed_and_generator():
    dataset = TensorDataset(np.arange(50))
    cs.manual_seed(5)
    a = _labels(DataLoader(dataset, batch_size=8, shuffle=True))
    cs.manual_seed(5)
    np.testing.assert_array_equal(a, _labels(DataLoader(dataset, batch_size=8, shuffle=True)))
    seeded = [_labels(DataLoader(dataset, batch_size=8, shuffle=True, seed=9)) for _ in range(2)]
    np.testing.assert_array_equal(*seeded)
    gens = [_labels(DataLoader(dataset, shuffle=True, generator=np.random.default_rng(9))) for _ in range(2)]
    np.testing.assert_array_equal(*gens)


def test_random_transforms_reproducible_and_independent_of_prefetch():
    transform = Compose([ToTensor(), RandomCrop(6, padding=2), RandomHorizontalFlip()])
    dataset = _image_dataset(transform=transform)
    runs = []
    for prefetch in (0, 2, 0):
        cs.manual_seed(11)
        runs.append(np.concatenate([x.data for x, _ in DataLoader(dataset, batch_size=16, shuffle=True,
                                                                  prefetch=prefetch)]))
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])


def test_loader_transform_applies_to_inputs_per_sample_or_batched():
    seen = []

    def per_sample(x):
        seen.append(x.shape)
        return x * 2

    x, y = next(iter(DataLoader(PerSample(4), batch_size=4, transform=per_sample)))
    assert seen == [(1, 2, 2)] * 4 and x.data[:, 0, 0, 0].tolist() == [0, 2, 4, 6]


@pytest.mark.parametrize("prefetch", [0, 2])
def test_exception_in_transform_surfaces_in_consumer(prefetch):
    def explode(x):
        if x[0, 0, 0] >= 3:
            raise RuntimeError("transform failed on sample 3")
        return x

    iterator = iter(DataLoader(PerSample(6), batch_size=2, transform=explode, prefetch=prefetch))
    next(iterator)
    with pytest.raises(RuntimeError, match="sample 3"):
        next(iterator)
    with pytest.raises(StopIteration):
        next(iterator)


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "convstack-prefetch"]


def _wait_for_no_prefetch_threads():
    deadline = time.monotonic() + 2.0
    while _prefetch_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    return _prefetch_threads()


def test_prefetch_thread_stops_when_iterator_dropped_or_closed():
    loader = DataLoader(TensorDataset(np.arange(1000)), batch_size=1, prefetch=2)
    iterator = iter(loader)
    next(iterator)
    del iterator
    gc.collect()
    assert _wait_for_no_prefetch_threads() == []
    iterator = iter(loader)
    next(iterator)
    iterator.close()
    assert _wait_for_no_prefetch_threads() == []
    with pytest.raises(StopIteration):
        next(iterator)


def test_prefetch_thread_ends_after_full_epoch():
    assert len(list(DataLoader(TensorDataset(np.arange(10)), batch_size=3, prefetch=1))) == 4
    assert _wait_for_no_prefetch_threads() == []


def test_prefetch_queue_is_bounded():
    produced = []

    class Counting(PerSample):
        def __getitem__(self, i):
            produced.append(i)
            return super().__getitem__(i)

    iterator = iter(DataLoader(Counting(100), batch_size=1, prefetch=2))
    next(iterator)
    time.sleep(0.2)
    # one batch consumed, two queued, at most one being put: the producer waits.
    assert len(produced) <= 4
    iterator.close()


@pytest.mark.parametrize("argument, value", [("batch_size", 0), ("prefetch", -1), ("seed", -2), ("generator", 3)])
def test_invalid_arguments(argument, value):
    with pytest.raises(ValueError, match=f"DataLoader: invalid value for argument `{argument}`"):
        DataLoader(TensorDataset(np.arange(3)), **{argument: value})


def test_full_epoch_overhead_is_small():
    # Fashion-MNIST sized: 60,000 28x28 uint8 images, batch 64, with a vectorised augmentation.
    rng = np.random.default_rng(0)
    dataset = ImageArrayDataset(rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8), rng.integers(0, 10, 60000))
    loader = DataLoader(dataset, batch_size=64, shuffle=True)
    start = time.perf_counter()
    count = sum(x.shape[0] for x, _ in loader)
    elapsed = time.perf_counter() - start
    assert count == 60000
    assert elapsed < 0.5, f"a full epoch took {elapsed:.3f} s of loader time"
