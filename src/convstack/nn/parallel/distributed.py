"""``DistributedDataParallel``: one model trained by every rank, gradients averaged over them.

As ``torch.nn.parallel.DistributedDataParallel`` (and ChainerMN's multi-node optimizer,
Horovod's ``DistributedOptimizer``): each rank holds a whole copy of the model and runs
forward and backward on its own share of the batch; backward averages the gradients over
the ranks (``Reducer``, in buckets, overlapping backward), so that every rank's optimizer
takes the same step and the copies stay identical. With a per-rank loss that is a mean
over the rank's batch, N ranks with batches of B train as one process with batches of N*B.
"""

from __future__ import annotations

import contextlib
import weakref
import zlib
from functools import partial

import numpy

from convstack.autograd import is_grad_enabled
from convstack.distributed.collectives import all_gather_into_tensor, broadcast
from convstack.distributed.group import resolve
from convstack.nn.functional._utils import invalid
from convstack.nn.modules.module import Module
from convstack.nn.parallel.reducer import Reducer

#: Bytes of the first bucket (PyTorch's ``_DEFAULT_FIRST_BUCKET_BYTES``): the last layers'
#: gradients start travelling while backward is still in the earlier ones.
FIRST_BUCKET_BYTES = 1024 * 1024


def _grad_ready(reducer_ref, param) -> None:
    reducer = reducer_ref()  # a weak reference: the parameters' hooks do not keep the wrapper alive
    if reducer is not None:
        reducer.grad_ready(param)


def _broadcast_tensors(tensors: list, group, src: int = 0) -> None:
    """Overwrite ``tensors`` with rank ``src``'s: one broadcast per dtype of a flat copy of them all."""
    by_dtype: dict = {}
    for tensor in tensors:
        by_dtype.setdefault(tensor.data.dtype, []).append(tensor)
    for dtype, members in by_dtype.items():
        flat = numpy.concatenate([t.data.reshape(-1) for t in members]) if members else numpy.zeros(0, dtype)
        broadcast(flat, src, group)
        start = 0
        for tensor in members:
            stop = start + tensor.data.size
            tensor.data[...] = flat[start:stop].reshape(tensor.data.shape)
            start = stop


class DistributedDataParallel(Module):
    """Wrap ``module`` so that backward averages its gradients over the ranks of a process group.

    At construction every rank checks that it holds the same architecture as the others
    (the parameters' shapes and dtypes) and takes rank 0's parameters and buffers. Each
    forward in training mode then copies rank 0's buffers (the batch-norm running
    statistics) to the others, unless ``broadcast_buffers=False``; each backward after a
    forward averages the gradients: bucket by bucket, starting while backward still runs,
    finished before ``backward()`` returns. Call ``init_process_group`` first.

    Args:
        module: the model; ``.module`` gives it back (checkpoint ``model.module.state_dict()``).
        broadcast_buffers: copy rank 0's buffers to every rank at each training forward.
        process_group: the ranks to average over (default: the default group).
        bucket_cap_mb: the largest bucket of gradients one allreduce carries, in MiB (the
            first bucket is at most 1 MiB).

    Examples:
        >>> dist.init_process_group("mpi")                          # doctest: +SKIP
        >>> model = DistributedDataParallel(lenet5())               # doctest: +SKIP
        >>> F.cross_entropy(model(images), labels).backward()       # averaged .grad on every rank
        >>> with model.no_sync():                                   # accumulate locally...
        ...     F.cross_entropy(model(images), labels).backward()
        >>> F.cross_entropy(model(images2), labels2).backward()     # ...and average the sum here
    """

    def __init__(self, module, *, broadcast_buffers: bool = True, process_group=None, bucket_cap_mb: float = 25.0):
        super().__init__()
        if not isinstance(module, Module):
            raise invalid("DistributedDataParallel", "module", "a convstack.nn.Module", type(module).__name__)
        if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, (int, float)) or not bucket_cap_mb > 0:
            raise invalid("DistributedDataParallel", "bucket_cap_mb", "a positive number of MiB", bucket_cap_mb)
        self.module = module
        self.process_group = resolve(process_group)
        self.broadcast_buffers = bool(broadcast_buffers)
        self.require_backward_grad_sync = True
        self._check_same_model()
        if self.process_group.size > 1:
            _broadcast_tensors(list(module.parameters()) + list(module.buffers()), self.process_group)
        params = [p for p in module.parameters() if p.requires_grad]
        bucket_bytes = int(bucket_cap_mb * 1024 * 1024)
        self.reducer = Reducer(params, self.process_group, min(FIRST_BUCKET_BYTES, bucket_bytes), bucket_bytes)
        if self.process_group.size > 1:
            hook = partial(_grad_ready, weakref.ref(self.reducer))
            self._hook_handles = [p.register_post_accumulate_grad_hook(hook) for p in params]

    def _check_same_model(self) -> None:
        """Refuse to start when the ranks' models differ (every rank raises the same error)."""
        group = self.process_group
        described = ";".join(f"{tuple(p.shape)}{p.dtype}" for p in self.module.parameters())
        signature = numpy.array(
            [len(list(self.module.parameters())), zlib.crc32(described.encode())], dtype=numpy.int64
        )
        gathered = numpy.empty((group.size, 2), dtype=numpy.int64)
        all_gather_into_tensor(gathered, signature, group)
        differing = [rank for rank in range(group.size) if not numpy.array_equal(gathered[rank], gathered[0])]
        if differing:
            raise ValueError(
                f"DistributedDataParallel: the model on rank(s) {differing} differs from rank 0's (parameter count, "
                "shapes or dtypes): every rank must build the same model"
            )

    def forward(self, *inputs, **kwargs):
        if self.process_group.size > 1:
            if self.broadcast_buffers and self.training:
                buffers = [b for b in self.module.buffers() if b is not None]
                if buffers:
                    _broadcast_tensors(buffers, self.process_group)
            if is_grad_enabled() and self.require_backward_grad_sync:
                self.reducer.arm()
        return self.module(*inputs, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Within it, backward accumulates gradients on each rank without averaging them.

        The first backward after a forward outside it averages everything accumulated
        (gradient accumulation over several batches for one communication).
        """
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def extra_repr(self) -> str:
        group = self.process_group
        return f"world_size={group.size}, buckets={len(self.reducer.buckets)}"
