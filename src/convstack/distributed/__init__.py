"""Data-parallel training on several processes and machines, over MPI: groups and collectives.

Shaped like ``torch.distributed``. Start N processes with a launcher, join them, and
every rank trains a whole copy of the model on its share of each batch while
``DistributedDataParallel`` averages the gradients (as ChainerMN and Horovod do)::

    # mpiexec -n 2 python train.py
    import convstack.distributed as dist
    from convstack.nn.parallel import DistributedDataParallel
    from convstack.data import DataLoader, DistributedSampler

    dist.init_process_group("mpi")
    model = DistributedDataParallel(model)          # rank 0's weights on every rank
    sampler = DistributedSampler(train_set)         # each rank a disjoint shard
    loader = DataLoader(train_set, batch_size=64, sampler=sampler)  # 64 per rank
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for images, labels in loader:
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()                         # gradients averaged over the ranks here
            optimizer.step()

The engine is MPI through mpi4py (``pip install "convstack[mpi]"`` installs mpi4py and the
``mpich`` wheel, whose ``mpiexec`` runs as root too); it is imported only by
``init_process_group``. Every collective waits with a deadline (``timeout``): a rank
that dies or hangs makes the others stop with ``DistributedError`` instead of waiting for
ever, and an uncaught exception on one rank aborts the whole job.
"""

from convstack.distributed import mpi as _mpi  # registers the "mpi" backend
from convstack.distributed.collectives import all_gather, all_gather_into_tensor, all_reduce, barrier, broadcast
from convstack.distributed.group import (
    DEFAULT_TIMEOUT,
    ProcessGroup,
    ReduceOp,
    default_group,
    destroy_process_group,
    get_backend,
    get_rank,
    get_world_size,
    init_process_group,
    is_initialized,
    register_backend,
)
from convstack.distributed.work import DistributedError, Work


def is_available() -> bool:
    """Whether the MPI backend can run more than one rank (mpi4py is installed)."""
    import importlib.util

    return importlib.util.find_spec("mpi4py") is not None


__all__ = [
    "init_process_group", "destroy_process_group", "is_initialized", "is_available", "get_rank",
    "get_world_size", "get_backend", "default_group", "register_backend", "ProcessGroup", "ReduceOp", "Work",
    "DistributedError", "DEFAULT_TIMEOUT", "all_reduce", "broadcast", "all_gather", "all_gather_into_tensor",
    "barrier",
]
