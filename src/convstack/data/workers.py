"""Worker processes for ``DataLoader(num_workers=N)``: the dataset and its transforms in parallel.

Design (the measurements behind it are in docs/data_loading.md):

* **Processes, started by 'forkserver'** (POSIX; 'spawn' elsewhere or on request), never by a
  plain ``fork`` of the training process: a fork copies only the calling thread, and a copy of
  a process whose OpenBLAS or Numba thread pools are running can deadlock on a lock one of
  those threads held. The fork server is a fresh single-threaded process that has never run a
  compiled kernel, so its children start clean. Each worker then limits BLAS and Numba to one
  thread (``OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS=1`` for libraries it loads later, and
  ``convstack.blas.set_threads(1)`` for the OpenBLAS already loaded): N workers beside the
  training process's own threads must not multiply into N x cores threads.
* **Deterministic:** the main process draws the order and one seed per epoch and sends each
  task as (batch index, sample indices, seed); a worker makes batch ``b`` under its own
  generator ``default_rng([epoch seed, b])``, exactly as ``num_workers=0`` does, so every batch
  is the same whichever worker makes it and in whatever order. Results are put back in order.
* **Errors:** an exception in a worker comes back with the worker's traceback text and is
  raised again in the main process, as the same exception type when it can be rebuilt from a
  message (else ``RuntimeError``). A worker that dies (killed, out of memory) is reported by
  its exit code instead of leaving the loader waiting forever.
* **Clean shutdown:** workers stop when the epoch ends, when the iterator is closed or garbage
  collected, or (``persistent_workers``) when the loader is; daemon processes, joined and, if
  they do not stop, terminated; and a worker whose parent died exits by itself.

The dataset, its transforms, ``collate_fn`` and ``batch_transform`` travel to the workers by
pickle, once per worker start: they must be picklable (module-level functions, not lambdas).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
import queue
import sys
import traceback
import weakref

_POLL_SECONDS = 0.1
_JOIN_SECONDS = 2.0
START_METHODS = ("forkserver", "spawn")
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
_info = None


class WorkerInfo:
    """What ``get_worker_info()`` tells code running in a worker: its id, the worker count, the dataset."""

    def __init__(self, id: int, num_workers: int, dataset):
        self.id, self.num_workers, self.dataset = id, num_workers, dataset

    def __repr__(self) -> str:
        return f"WorkerInfo(id={self.id}, num_workers={self.num_workers})"


def get_worker_info():
    """In a DataLoader worker process, its ``WorkerInfo``; in the main process, None (as PyTorch's)."""
    return _info


def default_start_method() -> str:
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


class RemoteError:
    """An exception raised in a worker, carried back as its type and its traceback text."""

    def __init__(self, error: BaseException, worker_id: int):
        self.type_name = type(error).__name__
        self.text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        self.worker_id = worker_id
        try:
            self.error_type = pickle.loads(pickle.dumps(type(error)))
        except Exception:  # a local class cannot be sent: RuntimeError stands in
            self.error_type = None

    def reraise(self):
        message = (
            f"Caught {self.type_name} in DataLoader worker process {self.worker_id}.\n"
            f"Original traceback (most recent call last, in the worker):\n{self.text}"
        )
        try:
            error = self.error_type(message) if self.error_type is not None else None
        except Exception:
            error = None
        raise error if isinstance(error, BaseException) else RuntimeError(message)


def _limit_threads() -> None:
    for variable in _THREAD_VARIABLES:
        os.environ[variable] = "1"
    from convstack import blas

    blas.set_threads(1)
    numba = sys.modules.get("numba")
    if numba is not None:
        try:
            numba.set_num_threads(1)
        except Exception:  # an old Numba or a threading layer that cannot be told: leave it
            pass


def _as_arrays(value):
    """Tensors to their arrays, so that what crosses the process boundary is plain data."""
    from convstack.tensor import Tensor

    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, (tuple, list)):
        return type(value)(_as_arrays(v) for v in value)
    return value


def _worker_main(worker_id, num_workers, payload, tasks, results, worker_init_fn):
    """A worker's life: take (epoch, batch, indices, seed) tasks until told to stop or orphaned."""
    global _info
    try:
        _limit_threads()
        fetcher = pickle.loads(payload)
        _info = WorkerInfo(worker_id, num_workers, fetcher.dataset)
        if worker_init_fn is not None:
            worker_init_fn(worker_id)
    except Exception as error:
        results.put((None, None, False, RemoteError(error, worker_id)))
        return
    parent = multiprocessing.parent_process()
    try:
        while True:
            try:
                task = tasks.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if parent is not None and not parent.is_alive():
                    break  # the main process is gone: do not linger as an orphan
                continue
            if task is None:
                break
            epoch, index, indices, seed = task
            try:
                results.put((epoch, index, True, _as_arrays(fetcher(indices, seed))))
            except Exception as error:
                results.put((epoch, index, False, RemoteError(error, worker_id)))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the main process handles it
        pass
    finally:
        results.cancel_join_thread()  # exit even if the main process never reads what is left


def _shutdown(workers, tasks, results) -> None:
    try:  # tasks not yet taken need not be made: the stop signals go to the front
        while True:
            tasks.get_nowait()
    except (queue.Empty, OSError, ValueError):
        pass
    for _ in workers:
        try:
            tasks.put(None)
        except (OSError, ValueError):
            break
    for worker in workers:
        worker.join(timeout=_JOIN_SECONDS)
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
            worker.join(timeout=_JOIN_SECONDS)
    for channel in (tasks, results):
        channel.cancel_join_thread()
        channel.close()


class WorkerPool:
    """``num_workers`` processes that turn (indices, seed) tasks into batches with ``fetcher``."""

    _epochs = itertools.count()

    def __init__(self, fetcher, num_workers: int, start_method: str, worker_init_fn=None):
        try:
            payload = pickle.dumps(fetcher, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:
            raise TypeError(
                f"DataLoader(num_workers={num_workers}): the dataset, transform, collate_fn and batch_transform "
                f"must be picklable to reach the worker processes ({type(error).__name__}: {error}); use "
                f"module-level functions instead of lambdas or local functions, or num_workers=0"
            ) from error
        context = multiprocessing.get_context(start_method)
        self._tasks, self._results = context.Queue(), context.Queue()
        self._workers = [
            context.Process(
                target=_worker_main,
                args=(worker_id, num_workers, payload, self._tasks, self._results, worker_init_fn),
                name=f"convstack-loader-{worker_id}",
                daemon=True,
            )
            for worker_id in range(num_workers)
        ]
        for worker in self._workers:
            worker.start()
        self._finalizer = weakref.finalize(self, _shutdown, self._workers, self._tasks, self._results)

    def new_epoch(self) -> int:
        """A fresh tag for the tasks of one iterator (results of abandoned iterators are dropped by it)."""
        return next(self._epochs)

    def submit(self, epoch: int, index: int, indices, seed) -> None:
        self._tasks.put((epoch, index, indices, seed))

    def receive(self):
        """The next (epoch, batch index, ok, batch or RemoteError); raises if a worker died."""
        while True:
            try:
                return self._results.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                for worker_id, worker in enumerate(self._workers):
                    if worker.exitcode is not None:
                        self.shutdown()
                        code = worker.exitcode
                        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
                        raise RuntimeError(
                            f"DataLoader worker {worker_id} (pid {worker.pid}) exited unexpectedly ({how}); "
                            "if it ran out of memory, use fewer workers or a smaller batch"
                        ) from None

    @property
    def pids(self) -> list[int]:
        return [worker.pid for worker in self._workers]

    def shutdown(self) -> None:
        """Stop the workers (idempotent)."""
        self._finalizer()
