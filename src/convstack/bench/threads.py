"""Thread counts for a fair race: NumPy's BLAS and PyTorch's intra-op pool set to the same number.

NumPy's count is set at run time through ``convstack.blas.set_threads`` (OpenBLAS reads its
environment only when NumPy is first imported). Where that is impossible (another BLAS, not
Linux) the count is left as the environment made it and ``blas_info()`` reports what is known,
so that a table never claims a setting it did not make.
"""

from __future__ import annotations

import ctypes
import os

from convstack import blas


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), which can be fewer than the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def blas_info() -> dict:
    """NumPy's BLAS: its configuration string and current thread count (None where unknown)."""
    library = blas.loaded_openblas()
    info = {"library": None, "threads": None, "core": None, "environment": {
        name: os.environ[name] for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                            "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
        if name in os.environ}}
    if library is None:
        return info
    config, core = blas.function("get_config", ctypes.c_char_p), blas.function("get_corename", ctypes.c_char_p)
    if core is not None:  # the kernels in use: DYNAMIC_ARCH picks them per CPU unless OPENBLAS_CORETYPE forces them
        info["core"] = core().decode(errors="replace").strip()
    if config is not None:
        info["library"] = config().decode(errors="replace").strip()
    info["threads"] = blas.threads()
    return info


def set_torch_threads(torch, threads: int) -> None:
    """PyTorch's intra-op threads (its inter-op pool runs nothing in these single-stream workloads)."""
    torch.set_num_threads(int(threads))
