"""The one seam between convstack and its array library.

Every op asks this module for the array module of its inputs (``get_array_module``)
instead of importing NumPy for array math, so that a GPU array library with NumPy's
interface (CuPy) can stand in without any op changing. NumPy is the CPU engine.

The dtype policy lives here too: float32 by default, float64 supported everywhere,
integer and boolean tensors for indices and masks; anything else is refused.
"""

from __future__ import annotations

import numpy

try:  # CuPy is optional: the GPU backend stands in here when it is installed.
    import cupy  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - exercised only on GPU machines
    cupy = None

DEFAULT_FLOAT_DTYPE = numpy.dtype(numpy.float32)

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
