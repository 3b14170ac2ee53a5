"""One setting for the threads convstack's kernels run on: Numba's parallel kernels and NumPy's OpenBLAS.

Both pools default to every core, and each spins a while after its work; when both are
busy at once (a compiled kernel beside a GEMM) a 2-core machine runs four threads on two
cores. ``set_num_threads(n)`` sets both to ``n`` so that they take turns instead. Nothing
is changed until it is called (``convstack train`` and ``convstack bench`` call it).

Numba's count applies to the thread that sets it (Numba's rule): kernels launched from
other threads (the DataLoader's prefetch thread) use Numba's default, every core.
"""

from __future__ import annotations

import os
import sys

from convstack import blas

_state = {"threads": None}


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), which can be fewer than the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _numba():
    """Numba, if it is already imported or importable; else None."""
    module = sys.modules.get("numba")
    if module is not None:
        return module
    try:
        import numba
    except ImportError:
        return None
    return numba


def set_num_threads(count: int | None = None) -> int:
    """Run Numba's parallel kernels and OpenBLAS's GEMMs on ``count`` threads (None: the cores available).

    Returns the count set. Numba cannot use more threads than it started with
    (``NUMBA_NUM_THREADS``, every core by default); a larger count is capped there.

    Raises:
        ValueError: ``count`` is not a positive integer.
    """
    if count is None:
        count = available_cores()
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(
            f"set_num_threads: invalid value for argument `count`: expected a positive integer or None, "
            f"received {count!r}"
        )
    blas.set_threads(count)
    numba = _numba()
    if numba is not None:
        numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))
    _state["threads"] = count
    return count


def get_num_threads() -> int:
    """The threads kernels run on: OpenBLAS's count where it can be read, else what ``set_num_threads`` set, else
    the cores available."""
    known = blas.threads()
    if known is not None:
        return known
    return _state["threads"] or available_cores()
