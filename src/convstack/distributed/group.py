"""The default process group: created by ``init_process_group``, read by every collective.

A process group is the set of ranks that train one model together, with the engine that
moves their arrays (a backend). Backends are registered by name (``register_backend``);
``"mpi"`` is the one convstack ships. Every group offers the same operations on NumPy
arrays, each returning a ``Work``: ``all_reduce``, ``broadcast``, ``all_gather``,
``barrier``; and ``abort`` ends the whole job.

Once a group of several ranks exists, an exception that nothing catches on one rank
aborts them all (as ``python -m mpi4py`` does): otherwise the failed rank would wait in
MPI's finalisation while the others wait in their next collective, for ever.
"""

from __future__ import annotations

import abc
import enum
import sys
from datetime import timedelta

from convstack.distributed.work import DistributedError, Work

#: How long a collective may wait for the other ranks before it gives up (PyTorch's NCCL default).
DEFAULT_TIMEOUT = timedelta(minutes=10)


class ReduceOp(enum.Enum):
    """How ``all_reduce`` combines the ranks' values, element by element (``AVG``: floating point only)."""

    SUM = "sum"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    AVG = "avg"


class ProcessGroup(abc.ABC):
    """The ranks training together. Subclasses implement the operations for one backend.

    Attributes:
        backend: the backend's name (``"mpi"``).
        rank: this process's index, 0 to ``size - 1``.
        size: the number of ranks (the world size).
        local_size: how many of them run on this machine.
        timeout: seconds a collective may wait before ``DistributedError``.
    """

    backend = ""
    rank = 0
    size = 1
    local_size = 1

    def __init__(self, timeout: float):
        self.timeout = float(timeout)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(rank={self.rank}, size={self.size}, local_size={self.local_size}, "
                f"timeout={self.timeout:g}s)")

    @abc.abstractmethod
    def all_reduce(self, array, op) -> Work:
        """Reduce the C-contiguous ``array`` in place across the ranks with ``op`` (a ``ReduceOp``)."""

    @abc.abstractmethod
    def broadcast(self, array, src: int) -> Work:
        """Overwrite ``array`` on every rank with rank ``src``'s."""

    @abc.abstractmethod
    def all_gather(self, output, array) -> Work:
        """``output[r] = array`` of rank r, for every r; ``output`` has shape ``(size, *array.shape)``."""

    @abc.abstractmethod
    def barrier(self) -> Work:
        """Completes once every rank has entered it."""

    @abc.abstractmethod
    def abort(self, code: int = 1):
        """End every rank of the job now, with exit status ``code``."""


class SingleProcessGroup(ProcessGroup):
    """A world of one: what ``init_process_group`` gives without a launcher and without mpi4py.

    Every collective is complete at once and leaves the array as a world of one would.
    """

    backend = "mpi"

    def all_reduce(self, array, op) -> Work:
        return Work(self, description="all_reduce")

    def broadcast(self, array, src: int) -> Work:
        return Work(self, description="broadcast")

    def all_gather(self, output, array) -> Work:
        output[0] = array
        return Work(self, description="all_gather")

    def barrier(self) -> Work:
        return Work(self, description="barrier")

    def abort(self, code: int = 1):
        sys.stderr.flush()
        raise SystemExit(code)


_BACKENDS: dict = {}
_default: ProcessGroup | None = None
_previous_excepthook = None


def register_backend(name: str, create) -> None:
    """Make ``init_process_group(backend=name)`` call ``create(timeout_seconds)`` for its group."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_backend: invalid value for argument `name`: expected a name, received {name!r}")
    _BACKENDS[name.lower()] = create


def _seconds(timeout) -> float:
    if timeout is None:
        return DEFAULT_TIMEOUT.total_seconds()
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise ValueError(
            "init_process_group: invalid value for argument `timeout`: expected a positive number of seconds "
            f"or a datetime.timedelta, received {timeout!r}"
        )
    return float(seconds)


def init_process_group(backend: str = "mpi", *, timeout=None, world_size: int = -1, rank: int = -1) -> None:
    """Join the ranks started by the launcher (``mpiexec -n N ...``) into the default group.

    With MPI the launcher decides the world: ``world_size`` and ``rank``, when given, are
    only checked against it. A process started without a launcher is a world of one.

    Args:
        backend: ``"mpi"`` (mpi4py; ``pip install "convstack[mpi]"``) or a registered name.
        timeout: how long a collective may wait for the others (a ``datetime.timedelta`` or
            seconds; default 10 minutes) before it raises ``DistributedError``.
        world_size, rank: the expected world size and this process's rank (-1: any).

    Examples:
        >>> import convstack.distributed as dist
        >>> dist.init_process_group("mpi")          # doctest: +SKIP
        >>> dist.get_rank(), dist.get_world_size()  # doctest: +SKIP
        (0, 2)
    """
    global _default, _previous_excepthook
    if _default is not None:
        raise RuntimeError("trying to initialize the default process group twice!")
    name = backend.lower() if isinstance(backend, str) else backend
    if name not in _BACKENDS:
        raise ValueError(
            f"init_process_group: invalid value for argument `backend`: expected one of "
            f"{', '.join(repr(b) for b in sorted(_BACKENDS))}, received {backend!r}"
        )
    group = _BACKENDS[name](_seconds(timeout))
    for argument, expected, actual in (("world_size", world_size, group.size), ("rank", rank, group.rank)):
        if expected != -1 and expected != actual:
            raise ValueError(
                f"init_process_group: invalid value for argument `{argument}`: the launcher started this process "
                f"with {argument} {actual}, received {expected!r}"
            )
    _default = group
    if group.size > 1:
        _previous_excepthook = sys.excepthook
        sys.excepthook = _abort_on_uncaught_exception


def _abort_on_uncaught_exception(kind, error, traceback) -> None:
    if issubclass(kind, DistributedError):  # says what failed where; the traceback would bury it
        print(f"{kind.__name__}: {error}", file=sys.stderr)
    else:
        (_previous_excepthook or sys.__excepthook__)(kind, error, traceback)
    group = _default
    if group is not None and group.size > 1:
        print(
            f"convstack.distributed: rank {group.rank} stopped on {kind.__name__}; aborting all {group.size} ranks",
            file=sys.stderr,
            flush=True,
        )
        group.abort(1)


def destroy_process_group() -> None:
    """Leave the default group (MPI itself is finalised when the process exits)."""
    global _default, _previous_excepthook
    if _default is None:
        raise ValueError("Default process group has not been initialized, please make sure to call init_process_group.")
    if sys.excepthook is _abort_on_uncaught_exception:
        sys.excepthook = _previous_excepthook or sys.__excepthook__
    _default, _previous_excepthook = None, None


def is_initialized() -> bool:
    """Whether ``init_process_group`` has run (and ``destroy_process_group`` not since)."""
    return _default is not None


def default_group() -> ProcessGroup:
    """The default process group; ``ValueError`` before ``init_process_group``."""
    if _default is None:
        raise ValueError("Default process group has not been initialized, please make sure to call init_process_group.")
    return _default


def resolve(group) -> ProcessGroup:
    """``group``, or the default group when it is None."""
    return default_group() if group is None else group


def get_rank(group=None) -> int:
    """This process's rank in ``group`` (default: the default group)."""
    return resolve(group).rank


def get_world_size(group=None) -> int:
    """The number of ranks in ``group`` (default: the default group)."""
    return resolve(group).size


def get_backend(group=None) -> str:
    return resolve(group).backend
