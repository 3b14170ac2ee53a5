"""The C allocator settings that keep a training step's arrays in mapped memory.

A training step allocates and frees the same few hundred arrays every step. With glibc's
default policy, arrays above a (sliding) threshold are ``mmap``-ed and unmapped on every
free, and freed memory at the top of the heap is returned to the kernel once it passes
128 KiB: so every step maps its arrays afresh, and the kernel zero-fills each 4 KiB page
on first touch: a LeNet-5 step at batch 64 spent about half its time in page faults with
glibc's defaults (the measurement: docs/convolution_algorithms.md, "Measurements behind
the constants").

``tune()`` asks glibc's ``mallopt`` to serve arrays up to 32 MiB (its largest allowed ``mmap``
threshold) from the heap, to keep up to ``trim_threshold`` bytes of freed heap mapped, and
to grow the heap in 16 MiB steps. The process keeps its peak heap mapped instead of handing
it back between steps: the same memory is reused, the peak is unchanged.

It is opt-in, as it changes the whole process's allocator: importing convstack changes
nothing. ``convstack train`` and ``convstack bench``, which own their process, call it;
a script calls ``convstack.allocator.tune()`` itself. ``CONVSTACK_MALLOC=default`` in the
environment makes ``tune()`` leave the allocator alone; on other C libraries (or platforms)
nothing happens.
"""

from __future__ import annotations

import ctypes
import os
import sys

# glibc's mallopt parameter numbers (malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

MIB = 1 << 20

_tuned = False


def _glibc():
    """The process's glibc as a ``ctypes`` library, or ``None`` on another C library or platform."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - present only in glibc
        return libc
    except (OSError, AttributeError):
        return None


def tune(trim_threshold: int = 256 * MIB, mmap_threshold: int = 32 * MIB, top_pad: int = 16 * MIB) -> bool:
    """Apply the allocator settings above; return whether glibc accepted all of them.

    Args:
        trim_threshold: bytes of free memory at the top of the heap kept mapped.
        mmap_threshold: allocations at least this large are ``mmap``-ed (glibc caps it at 32 MiB).
        top_pad: extra bytes requested whenever the heap grows.

    Returns ``False`` without changing anything when ``CONVSTACK_MALLOC=default`` is set or the
    C library is not glibc.
    """
    global _tuned
    if os.environ.get("CONVSTACK_MALLOC", "").strip().lower() == "default":
        return False
    libc = _glibc()
    if libc is None:
        return False
    settings = ((M_TRIM_THRESHOLD, trim_threshold), (M_MMAP_THRESHOLD, mmap_threshold), (M_TOP_PAD, top_pad))
    _tuned = all(libc.mallopt(ctypes.c_int(param), ctypes.c_int(int(value))) == 1 for param, value in settings)
    return _tuned


def is_tuned() -> bool:
    """Whether ``tune()`` has applied its settings in this process."""
    return _tuned
