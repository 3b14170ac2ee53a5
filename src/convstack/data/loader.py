"""DataLoader: batches of Tensors from a dataset, shuffled reproducibly, prefetched in a thread.

Fast path: a dataset with ``get_batch(indices)`` (every array-backed dataset here) gives a
whole batch in one fancy-indexing step and its transform runs once per batch, vectorised.
Other datasets are read one ``__getitem__`` at a time (or through ``__getitems__``) and
collated. With ``prefetch > 0`` a background thread produces the next batches into a
bounded queue while the model trains; it stops when the iterator is exhausted, closed or
garbage collected, and an exception raised while producing a batch is re-raised in the
consumer.

Reproducibility: the order of each epoch and a seed for that epoch's random transforms are
drawn, in the consumer's thread, when iteration starts, from ``generator``, else a
generator seeded from ``seed``, else ``convstack.random.default_generator()``. So
``convstack.manual_seed`` fixes every epoch, and ``prefetch`` does not change any number.
"""

from __future__ import annotations

import math
import queue
import threading
import weakref

import numpy

from convstack.data.dataset import collate
from convstack.data.transforms import apply_batch, use_generator
from convstack.nn.functional._utils import invalid
from convstack.random import default_generator
from convstack.tensor import Tensor

_POLL_SECONDS = 0.05
_END = object()


class _Failure:
    def __init__(self, error):
        self.error = error


def _to_tensor(value):
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)):
        return type(value)(_to_tensor(v) for v in value)
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        if value.dtype.kind in "iu" and value.dtype != numpy.uint8:
            value = value.astype(numpy.int64, copy=False)
        return Tensor._make(value)
    return value


def _produce(batches, out_queue, stop, generator):
    """Run in the background thread: fill ``out_queue`` until done, stopped or failed."""

    def put(item):
        while not stop.is_set():
            try:
                out_queue.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    try:
        with use_generator(generator):
            for batch in batches:
                if not put(batch):
                    return
        put(_END)
    except BaseException as error:  # re-raised in the consumer, whatever it is
        put(_Failure(error))


def _shutdown(stop, thread):
    stop.set()
    if thread is not threading.current_thread():
        thread.join(timeout=1.0)


class _LoaderIterator:
    """One epoch of a DataLoader. ``close()`` (or dropping it) stops its prefetch thread."""

    def __init__(self, loader, order, generator):
        self._length = len(loader)
        self._generator = generator
        self._batches = loader._batches(order)
        self._done = False
        self._queue = None
        if loader.prefetch > 0:
            self._queue = queue.Queue(maxsize=loader.prefetch)
            stop = threading.Event()
            thread = threading.Thread(
                target=_produce, args=(self._batches, self._queue, stop, generator),
                name="convstack-prefetch", daemon=True,
            )
            # The thread holds no reference to this iterator, so dropping it runs the finalizer.
            self._finalizer = weakref.finalize(self, _shutdown, stop, thread)
            thread.start()

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return self._length

    def __next__(self):
        if self._done:
            raise StopIteration
        if self._queue is None:
            try:
                with use_generator(self._generator):
                    return next(self._batches)
            except BaseException:
                self._done = True
                raise
        item = self._queue.get()
        if item is _END or isinstance(item, _Failure):
            self.close()
            if isinstance(item, _Failure):
                raise item.error
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop producing batches; the iterator then ends."""
        self._done = True
        if self._queue is not None:
            self._finalizer()


class DataLoader:
    """Iterate over a dataset in batches of convstack Tensors.

    Args:
        dataset: a map-style dataset (``__len__``, ``__getitem__``; ``get_batch`` makes it fast).
        batch_size: samples per batch.
        shuffle: a new random order every epoch.
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        generator: a ``numpy.random.Generator`` for the order (and the epoch's transform seed).
        seed: an int seeding a private generator when ``generator`` is not given.
        prefetch: batches a background thread keeps ready (0: produce them in the caller).
        collate_fn: turns a list of samples into a batch (default: stack field by field);
            given one, samples are always read one by one.
        transform: applied to the inputs (first field) of each collated batch, vectorised when
            it has ``.batch``.
        sampler: the indices of an epoch, in order (an iterable with ``len()``, such as
            ``DistributedSampler``); excludes ``shuffle``.

    Shape:
        Each batch is ``(inputs, targets)``: for image datasets float32 (N, C, H, W) and int64 (N,).
        ``len(loader)`` is ``ceil(len(dataset) / batch_size)`` (``floor`` with ``drop_last``),
        with ``len(sampler)`` for ``len(dataset)`` when there is a sampler.

    Examples:
        >>> loader = DataLoader(fashion_mnist("train"), batch_size=64, shuffle=True)  # doctest: +SKIP
        >>> images, labels = next(iter(loader))
        >>> images.shape, labels.shape
        ((64, 1, 28, 28), (64,))
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, generator=None, seed=None,
                 prefetch=2, collate_fn=None, transform=None, sampler=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise invalid("DataLoader", "batch_size", "a positive integer", batch_size)
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
            raise invalid("DataLoader", "prefetch", "a non-negative integer", prefetch)
        if generator is not None and not isinstance(generator, numpy.random.Generator):
            raise invalid("DataLoader", "generator", "a numpy.random.Generator", generator)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise invalid("DataLoader", "seed", "a non-negative integer", seed)
        if sampler is not None and (not hasattr(sampler, "__iter__") or not hasattr(sampler, "__len__")):
            raise invalid("DataLoader", "sampler", "an iterable of indices with len()", type(sampler).__name__)
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle (the sampler orders)")
        self.dataset = dataset
        self.sampler = sampler
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.generator = generator if generator is not None or seed is None else numpy.random.default_rng(seed)
        self.prefetch = prefetch
        self.collate_fn = collate_fn
        self.transform = transform

    def __len__(self) -> int:
        count = len(self.dataset if self.sampler is None else self.sampler) / self.batch_size
        return math.floor(count) if self.drop_last else math.ceil(count)

    def __iter__(self) -> _LoaderIterator:
        generator = self.generator if self.generator is not None else default_generator()
        size = len(self.dataset)
        if self.sampler is not None:
            order = numpy.fromiter(iter(self.sampler), dtype=numpy.int64, count=len(self.sampler))
        else:
            order = generator.permutation(size) if self.shuffle else numpy.arange(size)
        epoch_generator = numpy.random.default_rng(generator.integers(2**63))
        return _LoaderIterator(self, order, epoch_generator)

    def _batches(self, order):
        stop = len(self) * self.batch_size
        for start in range(0, stop, self.batch_size):
            yield self._fetch(order[start : start + self.batch_size])

    def _fetch(self, indices):
        dataset = self.dataset
        if self.collate_fn is None and hasattr(dataset, "get_batch"):
            batch = dataset.get_batch(indices)
        else:
            if hasattr(dataset, "__getitems__"):
                samples = dataset.__getitems__(indices.tolist())
            else:
                samples = [dataset[int(i)] for i in indices]
            batch = (self.collate_fn or collate)(samples)
        if self.transform is not None:
            batch = (apply_batch(self.transform, batch[0]), *batch[1:])
        return _to_tensor(batch)

    def __repr__(self) -> str:
        return (
            f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, prefetch={self.prefetch})"
        )
