"""Thread counts for a fair race: NumPy's BLAS and PyTorch's intra-op pool set to the same number.

OpenBLAS reads ``OPENBLAS_NUM_THREADS`` (or ``OMP_NUM_THREADS``) only when it is loaded, that
is when NumPy is first imported, and ``convstack`` itself imports NumPy; so instead of the
environment, ``set_blas_threads`` calls OpenBLAS's own ``openblas_set_num_threads`` through
ctypes at run time (the library NumPy loaded is found in ``/proc/self/maps``, as threadpoolctl
does). Where that is impossible (another BLAS, not Linux) the count is left as the environment
made it and ``blas_info()`` reports what is known, so that a table never claims a setting it
did not make.
"""

from __future__ import annotations

import ctypes
import os

# Symbol prefixes and suffixes of the OpenBLAS builds NumPy ships with (scipy-openblas, 64-bit
# integers) and of plain system OpenBLAS.
_NAME_PATTERNS = ("scipy_openblas_{}64_", "openblas_{}64_", "scipy_openblas_{}", "openblas_{}")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), which can be fewer than the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _loaded_openblas():
    """The OpenBLAS shared library NumPy loaded, as a ctypes handle, or None."""
    import numpy  # noqa: F401  (makes sure the library is loaded before looking for it)

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and ".so" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _function(library, name: str):
    for pattern in _NAME_PATTERNS:
        function = getattr(library, pattern.format(name), None)
        if function is not None:
            return function
    return None


def set_blas_threads(threads: int) -> bool:
    """Ask NumPy's OpenBLAS to use ``threads`` threads; True when it could be told."""
    library = _loaded_openblas()
    setter = _function(library, "set_num_threads") if library is not None else None
    if setter is None:
        return False
    setter.argtypes = [ctypes.c_int]
    setter.restype = None
    setter(int(threads))
    return True


def blas_info() -> dict:
    """NumPy's BLAS: its configuration string and current thread count (None where unknown)."""
    library = _loaded_openblas()
    info = {"library": None, "threads": None, "core": None, "environment": {
        name: os.environ[name] for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                            "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
        if name in os.environ}}
    if library is None:
        return info
    getter, config = _function(library, "get_num_threads"), _function(library, "get_config")
    core = _function(library, "get_corename")
    if core is not None:  # the kernels in use: DYNAMIC_ARCH picks them per CPU unless OPENBLAS_CORETYPE forces them
        core.restype = ctypes.c_char_p
        info["core"] = core().decode(errors="replace").strip()
    if config is not None:
        config.restype = ctypes.c_char_p
        info["library"] = config().decode(errors="replace").strip()
    if getter is not None:
        getter.restype = ctypes.c_int
        info["threads"] = int(getter())
    return info


def set_torch_threads(torch, threads: int) -> None:
    """PyTorch's intra-op threads (its inter-op pool runs nothing in these single-stream workloads)."""
    torch.set_num_threads(int(threads))
