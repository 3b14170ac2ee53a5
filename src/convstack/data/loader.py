"""DataLoader: batches of Tensors from a dataset, shuffled reproducibly, made in parallel.

Fast path: a dataset with ``get_batch(indices)`` (every array-backed dataset here) gives a
whole batch in one fancy-indexing step and its transform runs once per batch, vectorised.
Other datasets are read one ``__getitem__`` at a time (or through ``__getitems__``) and
collated. ``batch_transform`` then sees the whole batch, inputs and targets (``MixUp``,
``CutMix``).

Where batches are made: with ``num_workers=0`` and ``prefetch > 0`` a background thread
produces the next batches into a bounded queue while the model trains (it stops when the
iterator is exhausted, closed or garbage collected); with ``prefetch=0``, in the caller;
with ``num_workers > 0``, in that many worker processes (``convstack.data.workers``). An
exception raised while making a batch is raised again in the consumer.

Reproducibility: the order of each epoch and a seed for that epoch's random transforms are
drawn, in the consumer's thread, when iteration starts, from ``generator``, else a
generator seeded from ``seed``, else ``convstack.random.default_generator()``. Batch ``b`` of
the epoch is made under its own generator ``default_rng([epoch seed, b])`` (random
transforms without a generator of their own draw from it), so ``convstack.manual_seed``
fixes every epoch, and neither ``prefetch`` nor ``num_workers`` changes any number.
"""

from __future__ import annotations

import math
import queue
import threading
import weakref

import numpy

from convstack.data.dataset import collate
from convstack.data.transforms import apply_batch, use_generator
from convstack.data.workers import START_METHODS, WorkerPool, default_start_method
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


class BatchFetcher:
    """Makes batch ``b`` from its sample indices, under its own random stream; picklable for workers.

    ``fetcher(indices, seed)``: read the samples (``get_batch`` or one by one and ``collate_fn``),
    apply ``transform`` to the inputs and ``batch_transform`` to (inputs, targets), all with
    ``numpy.random.default_rng(seed)`` as the stream of random transforms without a generator.
    """

    def __init__(self, dataset, collate_fn=None, transform=None, batch_transform=None):
        self.dataset, self.collate_fn = dataset, collate_fn
        self.transform, self.batch_transform = transform, batch_transform

    def __call__(self, indices, seed):
        with use_generator(numpy.random.default_rng(seed)):
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
            if self.batch_transform is not None:
                batch = (*self.batch_transform(batch[0], batch[1]), *batch[2:])
        return batch


def _produce(batches, out_queue, stop):
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
    """One epoch of a DataLoader made in this process. ``close()`` (or dropping it) stops its prefetch thread."""

    def __init__(self, loader, order, seed):
        self._length = len(loader)
        self._batches = (_to_tensor(loader._fetcher(indices, [seed, b])) for b, indices in loader._tasks(order))
        self._done = False
        self._queue = None
        if loader.prefetch > 0:
            self._queue = queue.Queue(maxsize=loader.prefetch)
            stop = threading.Event()
            thread = threading.Thread(
                target=_produce, args=(self._batches, self._queue, stop), name="convstack-prefetch", daemon=True
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


class _WorkerIterator:
    """One epoch of a DataLoader made by worker processes, delivered in order."""

    def __init__(self, loader, order, seed):
        self._length = len(loader)
        self._owns_pool = not loader.persistent_workers
        self._pool = loader._worker_pool() if not self._owns_pool else loader._new_pool()
        self._epoch = self._pool.new_epoch()
        self._pending = ((b, indices, [seed, b]) for b, indices in loader._tasks(order))
        self._limit = max(loader.prefetch, 1) * loader.num_workers
        self._in_flight, self._next, self._ready, self._done = 0, 0, {}, False
        self._fill()

    def _fill(self) -> None:
        while self._in_flight < self._limit:
            task = next(self._pending, None)
            if task is None:
                return
            self._pool.submit(self._epoch, *task)
            self._in_flight += 1

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return self._length

    def __next__(self):
        if self._done or self._next >= self._length:
            self.close()
            raise StopIteration
        try:
            while self._next not in self._ready:
                epoch, index, ok, payload = self._pool.receive()
                if epoch is None:  # a worker could not even start
                    payload.reraise()
                if epoch == self._epoch:  # (results of an abandoned earlier epoch are dropped)
                    self._ready[index] = (ok, payload)
                    self._in_flight -= 1
            ok, payload = self._ready.pop(self._next)
            self._next += 1
            if not ok:
                payload.reraise()
            self._fill()
            return _to_tensor(payload)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop: the iterator ends, and its workers (unless persistent) are shut down."""
        self._done = True
        if self._owns_pool:
            self._pool.shutdown()


class DataLoader:
    """Iterate over a dataset in batches of convstack Tensors.

    Args:
        dataset: a map-style dataset (``__len__``, ``__getitem__``; ``get_batch`` makes it fast).
        batch_size: samples per batch.
        shuffle: a new random order every epoch.
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        generator: a ``numpy.random.Generator`` for the order (and the epoch's transform seed).
        seed: an int seeding a private generator when ``generator`` is not given.
        prefetch: batches a background thread keeps ready (0: produce them in the caller); with
            workers, the batches in flight per worker (at least 1).
        collate_fn: turns a list of samples into a batch (default: stack field by field);
            given one, samples are always read one by one.
        transform: applied to the inputs (first field) of each collated batch, vectorised when
            it has ``.batch``.
        sampler: the indices of an epoch, in order (an iterable with ``len()``, such as
            ``DistributedSampler``); excludes ``shuffle``.
        batch_transform: ``(inputs, targets) -> (inputs, targets)`` on each whole batch, after
            ``transform``: ``MixUp``, ``CutMix``.
        num_workers: worker processes making batches in parallel (0: this process).
        persistent_workers: keep the workers from one epoch to the next (else they start with
            each epoch and stop at its end).
        multiprocessing_context: how workers start: ``'forkserver'`` (default on POSIX) or
            ``'spawn'``; a plain fork is refused (see ``convstack.data.workers``).
        worker_init_fn: called as ``worker_init_fn(worker_id)`` in each worker once it starts.

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
                 prefetch=2, collate_fn=None, transform=None, sampler=None, batch_transform=None, num_workers=0,
                 persistent_workers=False, multiprocessing_context=None, worker_init_fn=None):
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
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise invalid("DataLoader", "num_workers", "a non-negative integer", num_workers)
        if multiprocessing_context is not None and multiprocessing_context not in START_METHODS:
            raise invalid("DataLoader", "multiprocessing_context",
                          "None, 'forkserver' or 'spawn' (a fork of a process running BLAS or Numba threads "
                          "can deadlock)", multiprocessing_context)
        if persistent_workers and num_workers == 0:
            raise invalid("DataLoader", "persistent_workers", "False when num_workers is 0", persistent_workers)
        for name, value in (("batch_transform", batch_transform), ("worker_init_fn", worker_init_fn)):
            if value is not None and not callable(value):
                raise invalid("DataLoader", name, "None or a callable", value)
        self.dataset = dataset
        self.sampler = sampler
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.generator = generator if generator is not None or seed is None else numpy.random.default_rng(seed)
        self.prefetch = prefetch
        self.collate_fn = collate_fn
        self.transform = transform
        self.batch_transform = batch_transform
        self.num_workers = num_workers
        self.persistent_workers = bool(persistent_workers)
        self.multiprocessing_context = multiprocessing_context or default_start_method()
        self.worker_init_fn = worker_init_fn
        self._pool = None

    def __len__(self) -> int:
        count = len(self.dataset if self.sampler is None else self.sampler) / self.batch_size
        return math.floor(count) if self.drop_last else math.ceil(count)

    def __iter__(self):
        generator = self.generator if self.generator is not None else default_generator()
        size = len(self.dataset)
        if self.sampler is not None:
            order = numpy.fromiter(iter(self.sampler), dtype=numpy.int64, count=len(self.sampler))
        else:
            order = generator.permutation(size) if self.shuffle else numpy.arange(size)
        seed = int(generator.integers(2**63))
        if self.num_workers > 0:
            return _WorkerIterator(self, order, seed)
        return _LoaderIterator(self, order, seed)

    @property
    def _fetcher(self) -> BatchFetcher:
        return BatchFetcher(self.dataset, self.collate_fn, self.transform, self.batch_transform)

    def _tasks(self, order):
        """(batch index, sample indices) of every batch of the epoch."""
        for b, start in enumerate(range(0, len(self) * self.batch_size, self.batch_size)):
            yield b, order[start : start + self.batch_size]

    def _new_pool(self) -> WorkerPool:
        return WorkerPool(self._fetcher, self.num_workers, self.multiprocessing_context, self.worker_init_fn)

    def _worker_pool(self) -> WorkerPool:
        """The persistent workers, started with the first epoch."""
        if self._pool is None:
            self._pool = self._new_pool()
        return self._pool

    def shutdown_workers(self) -> None:
        """Stop persistent workers now (they also stop when the loader is garbage collected)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_pool"] = None  # processes do not travel
        return state

    def __repr__(self) -> str:
        workers = f", num_workers={self.num_workers}" if self.num_workers else ""
        return (
            f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, prefetch={self.prefetch}{workers})"
        )
