"""The transform protocol: one sample with ``transform(x)``, a batch with ``transform.batch(x)``.

Also where random transforms get their generator: an explicit one, else the stream the
DataLoader sets for the current thread and epoch (``use_generator``), else
``convstack.random.default_generator()``.
"""

from __future__ import annotations

import abc
import contextlib
import threading

import numpy

from convstack import backend
from convstack.random import default_generator
from convstack.tensor import Tensor

_local = threading.local()


def resolve_generator(generator=None) -> numpy.random.Generator:
    """``generator`` if given, else the loader's stream for this thread, else the default generator."""
    if generator is not None:
        return generator
    current = getattr(_local, "generator", None)
    return current if current is not None else default_generator()


@contextlib.contextmanager
def use_generator(generator):
    """Within the block (and this thread), transforms without a generator draw from ``generator``."""
    previous = getattr(_local, "generator", None)
    _local.generator = generator
    try:
        yield generator
    finally:
        _local.generator = previous


def _unwrap(value, op):
    if isinstance(value, Tensor):
        return value.data, True
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return value, False
    if type(value).__module__.startswith("PIL."):
        raise TypeError(f"{op}: received a PIL image; put ToTensor() first to convert it")
    return numpy.asarray(value), False


def _stack(outputs):
    if isinstance(outputs[0], Tensor):
        xp = backend.get_array_module(outputs[0].data)
        return Tensor._make(xp.stack([o.data for o in outputs]))
    xp = backend.get_array_module(outputs[0])
    return xp.stack([xp.asarray(o) for o in outputs])


def apply_batch(transform, batch):
    """``transform`` applied to every sample of ``batch``: vectorised when it has ``.batch``."""
    if transform is None:
        return batch
    vectorised = getattr(transform, "batch", None)
    if callable(vectorised):
        return vectorised(batch)
    if isinstance(batch, Tensor):
        return _stack([transform(Tensor._make(sample)) for sample in batch.data])
    return _stack([transform(sample) for sample in batch])


class Transform(abc.ABC):
    """Base class: subclasses implement ``apply(array, batched)`` on raw arrays (one without it cannot be made)."""

    def __call__(self, sample):
        array, wrap = _unwrap(sample, type(self).__name__)
        out = self.apply(array, batched=False)
        return Tensor._make(out) if wrap else out

    def batch(self, samples):
        array, wrap = _unwrap(samples, type(self).__name__)
        out = self.apply(array, batched=True)
        return Tensor._make(out) if wrap else out

    @abc.abstractmethod
    def apply(self, array, batched: bool):
        """The transform of ``array``: one sample (``batched`` False) or a batch along axis 0."""

    def _check_spatial(self, array, batched):
        if array.ndim < 2 + batched:
            raise ValueError(
                f"{type(self).__name__}: expected {'a batch (N, ..., H, W)' if batched else 'an image (..., H, W)'}, "
                f"received shape {tuple(array.shape)}"
            )

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class Compose:
    """Apply ``transforms`` in order; ``batch`` vectorises each one that can be."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, sample):
        for transform in self.transforms:
            sample = transform(sample)
        return sample

    def batch(self, samples):
        for transform in self.transforms:
            samples = apply_batch(transform, samples)
        return samples

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(repr(t) for t in self.transforms) + "])"
