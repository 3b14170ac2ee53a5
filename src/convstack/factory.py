"""Tensor constructors: zeros, ones, full, arange, randn, rand, randint, randperm, eye."""

from __future__ import annotations

import numpy

from convstack import backend
from convstack.random import default_generator
from convstack.tensor import Tensor, _shape_args


def _dtype(dtype):
    return backend.DEFAULT_FLOAT_DTYPE if dtype is None else backend.check_dtype(dtype)


def zeros(*size, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(numpy.zeros(_shape_args(size), dtype=_dtype(dtype)), requires_grad=requires_grad)


def ones(*size, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(numpy.ones(_shape_args(size), dtype=_dtype(dtype)), requires_grad=requires_grad)


def empty(*size, dtype=None, requires_grad=False) -> Tensor:
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(numpy.full(tuple(size), fill_value, dtype=_dtype(dtype)), requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return zeros(*t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return ones(*t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None) -> Tensor:
    if end is None:
        start, end = 0, start
    values = numpy.arange(start, end, step)
    if dtype is None:
        dtype = numpy.int64 if values.dtype.kind in "iu" else backend.DEFAULT_FLOAT_DTYPE
    return Tensor(values, dtype=dtype)


def eye(n: int, m=None, dtype=None) -> Tensor:
    return Tensor(numpy.eye(n, m, dtype=_dtype(dtype)))


def randn(*size, dtype=None, requires_grad=False, generator=None) -> Tensor:
    rng = generator or default_generator()
    return Tensor(rng.standard_normal(_shape_args(size)).astype(_dtype(dtype)), requires_grad=requires_grad)


def rand(*size, dtype=None, requires_grad=False, generator=None) -> Tensor:
    rng = generator or default_generator()
    return Tensor(rng.random(_shape_args(size)).astype(_dtype(dtype)), requires_grad=requires_grad)


def randint(low, high=None, size=(), generator=None) -> Tensor:
    if high is None:
        low, high = 0, low
    rng = generator or default_generator()
    return Tensor(rng.integers(low, high, size=tuple(size), dtype=numpy.int64))


def randperm(n: int, generator=None) -> Tensor:
    rng = generator or default_generator()
    return Tensor(rng.permutation(n).astype(numpy.int64))


def from_numpy(array: numpy.ndarray) -> Tensor:
    """A tensor sharing memory with ``array``."""
    return Tensor(array)
