"""Scratch buffers reused between calls, and how many samples a chunk of the batch may hold.

Two reasons to process a convolution in chunks of the batch through reused buffers
rather than in one piece (1.2-1.7x faster on the benchmark layers: docs/convolution_algorithms.md).
A fresh buffer of tens of MiB is mapped page by page by the kernel on first touch, and
a column matrix larger than the caches goes to memory and back between the copy that
builds it and the GEMM that reads it. A chunk that fits in the cache, written into the
same buffer every time, avoids both; it also bounds the memory a convolution needs.

A scratch buffer is private to one kernel call: it is overwritten by the next call that
asks for the same slot, so nothing that escapes a kernel (an output, an array saved for
backward) may live in one.
"""

from __future__ import annotations

import math
import threading

from convstack.backend import check_allocation, format_bytes

_KEEP_AT_MOST = 64 * 2**20  # bytes; larger scratch buffers are not kept between calls
_local = threading.local()


def scratch(xp, slot: str, shape, dtype):
    """An uninitialised C-contiguous array of ``shape`` in the reused buffer named ``slot``."""
    dtype = xp.dtype(dtype)
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if nbytes > _KEEP_AT_MOST:
        return xp.empty(shape, dtype=dtype)
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    key = (slot, xp.__name__)
    buffer = buffers.get(key)
    if buffer is None or buffer.nbytes < nbytes:
        buffer = buffers[key] = xp.empty(max(nbytes, 2**16), dtype=xp.uint8)
    return buffer[:nbytes].view(dtype).reshape(shape)


def batch_chunk(batch: int, bytes_per_sample: int, limit: int, what: str, context: str, xp=None) -> int:
    """How many samples a chunk holds so that its buffer stays within ``limit`` bytes (at least one).

    One sample's buffer cannot be split further: when it alone exceeds ``limit``, it is
    checked against the memory available (``convstack.backend.check_allocation``) so
    that a buffer that cannot fit fails with its size before anything is allocated.
    """
    if bytes_per_sample > limit:
        hint = (
            f"a single sample's buffer is over the workspace limit ({format_bytes(limit)}); "
            "reduce the input size or the number of channels"
        )
        check_allocation(bytes_per_sample, what, context, hint=hint, xp=xp)
        return 1
    return max(1, min(batch, limit // max(bytes_per_sample, 1)))


# ----------------------------------------------------------------------------- the workspace limit
DEFAULT_LIMIT = 256 * 2**20
_limit = {"bytes": DEFAULT_LIMIT}


def set_limit(nbytes: int | None) -> None:
    """Bound the buffers one chunk of the batch may take to ``nbytes`` (None: the default 256 MiB).

    A larger batch is processed in chunks; a single sample whose buffer is larger still runs
    alone, after ``convstack.backend.check_allocation`` has made sure it fits in memory.
    """
    if nbytes is not None and (isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 1):
        raise ValueError(
            f"set_workspace_limit: invalid value for argument `nbytes`: expected a positive integer or None, "
            f"received {nbytes!r}"
        )
    _limit["bytes"] = DEFAULT_LIMIT if nbytes is None else nbytes


def limit() -> int:
    """The bytes one chunk's buffers may take now."""
    return _limit["bytes"]
