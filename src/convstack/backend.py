"""The one seam between convstack and its array library.

Every op asks this module for the array module of its inputs (``get_array_module``)
instead of importing NumPy for array math, so that a GPU array library with NumPy's
interface (CuPy) can stand in without any op changing. NumPy is the CPU engine.

The dtype policy lives here too: float32 by default, float64 supported everywhere,
integer and boolean tensors for indices and masks; anything else is refused.
"""

from __future__ import annotations

import os

import numpy

try:  # CuPy is optional: the GPU backend stands in here when it is installed.
    import cupy  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - exercised only on GPU machines
    cupy = None

DEFAULT_FLOAT_DTYPE = numpy.dtype(numpy.float32)
ARRAY_TYPES = (numpy.ndarray,) if cupy is None else (numpy.ndarray, cupy.ndarray)

FLOAT_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))
INDEX_DTYPES = tuple(
    numpy.dtype(d) for d in (numpy.int8, numpy.int16, numpy.int32, numpy.int64, numpy.uint8, numpy.bool_)
)
SUPPORTED_DTYPES = FLOAT_DTYPES + INDEX_DTYPES


def get_array_module(*arrays):
    """Return the array module (``numpy`` or ``cupy``) that owns ``arrays``.

    Mirrors ``chainer.backend.get_array_module``: ops call this once and use the
    returned module for all their array math.
    """
    if cupy is not None:
        for array in arrays:
            if isinstance(array, cupy.ndarray):
                return cupy
    return numpy


def as_strided(array, shape, strides):
    """A strided view of ``array`` (no copy), through the array's own module."""
    xp = get_array_module(array)
    if xp is numpy:
        return numpy.lib.stride_tricks.as_strided(array, shape=shape, strides=strides, writeable=False)
    return xp.lib.stride_tricks.as_strided(array, shape=shape, strides=strides)


def to_numpy(array):
    """Copy ``array`` to host memory as a NumPy array (a no-op for NumPy arrays)."""
    if cupy is not None and isinstance(array, cupy.ndarray):
        return cupy.asnumpy(array)
    return numpy.asarray(array)


def device_of(array) -> str:
    """``'cpu'`` for NumPy arrays, ``'cuda:N'`` for CuPy arrays."""
    if cupy is not None and isinstance(array, cupy.ndarray):
        return f"cuda:{array.device.id}"
    return "cpu"


def to_device(array, device: str):
    """Move ``array`` to ``device`` (``'cpu'`` or ``'cuda[:N]'``)."""
    if device == "cpu":
        return to_numpy(array)
    if device.startswith("cuda"):
        if cupy is None:
            raise RuntimeError(f"device {device!r} needs CuPy, which is not installed")
        index = int(device.split(":")[1]) if ":" in device else 0
        with cupy.cuda.Device(index):
            return cupy.asarray(array)
    raise ValueError(f"Invalid value for argument `device`: expected 'cpu' or 'cuda[:N]', received {device!r}")


def check_dtype(dtype, where: str = "tensor"):
    """Return ``numpy.dtype(dtype)`` or raise ``TypeError`` naming the unsupported dtype."""
    try:
        resolved = numpy.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"{where}: unsupported dtype {dtype!r}") from error
    if resolved not in SUPPORTED_DTYPES:
        supported = ", ".join(str(d) for d in SUPPORTED_DTYPES)
        raise TypeError(f"{where}: unsupported dtype {resolved}; expected one of {supported}")
    return resolved


def is_floating(dtype) -> bool:
    return numpy.dtype(dtype).kind == "f"


# ----------------------------------------------------------------------------- memory bounds
_memory_limit: int | None = None  # bytes; None: what the machine has available at the time of the check
_ALWAYS_FITS = 64 * 2**20  # smaller buffers are never checked (no system call in the common case)


def format_bytes(nbytes: float) -> str:
    """``37.2 GiB``, ``512.0 MiB``, ``100 B``."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= size:
            return f"{nbytes / size:.1f} {unit}"
    return f"{int(nbytes)} B"


def set_memory_limit(nbytes) -> None:
    """Cap the size of one buffer an op may allocate (``None``: the machine's available memory).

    Also read from the ``CONVSTACK_MEMORY_LIMIT`` environment variable (bytes, or with a
    unit: ``8GiB``, ``512MiB``) when no limit was set here.
    """
    global _memory_limit
    if nbytes is not None and (isinstance(nbytes, bool) or not isinstance(nbytes, (int, numpy.integer)) or nbytes < 1):
        raise ValueError(
            f"set_memory_limit: invalid value for argument `nbytes`: expected a positive integer or None, "
            f"received {nbytes!r}"
        )
    _memory_limit = None if nbytes is None else int(nbytes)


def _parse_bytes(text: str) -> int | None:
    units = {"": 1, "B": 1, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40,
             "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
    text = text.strip().upper()
    number = text.rstrip("KMGTIB")
    try:
        value = float(number) * units[text[len(number):].strip()]
    except (ValueError, KeyError):
        return None
    return int(value) if value >= 1 else None


def available_memory(xp=None) -> tuple[int | None, str]:
    """``(bytes, where the number came from)``: free device memory for CuPy, else the host's available memory.

    The host's figure is ``MemAvailable`` from ``/proc/meminfo`` (Linux), else free physical
    pages from ``os.sysconf``; ``(None, ...)`` when neither is known.
    """
    if cupy is not None and xp is cupy:
        free, _ = cupy.cuda.Device().mem_info
        return int(free), "free GPU memory"
    try:
        with open("/proc/meminfo") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "available memory"
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "free physical memory"
    except (AttributeError, ValueError, OSError):
        return None, "unknown"


def memory_limit(xp=None) -> tuple[int | None, str]:
    """``(bytes, description)`` of the largest buffer ``check_allocation`` lets through."""
    if _memory_limit is not None:
        return _memory_limit, "the memory limit (convstack.backend.set_memory_limit)"
    text = os.environ.get("CONVSTACK_MEMORY_LIMIT")
    if text:
        parsed = _parse_bytes(text)
        if parsed is None:
            raise ValueError(f"CONVSTACK_MEMORY_LIMIT: expected a size such as 8GiB or 1000000, received {text!r}")
        return parsed, "the memory limit (CONVSTACK_MEMORY_LIMIT)"
    return available_memory(xp)


def check_allocation(nbytes, what: str, context: str = "", hint: str = "reduce the batch size or the input size",
                     xp=None) -> None:
    """Raise ``MemoryError`` before allocating ``nbytes`` for ``what`` if that cannot fit.

    The message names the buffer, its size and the limit, e.g. ``conv2d: the im2col buffer
    would need 37.2 GiB (input shape ..., weight shape ...), more than available memory
    (11.8 GiB); reduce the batch size or the input size``. Buffers under 64 MiB are
    never checked unless a smaller limit is set.

    Args:
        nbytes: the size of the buffer about to be allocated.
        what: the op and the buffer, ``"conv2d: the im2col buffer"``.
        context: the shapes that make it that big, ``"input shape (...), weight shape (...)"``.
        hint: what the user can do about it.
        xp: the array module the buffer will live in (CuPy: checked against free GPU memory).
    """
    nbytes = int(nbytes)
    if nbytes <= _ALWAYS_FITS and (_memory_limit is None or nbytes <= _memory_limit):
        return
    limit, source = memory_limit(xp)
    if limit is None or nbytes <= limit:
        return
    shapes = f" ({context})" if context else ""
    raise MemoryError(
        f"{what} would need {format_bytes(nbytes)}{shapes}, more than {source} ({format_bytes(limit)}); {hint}"
    )
