"""Datasets: indexable collections of samples, and the batch indexing that keeps loading fast.

A dataset is anything with ``__len__`` and ``__getitem__(i)`` returning one sample (a tuple,
usually ``(input, target)``). A dataset backed by arrays also implements
``get_batch(indices)``, returning the whole batch as stacked arrays in one fancy-indexing
step; ``DataLoader`` uses it when present and falls back to one ``__getitem__`` per sample
otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy

from convstack import backend
from convstack.data.transforms import ToTensor, apply_batch, resolve_generator
from convstack.tensor import Tensor


class Dataset:
    """Base class of map-style datasets: subclasses implement ``__getitem__`` and ``__len__``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")


def _check_index(index, length: int, owner: str) -> int:
    if isinstance(index, bool) or not isinstance(index, (int, numpy.integer)):
        raise TypeError(f"{owner}: indices must be integers, received {index!r}")
    index = int(index)
    if not -length <= index < length:
        raise IndexError(f"{owner}: index {index} out of range for a dataset of {length} samples")
    return index % length


class TensorDataset(Dataset):
    """Samples are the rows of equally long tensors or arrays: ``dataset[i] == (t1[i], t2[i], ...)``.

    Args:
        *tensors: Tensors or arrays sharing their first dimension.

    Examples:
        >>> dataset = TensorDataset(numpy.zeros((5, 1, 4, 4), numpy.float32), numpy.arange(5))
        >>> len(dataset), dataset[2][1]
        (5, 2)
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor or array, received none")
        self._as_tensors = [isinstance(t, Tensor) for t in tensors]
        self.arrays = tuple(t.data if isinstance(t, Tensor) else numpy.asarray(t) for t in tensors)
        shapes = [tuple(a.shape) for a in self.arrays]
        if any(len(s) == 0 for s in shapes) or len({s[0] for s in shapes}) != 1:
            raise ValueError(
                f"TensorDataset: expected tensors with the same first dimension (one row per sample), "
                f"received shapes {shapes}"
            )
        self.tensors = tuple(tensors)

    def __len__(self) -> int:
        return int(self.arrays[0].shape[0])

    def __getitem__(self, index):
        index = _check_index(index, len(self), "TensorDataset")
        return tuple(
            Tensor._make(a[index]) if wrap else a[index] for a, wrap in zip(self.arrays, self._as_tensors)
        )

    def get_batch(self, indices):
        """All samples at ``indices`` at once, as a tuple of stacked arrays."""
        return tuple(a[indices] for a in self.arrays)


class ImageArrayDataset(Dataset):
    """Labelled images held in memory as one array (what the IDX and CIFAR loaders return).

    Args:
        images: uint8 array (N, H, W), (N, C, H, W) or (N, H, W, C).
        labels: integer array (N,).
        transform: applied to each image, or vectorised to whole batches when it can be
            (default ``ToTensor()``: float32 (C, H, W) in [0, 1]).
        classes: the class names, ``classes[label]``.
        source: where the data came from (a path or ``'bundled sample'``), for messages.

    Shape:
        ``dataset[i]`` is ``(transform(images[i]), int(labels[i]))``; ``get_batch(idx)`` is
        ``(transform.batch(images[idx]), labels[idx] as int64)``.
    """

    def __init__(self, images, labels, transform=None, classes=None, source=None):
        images, labels = numpy.asarray(images), numpy.asarray(labels)
        if images.ndim not in (3, 4) or labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise ValueError(
                f"ImageArrayDataset: expected images (N, H, W) or (N, C, H, W) and integer labels (N,), "
                f"received images {images.dtype} {images.shape} and labels {labels.dtype} {labels.shape}"
            )
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"ImageArrayDataset: {images.shape[0]} images but {labels.shape[0]} labels (source {source})"
            )
        self.images = images
        self.labels = labels.astype(numpy.int64, copy=False)
        self.transform = ToTensor() if transform is None else transform
        self.classes = None if classes is None else tuple(classes)
        self.source = source

    @property
    def targets(self):
        return self.labels

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index):
        index = _check_index(index, len(self), type(self).__name__)
        return self.transform(self.images[index]), int(self.labels[index])

    def get_batch(self, indices):
        return apply_batch(self.transform, self.images[indices]), self.labels[indices]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self)} images of shape {tuple(self.images.shape[1:])}, "
            f"{len(self.classes) if self.classes else 'unnamed'} classes, source={self.source!r})"
        )


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices):
        indices = numpy.asarray(indices, dtype=numpy.int64).reshape(-1)
        length = len(dataset)
        if indices.size and (indices.min() < -length or indices.max() >= length):
            raise IndexError(f"Subset: indices out of range for a dataset of {length} samples")
        self.dataset = dataset
        self.indices = indices % max(length, 1)

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __getitem__(self, index):
        return self.dataset[int(self.indices[_check_index(index, len(self), "Subset")])]

    def __getattr__(self, name):
        # get_batch exists only when the wrapped dataset has it, so the loader's fallback still works.
        if name == "get_batch" and hasattr(self.__dict__.get("dataset"), "get_batch"):
            return lambda indices: self.dataset.get_batch(self.indices[indices])
        if name in ("classes", "source") and "dataset" in self.__dict__:
            return getattr(self.dataset, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def random_split(dataset, lengths: Sequence, generator=None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random subsets of the given lengths.

    Args:
        dataset: the dataset to split.
        lengths: integers summing to ``len(dataset)``, or fractions summing to 1 (the
            remainder of the rounding goes round-robin to the first subsets, as PyTorch).
        generator: a ``numpy.random.Generator``; default convstack's default generator.

    Examples:
        >>> train, val = random_split(TensorDataset(numpy.arange(10)), [8, 2])
        >>> len(train), len(val)
        (8, 2)
    """
    total = len(dataset)
    lengths = list(lengths)
    if not lengths or any(isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in lengths):
        raise ValueError(f"random_split: invalid value for argument `lengths`: expected non-negative numbers, "
                         f"received {lengths!r}")
    if all(isinstance(v, float) for v in lengths) and math.isclose(sum(lengths), 1.0):
        counts = [int(math.floor(total * fraction)) for fraction in lengths]
        for i in range(total - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if not all(isinstance(v, int) for v in lengths) or sum(lengths) != total:
        raise ValueError(
            f"random_split: invalid value for argument `lengths`: expected integers summing to the dataset "
            f"length {total} or fractions summing to 1, received {lengths!r}"
        )
    order = resolve_generator(generator).permutation(total)
    offsets = numpy.cumsum([0] + lengths)
    return [Subset(dataset, order[start:stop]) for start, stop in zip(offsets[:-1], offsets[1:])]


def collate(samples):
    """Stack a list of samples (tuples of arrays, Tensors or numbers) field by field into arrays."""
    first = samples[0]
    if isinstance(first, (tuple, list)):
        return tuple(collate([sample[i] for sample in samples]) for i in range(len(first)))
    if isinstance(first, Tensor):
        xp = backend.get_array_module(first.data)
        return xp.stack([sample.data for sample in samples])
    if isinstance(first, (bool, int, numpy.integer)):
        return numpy.asarray(samples, dtype=numpy.int64)
    if isinstance(first, (float, numpy.floating)):
        return numpy.asarray(samples, dtype=backend.DEFAULT_FLOAT_DTYPE)
    xp = backend.get_array_module(first)
    return xp.stack([xp.asarray(sample) for sample in samples])
