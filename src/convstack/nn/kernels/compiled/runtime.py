"""What every compiled kernel shares: how it is compiled, how it is launched, and NumPy's BLAS from inside it.

``jit`` compiles with ``cache=True`` (the machine code is kept on disk beside the source, or
in Numba's user cache folder where that is read-only, so only the first run of a process
compiles), ``nogil=True`` and ``boundscheck=False``; ``fastmath`` only where a kernel says so.

Numba's default ``workqueue`` threading layer must not be entered by two Python threads at
once (it aborts the process); the ``omp`` and ``tbb`` layers allow it. ``launch()`` is the
context every parallel kernel runs in: under ``workqueue`` (or before the first launch has
told which layer loaded) it holds one process-wide lock, so a kernel called from the
DataLoader's prefetch thread waits for the main thread's instead of crashing.

``gemm(...)`` calls NumPy's own OpenBLAS ``cblas_?gemm`` from compiled code, so that each of
the kernel's threads multiplies its own chunk in its cache instead of the whole batch going
through memory between a NumPy transform and a NumPy matmul. The function's address is an
argument (``gemm_address``), not a constant, so the kernels that call it can be cached.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import threading

import numba
import numpy
from llvmlite import ir
from numba import types
from numba.core.extending import intrinsic

from convstack import blas

#: The threading layers that may be entered from several Python threads at once.
THREAD_SAFE_LAYERS = ("omp", "tbb")

_launch_lock = threading.RLock()
_layer: dict = {"name": None}


#: Fast-math flags that let a sum be reordered (so that it runs as SIMD partial sums) and a
#: multiply-add be fused, and nothing else: NaN and infinity keep their meaning. A sum's error
#: stays within the float32 parity tolerances (1e-4 relative) of the tests.
REASSOCIATE = frozenset({"reassoc", "contract"})


def jit(parallel: bool = False, fastmath=False):
    """``numba.njit`` with convstack's settings: cached on disk, without the GIL, no bounds checks.

    ``fastmath``: False, or a set of LLVM fast-math flags such as ``REASSOCIATE``.
    """
    return numba.njit(cache=True, nogil=True, parallel=parallel, fastmath=set(fastmath) if fastmath else False,
                      boundscheck=False, error_model="numpy")


def threading_layer(start: bool = False) -> str | None:
    """The threading layer Numba loaded for parallel kernels; before the first parallel launch None, or with
    ``start`` the layer a first (tiny) launch loads."""
    if _layer["name"] is None:
        try:
            _layer["name"] = numba.threading_layer()
        except ValueError:  # no parallel kernel has run yet
            if not start:
                return None
            with _launch_lock:
                _start_layer(numpy.zeros(2))
            _layer["name"] = numba.threading_layer()
    return _layer["name"]


@jit(parallel=True)
def _start_layer(values):
    for i in numba.prange(values.shape[0]):
        values[i] += 1.0


@contextlib.contextmanager
def launch():
    """The context of a parallel kernel's launch: serialised across Python threads unless the layer allows it."""
    layer = threading_layer()
    if layer in THREAD_SAFE_LAYERS:
        yield
        return
    with _launch_lock:
        yield


#: An index known to be non-negative, as an unsigned integer: ``a[index(i + offset)]``. Numba wraps a signed
#: index that may be negative (Python's ``a[-1]``), a select per element that stops the compiler from
#: vectorising the loop (measured 8x slower on a depthwise row); the kernels only index inside their arrays.
index = numpy.uintp


# ----------------------------------------------------------------------------- NumPy's BLAS from compiled code
ROW_MAJOR, NO_TRANSPOSE, TRANSPOSE = 101, 111, 112
# cblas_?gemm of the OpenBLAS builds NumPy ships (64-bit integers); other BLAS builds: no compiled GEMM.
_GEMM_NAMES = {"float32": ("scipy_cblas_sgemm64_", "cblas_sgemm64_"),
               "float64": ("scipy_cblas_dgemm64_", "cblas_dgemm64_")}


@functools.lru_cache(maxsize=None)
def gemm_address(dtype: str) -> int:
    """The address of NumPy's ``cblas_sgemm`` (float32) or ``cblas_dgemm`` (float64), 64-bit integers; 0 if none."""
    library = blas.loaded_openblas()
    if library is None:
        return 0
    for name in _GEMM_NAMES.get(dtype, ()):
        found = getattr(library, name, None)
        if found is not None:
            return ctypes.cast(found, ctypes.c_void_p).value or 0
    return 0


@functools.lru_cache(maxsize=1)
def local_threads_address() -> int:
    """The address of OpenBLAS's ``openblas_set_num_threads_local`` (0.3.27+: a per-thread count), or 0."""
    library = blas.loaded_openblas()
    found = None if library is None else getattr(library, "openblas_set_num_threads_local", None)
    return 0 if found is None else (ctypes.cast(found, ctypes.c_void_p).value or 0)


@intrinsic
def _call_gemm(typingctx, address, transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """cblas_?gemm(RowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) at ``address``."""
    signature = types.void(address, transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, sig, args):
        i32, i64, i8p = ir.IntType(32), ir.IntType(64), ir.IntType(8).as_pointer()
        real = context.get_value_type(sig.args[6])
        function_type = ir.FunctionType(
            ir.VoidType(), [i32, i32, i32, i64, i64, i64, real, i8p, i64, i8p, i64, real, i8p, i64])
        function = builder.inttoptr(args[0], function_type.as_pointer())
        (_, ta, tb, m_, n_, k_, alpha_, a_, lda_, b_, ldb_, beta_, c_, ldc_) = args
        as_i32 = lambda value: builder.trunc(value, i32)  # noqa: E731
        as_pointer = lambda value: builder.inttoptr(value, i8p)  # noqa: E731
        builder.call(function, [ir.Constant(i32, ROW_MAJOR), as_i32(ta), as_i32(tb), m_, n_, k_, alpha_,
                                as_pointer(a_), lda_, as_pointer(b_), ldb_, beta_, as_pointer(c_), ldc_])
        return context.get_dummy_value()

    return signature, codegen


@intrinsic
def _call_set_local_threads(typingctx, address, count):
    """openblas_set_num_threads_local(count) at ``address``; returns the previous count."""
    signature = types.int64(address, count)

    def codegen(context, builder, sig, args):
        i32 = ir.IntType(32)
        function = builder.inttoptr(args[0], ir.FunctionType(i32, [i32]).as_pointer())
        previous = builder.call(function, [builder.trunc(args[1], i32)])
        return builder.sext(previous, ir.IntType(64))

    return signature, codegen


@jit()
def gemm(address, transpose_a, transpose_b, m, n, k, alpha, a, a_offset, lda, b, b_offset, ldb, beta, c, c_offset,
         ldc):
    """c = alpha * op(a) @ op(b) + beta * c, in this thread, on row-major blocks of flat arrays.

    Each matrix is the block of its (any-dimensional, C-contiguous) array that starts at the
    element ``*_offset`` and has rows ``ld*`` elements apart: ``a`` (m, k), or (k, m) when
    transposed; ``b`` (k, n), or (n, k); ``c`` (m, n).
    """
    size = a.itemsize
    _call_gemm(address, TRANSPOSE if transpose_a else NO_TRANSPOSE, TRANSPOSE if transpose_b else NO_TRANSPOSE,
               m, n, k, alpha, a.ctypes.data + a_offset * size, lda, b.ctypes.data + b_offset * size, ldb, beta,
               c.ctypes.data + c_offset * size, ldc)


@jit()
def single_threaded_blas(address):
    """Make OpenBLAS run this thread's GEMMs on this thread alone (returns the previous count; 0 address: no-op)."""
    if address == 0:
        return 0
    return _call_set_local_threads(address, 1)


@jit()
def restore_blas_threads(address, previous):
    if address != 0 and previous > 0:
        _call_set_local_threads(address, previous)
