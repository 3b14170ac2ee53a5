"""How the compiled kernels (other than convolution's) split their work across threads, and which arrays they take.

A parallel kernel gives each thread one chunk of the work (a range of elements, planes or
rows), sized once before its ``prange`` loop, so that whatever a thread needs is allocated
once per call and not per iteration. Work too small to pay for waking the other threads
(a few microseconds, and far more on a loaded machine, where a sleeping worker may wait
a whole time slice) runs in the calling thread instead: ``chunk_count`` says 1, and the
kernel either has a serial form to call or is launched on that many threads (``launch``:
on one, the threading layer runs the loop inline and wakes no worker).

``GRAIN`` is the smallest chunk, in elements touched, for a pass of a few operations per
element (a vectorised pass over 64 Ki float32 elements takes some tens of microseconds).
"""

from __future__ import annotations

import numba
import numpy

from convstack.nn.kernels.compiled import runtime

#: The dtypes the compiled kernels are compiled for; other arrays take the reference kernels.
FLOAT_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


GRAIN = 1 << 16


def chunk_count(work: int, grain: int = GRAIN) -> int:
    """How many chunks to split ``work`` units into: at most one per thread, each at least ``grain`` units.

    1 means: run serially, in this thread.
    """
    if work < 2 * grain:
        return 1
    return max(1, min(numba.get_num_threads(), work // grain))


@runtime.jit()
def chunk_bounds(chunk, chunks, size):
    """``[start, stop)`` of chunk ``chunk`` of ``chunks`` near-equal chunks of ``range(size)`` (compiled)."""
    step = (size + chunks - 1) // chunks
    start = min(size, chunk * step)
    return start, min(size, start + step)


def launch(kernel, *arguments, chunks: int):
    """``kernel(*arguments)``, a parallel kernel, on at most ``chunks`` threads, in ``runtime.launch()``.

    Numba's thread count is per calling thread, so it is lowered around the call and restored.
    """
    with runtime.launch():
        threads = numba.get_num_threads()
        if chunks >= threads:
            return kernel(*arguments)
        numba.set_num_threads(max(1, chunks))
        try:
            return kernel(*arguments)
        finally:
            numba.set_num_threads(threads)


def compilable(*arrays) -> bool:
    """Whether the compiled kernels take these arrays: all float32 or all float64, each C-contiguous."""
    dtype = arrays[0].dtype
    if dtype not in FLOAT_DTYPES:
        return False
    return all(a.dtype == dtype and a.flags.c_contiguous for a in arrays)
