"""Images per second of the DataLoader with 0, 1 and 2 worker processes (docs/data_loading.md).

    python3 benchmarks/data_loading.py [--images 20000] [--batch-size 128] [--rounds 3]

Three workloads, each with the loader alone (the consumer takes the batch and asks for the
next) and with a LeNet-5 training step per batch (the consumer busy, as in training):

* ``standard``: Fashion-MNIST-shaped uint8 images (1x28x28), ``--augment standard``'s recipe
  for clothing (pad-crop 4, flip, normalise), vectorised per batch;
* ``strong``: the same with TrivialAugmentWide and RandomErasing (``--augment strong``);
* ``per-sample``: the strong recipe applied one image at a time by a dataset without
  ``get_batch`` (as a user's own dataset, or files decoded one by one, would be).

The training process runs its BLAS on ``--blas-threads`` threads (default 1: on a loaded
machine a second, spinning BLAS thread made the LeNet-5 step several times slower).

Loader settings: ``in-caller`` (num_workers=0, prefetch=0), ``thread`` (num_workers=0, a
prefetch thread: the default), ``1 worker`` and ``2 workers`` (persistent processes, started
before timing; their start-up is reported apart). Each setting's rounds alternate with the
others', and the median round is reported.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy

import convstack as cs
from convstack import blas, data, optim
from convstack.data import recipes
from convstack.models import lenet5
from convstack.nn import functional as F

SETTINGS = {
    "in-caller": dict(num_workers=0, prefetch=0),
    "thread": dict(num_workers=0, prefetch=2),
    "1 worker": dict(num_workers=1, persistent_workers=True),
    "2 workers": dict(num_workers=2, persistent_workers=True),
}


class PerSample(data.Dataset):
    """An in-memory dataset read one sample at a time: no ``get_batch``, the transform per image."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return self.transform(self.images[index]), int(self.labels[index])


def _dataset(count: int, workload: str):
    rng = numpy.random.default_rng(0)
    images = rng.integers(0, 256, (count, 28, 28), dtype=numpy.uint8)
    level = "standard" if workload == "standard" else "strong"
    transform = recipes.train_transform(level, "clothing", 28, (0.286,), (0.353,))
    if workload == "per-sample":
        return PerSample(images, numpy.arange(count) % 10, transform)
    return data.ImageArrayDataset(images, numpy.arange(count) % 10, transform=transform)


def _epoch(loader, step) -> float:
    """Images per second over one epoch of ``loader``, calling ``step(x, y)`` on each batch."""
    seen, start = 0, time.perf_counter()
    for x, y in loader:
        if step is not None:
            step(x, y)
        seen += len(y)
    return seen / (time.perf_counter() - start)


def _training_step():
    model = lenet5()
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--blas-threads", type=int, default=1)
    args = parser.parse_args(argv)
    cs.manual_seed(0)
    blas.set_threads(args.blas_threads)
    print(f"{args.images} images 1x28x28 per epoch, batch {args.batch_size}, median of {args.rounds} rounds, "
          f"{args.blas_threads} BLAS thread(s) in the training process")
    print(f"{'workload':<10} {'consumer':<14} " + " ".join(f"{name:>10}" for name in SETTINGS))
    for level in ("standard", "strong", "per-sample"):
        dataset = _dataset(args.images, level)
        loaders = {}
        for name, options in SETTINGS.items():
            start = time.perf_counter()
            loaders[name] = data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True, **options)
            if options["num_workers"]:
                next(iter(loaders[name]))  # start the workers before timing
                print(f"  ({name}: start-up and first batch {time.perf_counter() - start:.2f} s)")
        for consumer, step in (("loader alone", None), ("LeNet-5 step", _training_step())):
            rates = {name: [] for name in SETTINGS}
            for _ in range(args.rounds):
                for name, loader in loaders.items():
                    rates[name].append(_epoch(loader, step))
            medians = " ".join(f"{statistics.median(rates[name]):>10.0f}" for name in SETTINGS)
            print(f"{level:<10} {consumer:<14} {medians}")
        for loader in loaders.values():
            loader.shutdown_workers()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
