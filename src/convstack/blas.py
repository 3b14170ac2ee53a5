"""NumPy's BLAS library as the running process loaded it: its thread count, read and set at run time.

OpenBLAS reads ``OPENBLAS_NUM_THREADS`` (or ``OMP_NUM_THREADS``) only when it is loaded,
that is when NumPy is first imported; ``set_threads`` calls OpenBLAS's own
``openblas_set_num_threads`` through ctypes instead (the library NumPy loaded is found in
``/proc/self/maps``, as threadpoolctl does). Where that is impossible (another BLAS, not
Linux) ``threads()`` is None and nothing is set.

The convolution heuristic (``convstack.nn.kernels.algorithm``) reads ``threads()``: with a
second BLAS thread the GEMMs of im2col run nearly twice as fast, while Winograd's
transforms (NumPy copies and small products) do not, which moves the break-even point.
"""

from __future__ import annotations

import ctypes
import functools

# Symbol prefixes and suffixes of the OpenBLAS builds NumPy ships with (scipy-openblas, 64-bit
# integers) and of plain system OpenBLAS.
_NAME_PATTERNS = ("scipy_openblas_{}64_", "openblas_{}64_", "scipy_openblas_{}", "openblas_{}")


@functools.lru_cache(maxsize=1)
def loaded_openblas():
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


def function(name: str, restype=None, argtypes=None):
    """OpenBLAS's ``openblas_<name>`` (under whichever prefix this build uses), or None."""
    library = loaded_openblas()
    if library is None:
        return None
    for pattern in _NAME_PATTERNS:
        found = getattr(library, pattern.format(name), None)
        if found is not None:
            found.restype = restype
            if argtypes is not None:
                found.argtypes = argtypes
            return found
    return None


@functools.lru_cache(maxsize=1)
def _getter():
    return function("get_num_threads", ctypes.c_int)


def threads() -> int | None:
    """The number of threads NumPy's OpenBLAS runs a GEMM on now, or None where unknown."""
    getter = _getter()
    return None if getter is None else int(getter())


def set_threads(count: int) -> bool:
    """Ask NumPy's OpenBLAS to use ``count`` threads; True when it could be told."""
    setter = function("set_num_threads", None, [ctypes.c_int])
    if setter is None:
        return False
    setter(int(count))
    return True
