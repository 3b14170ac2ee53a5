"""Training one model on several processes: ``DistributedDataParallel`` (see ``convstack.distributed``)."""

from convstack.nn.parallel.distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
