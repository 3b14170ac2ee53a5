"""Gradient averaging in buckets, during backward: the machinery of ``DistributedDataParallel``.

The parameters are grouped into buckets, in the reverse of ``module.parameters()`` (about
the order backward finishes their gradients), each bucket at most ``bucket_bytes`` (the
first one ``first_bucket_bytes``, so that communication starts early, as PyTorch does).
A bucket owns one flat buffer: its parameters' gradients back to back, then one flag per
parameter saying whether this rank produced a gradient for it::

    flat = [ grad(p_k) ... grad(p_j) | flag_k ... flag_j ]      (numel + len(params),)

During backward each parameter's post-accumulate hook copies its ``.grad`` into its slice
and sets its flag. When a bucket is full, it, and every later-launched bucket that is full
too, starts a nonblocking allreduce (SUM) while backward goes on; buckets start strictly
in order, because MPI matches collectives by the order in which ranks start them. Every
hook also tests the allreduces in flight, which is what moves MPI's progress along
between the layers' backward computations.

When the walk ends (``autograd.queue_callback``), the buckets a rank could not fill (a
parameter this rank did not use) start with zeros in the gaps, every allreduce is waited
for (with the group's deadline), and each gradient becomes the sum divided by the world
size. A parameter no rank produced a gradient for (its summed flag is 0) keeps
``.grad = None``, as in a single process.
"""

from __future__ import annotations

import time

import numpy

from convstack.autograd import queue_callback
from convstack.distributed.group import ReduceOp
from convstack.tensor import Tensor


class Bucket:
    """One flat buffer of gradients averaged by one allreduce (see the module's docstring)."""

    def __init__(self, params: list, dtype):
        self.params = params
        self.spans = []
        start = 0
        for param in params:
            self.spans.append((start, start + param.data.size))
            start += param.data.size
        self.numel = start
        self.flat = numpy.zeros(start + len(params), dtype=dtype)
        self.flags = self.flat[start:]  # (len(params),) 1 where this rank has a gradient
        self.pending = len(params)
        self.work = None

    @property
    def nbytes(self) -> int:
        return self.numel * self.flat.itemsize

    def reset(self) -> None:
        self.flags[...] = 0
        self.pending = len(self.params)
        self.work = None

    def fill_gaps(self) -> None:
        """Zeros where this rank has no gradient (a parameter it did not use in this pass)."""
        for (start, stop), flag in zip(self.spans, self.flags):
            if not flag:
                self.flat[start:stop] = 0

    def write_back(self, world_size: int) -> None:
        """The averaged gradients into the parameters' ``.grad``."""
        grads = self.flat[: self.numel]
        numpy.divide(grads, world_size, out=grads)
        for param, (start, stop), count in zip(self.params, self.spans, self.flags):
            if not count:  # no rank used it: no gradient, as without DistributedDataParallel
                continue
            average = grads[start:stop].reshape(param.data.shape)
            held = param.grad.data if param.grad is not None else None
            if held is not None and held.shape == average.shape and held.flags.writeable:
                numpy.copyto(held, average)
            else:
                param.grad = Tensor._make(average.copy())


def assign_buckets(params: list, first_bucket_bytes: int, bucket_bytes: int) -> list:
    """Buckets over ``params`` taken in reverse order, one dtype each, within the byte limits."""
    buckets, open_buckets = [], {}
    limit = first_bucket_bytes
    for param in reversed(params):
        dtype = param.data.dtype
        members, size = open_buckets.get(dtype, ([], 0))
        nbytes = param.data.nbytes
        if members and size + nbytes > limit:
            buckets.append(Bucket(members, dtype))
            members, size = [], 0
            limit = bucket_bytes
        open_buckets[dtype] = (members + [param], size + nbytes)
    buckets.extend(Bucket(members, dtype) for dtype, (members, _) in open_buckets.items() if members)
    return buckets


class Reducer:
    """Averages the gradients of ``params`` over ``group``'s ranks during each armed backward.

    Attributes:
        buckets: the ``Bucket`` objects, in the order their allreduces start.
        last_wait_seconds: how long the last synchronised backward waited, once its walk was
            over, for allreduces that had not finished (communication not hidden behind
            backward).
        last_bytes_done_in_backward: how many of the gradient bytes had been averaged by then
            (communication hidden behind backward).
    """

    def __init__(self, params: list, group, first_bucket_bytes: int, bucket_bytes: int):
        self.group = group
        self.buckets = assign_buckets(params, first_bucket_bytes, bucket_bytes)
        self._slots = {id(p): (b, i) for b in self.buckets for i, p in enumerate(b.params)}
        self._armed = self._started = False
        self._next = 0  # the first bucket whose allreduce has not started
        self.last_wait_seconds = 0.0
        self.last_bytes_done_in_backward = 0

    def arm(self) -> None:
        """Make the next backward average the gradients (called by each synchronised forward)."""
        for bucket in self.buckets:
            if bucket.work is not None:  # a backward that raised left this one in flight
                bucket.work.wait()
            bucket.reset()
        self._armed, self._started, self._next = True, False, 0

    def grad_ready(self, param) -> None:
        """The post-accumulate hook: ``param.grad`` is final for this pass."""
        if not self._armed:
            return
        if not self._started:
            self._started = True
            queue_callback(self.finish)
        bucket, index = self._slots[id(param)]
        start, stop = bucket.spans[index]
        bucket.flat[start:stop] = param.grad.data.reshape(-1)
        if not bucket.flags[index]:
            bucket.flags[index] = 1
            bucket.pending -= 1
        self._launch_full()
        for started in self.buckets[: self._next]:  # drive MPI's progress between layers
            if not started.work.is_completed():
                break

    def _launch(self, bucket) -> None:
        bucket.work = self.group.all_reduce(bucket.flat, ReduceOp.SUM)
        self._next += 1

    def _launch_full(self) -> None:
        while self._next < len(self.buckets) and self.buckets[self._next].pending == 0:
            self._launch(self.buckets[self._next])

    def finish(self) -> None:
        """After the walk: start what is left, wait for everything, write the averages back."""
        started = time.perf_counter()
        launched = self.buckets[: self._next]
        self.last_bytes_done_in_backward = sum(b.nbytes for b in launched if b.work.is_completed())
        for bucket in self.buckets[self._next :]:
            bucket.fill_gaps()
            self._launch(bucket)
        for bucket in self.buckets:
            bucket.work.wait()
        self.last_wait_seconds = time.perf_counter() - started
        for bucket in self.buckets:
            bucket.write_back(self.group.size)
            bucket.work = None
        self._armed = False
