"""The ``"mpi"`` backend: collectives through mpi4py, on a private copy of ``MPI.COMM_WORLD``.

mpi4py is imported (and MPI initialised) only when ``init_process_group("mpi")`` runs, never
when convstack is imported. The world is the one the launcher (``mpiexec -n N``) started;
without a launcher MPI makes a world of one, and without mpi4py installed so does
convstack (unless a launcher's variables say that several processes were started, which
then fails with the command that installs mpi4py).

Every operation is MPI's nonblocking collective (``Iallreduce``, ``Ibcast``,
``Iallgather``, ``Ibarrier``), waited for with a deadline by ``Work``. The group works on a
duplicate of ``COMM_WORLD``, so that its collectives never match a user's own ones.
"""

from __future__ import annotations

import importlib.util

import numpy

from convstack.distributed.group import ProcessGroup, ReduceOp, SingleProcessGroup, register_backend
from convstack.distributed.launch import launcher_world_size
from convstack.distributed.work import Work


class MPIProcessGroup(ProcessGroup):
    """The ranks of an MPI communicator (``MPI.COMM_WORLD.Dup()`` for the default group)."""

    backend = "mpi"

    def __init__(self, comm, timeout: float):
        from mpi4py import MPI

        super().__init__(timeout)
        self._mpi = MPI
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        machine = comm.Split_type(MPI.COMM_TYPE_SHARED)  # the ranks sharing this machine's memory
        self.local_size = machine.Get_size()
        machine.Free()
        self._ops = {
            ReduceOp.SUM: MPI.SUM,
            ReduceOp.AVG: MPI.SUM,
            ReduceOp.PRODUCT: MPI.PROD,
            ReduceOp.MIN: MPI.MIN,
            ReduceOp.MAX: MPI.MAX,
        }

    def all_reduce(self, array, op) -> Work:
        request = self.comm.Iallreduce(self._mpi.IN_PLACE, array, op=self._ops[op])
        average = None
        if op is ReduceOp.AVG:
            def average():
                numpy.divide(array, self.size, out=array)
        return Work(self, request.Test, f"all_reduce of {array.size} {array.dtype} values", average)

    def broadcast(self, array, src: int) -> Work:
        request = self.comm.Ibcast(array, root=src)
        return Work(self, request.Test, f"broadcast of {array.size} {array.dtype} values from rank {src}")

    def all_gather(self, output, array) -> Work:
        request = self.comm.Iallgather(array, output)
        return Work(self, request.Test, f"all_gather of {array.size} {array.dtype} values")

    def barrier(self) -> Work:
        return Work(self, self.comm.Ibarrier().Test, "barrier")

    def abort(self, code: int = 1):
        self._mpi.COMM_WORLD.Abort(code)


def create_mpi_group(timeout: float) -> ProcessGroup:
    """The default group of the ``"mpi"`` backend (see the module's docstring)."""
    if importlib.util.find_spec("mpi4py") is None:
        started = launcher_world_size()
        if started is not None and started > 1:
            raise RuntimeError(
                f"init_process_group: the launcher started {started} processes, but mpi4py is not installed "
                "in this Python: pip install \"convstack[mpi]\""
            )
        return SingleProcessGroup(timeout)
    from mpi4py import MPI

    return MPIProcessGroup(MPI.COMM_WORLD.Dup(), timeout)


register_backend("mpi", create_mpi_group)
