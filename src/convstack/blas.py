"""NumPy's BLAS library as the running process loaded it: its thread count, read and set at run time.

OpenBLAS reads ``OPENBLAS_NUM_THREADS`` (or ``OMP_NUM_THREADS``) only when it is loaded,
that is when NumPy is first imported; ``set_threads`` calls OpenBLAS's own
``openblas_set_num_threads`` through ctypes instead (the library NumPy loaded is found in
``/proc/self/maps``, as threadpoolctl does). Where that is impossible (another BLAS, not
Linux) ``threads()`` is None and nothing is set.

``convstack.threads`` reads and sets it together with Numba's threads (the convolution
policy's choice context reads the count from there).

``tune_thread_timeout()`` (opt-in) shortens how long OpenBLAS's idle worker threads spin
before they sleep. By default they spin for 2^28 cycles (about 0.1 s), longer than any gap
between the GEMMs of a training step, so the worker keeps a core at 100% for the whole run,
NumPy's single-threaded passes included. On a VM whose second core the host takes away in
spells, letting the worker sleep at once made the process fall into them far less often, at
the price of a wake-up on every GEMM (a few percent slower outside them; the measurements
are in the README's speed section), so it is not the default; call it (or set
``OPENBLAS_THREAD_TIMEOUT=12`` before NumPy is imported) on machines with such spells.
"""

from __future__ import annotations

import ctypes
import functools
import os

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
    """OpenBLAS's ``openblas_<name>`` (under whichever prefix and suffix this build uses), or None."""
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


#: log2 of the cycles ``tune_thread_timeout`` lets an idle OpenBLAS worker spin (OpenBLAS's default: 28).
THREAD_TIMEOUT = 12


def tune_thread_timeout(exponent: int = THREAD_TIMEOUT) -> bool:
    """Make OpenBLAS's idle workers sleep after 2**exponent cycles of spinning; True when applied.

    OpenBLAS reads ``OPENBLAS_THREAD_TIMEOUT`` only when it starts its thread server, so this
    sets the variable, has OpenBLAS re-read its environment (``openblas_read_env``) and
    restarts the server (``blas_thread_shutdown_`` then ``blas_thread_init``, what OpenBLAS's
    own fork handler does). Call it while no other thread is inside a BLAS call. Nothing
    happens (False) when the user set ``OPENBLAS_THREAD_TIMEOUT`` to something else, or when
    NumPy's BLAS is not a pthreads OpenBLAS exposing those functions.
    """
    if not 4 <= int(exponent) <= 30:
        raise ValueError(
            f"tune_thread_timeout: invalid value for argument `exponent`: expected an integer from 4 to 30 "
            f"(OpenBLAS's range), received {exponent!r}"
        )
    chosen = os.environ.get("OPENBLAS_THREAD_TIMEOUT")
    if chosen is not None and chosen.strip() != str(int(exponent)):
        return False
    library = loaded_openblas()
    if library is None:
        return False
    try:
        read_env, shutdown, init = library.openblas_read_env, library.blas_thread_shutdown_, library.blas_thread_init
    except AttributeError:  # another build: leave it as it is
        return False
    if thread_timeout() is None:
        return False
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(int(exponent))
    read_env()
    shutdown()
    init()
    return thread_timeout() == int(exponent)


def thread_timeout() -> int | None:
    """The exponent OpenBLAS's workers spin for (2**n cycles) as last read from the environment; None where unknown.

    0 means OpenBLAS's built-in default (2**28 cycles).
    """
    getter = function("thread_timeout", ctypes.c_int)
    return None if getter is None else int(getter())
