"""Starting ranks: what a launcher tells a process, the ``mpiexec`` command, threads per rank.

``convstack train --nproc N`` runs ``mpiexec -n N python -m convstack train ...`` through
``mpiexec_command``; a process started by any launcher (MPICH's and Intel MPI's Hydra,
Open MPI, MVAPICH) finds its world size in the variables the launcher sets
(``launcher_world_size``).

Threads: N ranks on one machine each running OpenBLAS on every core would fight over the
cores, so each rank gets its share (``threads_per_rank``). ``set_rank_threads`` is the one
place that sets a rank's compute threads.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

# World-size variables: Open MPI, MPICH / Intel MPI (Hydra's PMI), MVAPICH.
_WORLD_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")


def launcher_world_size() -> int | None:
    """How many processes the launcher that started this one started in all; None without a launcher."""
    for name in _WORLD_SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return None


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_rank(local_size: int) -> int:
    """This machine's cores shared among the ``local_size`` ranks running on it (at least 1)."""
    return max(1, available_cores() // max(1, int(local_size)))


def set_rank_threads(count: int) -> bool:
    """Give this rank ``count`` compute threads (the compiled kernels' and OpenBLAS's); True when they were set."""
    from convstack import blas, threads

    threads.set_num_threads(count)
    return blas.threads() == count


def find_mpiexec() -> str | None:
    """The ``mpiexec`` beside this Python (the ``mpich`` wheel's), else the first on PATH; None if none."""
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("mpiexec")


def mpiexec_command(nproc: int, arguments: list, mpiexec: str | None = None) -> list:
    """``[mpiexec, -n, N, python, -m, convstack, *arguments]``; ``FileNotFoundError`` without mpiexec."""
    mpiexec = mpiexec or find_mpiexec()
    if mpiexec is None:
        raise FileNotFoundError(
            "mpiexec not found: pip install \"convstack[mpi]\" (mpi4py and the mpich wheel) or install an MPI"
        )
    return [mpiexec, "-n", str(int(nproc)), sys.executable, "-m", "convstack", *arguments]


def mpiexec_environment() -> dict:
    """The environment for ``mpiexec``: this one, plus Open MPI's consent to run as root when we are root.

    (MPICH's Hydra runs as root without being asked; Open MPI refuses unless told.)
    """
    environment = dict(os.environ)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        environment.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        environment.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    return environment
