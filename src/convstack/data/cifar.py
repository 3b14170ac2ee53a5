"""CIFAR-10 and CIFAR-100 in their *binary* format (Krizhevsky 2009), never the pickled one.

Each file is a run of fixed-size records: 1 label byte (CIFAR-10) or 2 (coarse, fine:
CIFAR-100), then 3072 bytes of a 32x32 image, channel-major (1024 red, 1024 green,
1024 blue). The reader checks that the file size is a non-zero multiple of the record
size and that every label is in range. The "python version" of CIFAR is pickled, and
unpickling can run code: it is refused, with a message pointing at the binary version.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy

from convstack.data.dataset import ImageArrayDataset
from convstack.data.errors import DataFormatError

IMAGE_SHAPE = (3, 32, 32)
IMAGE_BYTES = 3 * 32 * 32
DEFAULT_MAX_BYTES = 1 << 30

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST_FILES = ("test_batch.bin",)


def read_cifar_batch(path, label_bytes: int = 1, num_classes=(10,), max_bytes: int = DEFAULT_MAX_BYTES):
    """Read one CIFAR binary file.

    Args:
        path: the ``.bin`` file.
        label_bytes: 1 (CIFAR-10) or 2 (CIFAR-100: coarse then fine).
        num_classes: the number of classes for each label byte (CIFAR-100: ``(20, 100)``).
        max_bytes: refuse larger files before reading them.

    Returns:
        ``(images, labels)``: uint8 (N, 3, 32, 32) and uint8 (N, label_bytes).

    Raises:
        DataFormatError: naming ``path``: empty file, size not a multiple of the record, label out of range.
    """
    path = Path(path)
    if label_bytes not in (1, 2) or len(num_classes) != label_bytes:
        raise ValueError(f"read_cifar_batch: expected label_bytes 1 or 2 with one class count per label byte, "
                         f"received label_bytes={label_bytes!r}, num_classes={num_classes!r}")
    record = label_bytes + IMAGE_BYTES
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > max_bytes:
            raise DataFormatError(path, f"file of {size} bytes is larger than the limit of {max_bytes} bytes")
        if size == 0 or size % record:
            raise DataFormatError(
                path,
                f"file size {size} bytes is not a positive multiple of the {record}-byte CIFAR record "
                f"({label_bytes} label byte{'s' if label_bytes > 1 else ''} + {IMAGE_BYTES} image bytes)",
            )
        raw = handle.read(size)
    if len(raw) != size:
        raise DataFormatError(path, f"read {len(raw)} bytes of a {size}-byte file")
    records = numpy.frombuffer(raw, dtype=numpy.uint8).reshape(-1, record)  # (N, label_bytes + 3072)
    labels = records[:, :label_bytes].copy()
    for column, classes in enumerate(num_classes):
        bad = numpy.flatnonzero(labels[:, column] >= classes)
        if bad.size:
            raise DataFormatError(
                path, f"record {int(bad[0])} has label {int(labels[bad[0], column])}, expected 0..{classes - 1}"
            )
    images = records[:, label_bytes:].reshape(-1, *IMAGE_SHAPE).copy()  # (N, 3, 32, 32)
    return images, labels


def _batch_folder(name: str, root, marker: str, folder_name: str) -> Path:
    """The first searched folder (or its ``folder_name`` sub-folder) holding ``marker``."""
    from convstack.data.finder import search_dirs  # the finder imports the datasets module too

    places = search_dirs(name, root)
    for place in places:
        for candidate in (place, place / folder_name):
            if (candidate / marker).is_file():
                return candidate
    for place in places:
        pickled = place / folder_name.replace("-bin", "-py").replace("-binary", "-python")
        if pickled.exists() or (place / "data_batch_1").is_file() or (place / "test").is_file():
            raise DataFormatError(place, "this is the pickled (python) CIFAR format, which convstack never loads "
                                         "(unpickling can run code); use the binary version")
    searched = ", ".join(str(p) for p in places)
    raise FileNotFoundError(
        f"{name}: no CIFAR binary files ({marker}) in {searched} (or their {folder_name} sub-folders); "
        f"download the binary version from https://www.cs.toronto.edu/~kriz/cifar.html and extract it there"
    )


def _load(folder: Path, names, label_bytes, num_classes, label_column):
    images, labels = [], []
    for name in names:
        batch_images, batch_labels = read_cifar_batch(folder / name, label_bytes, num_classes)
        images.append(batch_images)
        labels.append(batch_labels[:, label_column])
    return numpy.concatenate(images), numpy.concatenate(labels).astype(numpy.int64)


def cifar10(split: str = "train", root=None, transform=None) -> ImageArrayDataset:
    """CIFAR-10 from its binary batches (``data_batch_1.bin`` ... ``data_batch_5.bin``, ``test_batch.bin``).

    Searched like Fashion-MNIST (``root``, ``$CONVSTACK_DATA``, ``~/.cache/convstack/cifar10``),
    each folder directly and in its ``cifar-10-batches-bin`` sub-folder; never downloaded.

    Args:
        split: ``'train'`` (50,000 images) or ``'test'`` (10,000).
        root: a folder searched first.
        transform: as ``ImageArrayDataset`` (default ``ToTensor()``: float32 (3, 32, 32)).
    """
    if split not in ("train", "test"):
        raise ValueError(f"cifar10: invalid value for argument `split`: expected 'train' or 'test', received {split!r}")
    folder = _batch_folder("cifar10", root, "test_batch.bin", "cifar-10-batches-bin")
    names = CIFAR10_TRAIN_FILES if split == "train" else CIFAR10_TEST_FILES
    images, labels = _load(folder, names, 1, (10,), 0)
    return ImageArrayDataset(images, labels, transform=transform, classes=CIFAR10_CLASSES, source=str(folder))


def cifar100(split: str = "train", root=None, label: str = "fine", transform=None) -> ImageArrayDataset:
    """CIFAR-100 from ``train.bin`` / ``test.bin``, searched like ``cifar10`` (sub-folder ``cifar-100-binary``).

    Args:
        label: ``'fine'`` (100 classes) or ``'coarse'`` (20 superclasses).
    """
    if split not in ("train", "test"):
        raise ValueError(f"cifar100: invalid value for argument `split`: expected 'train' or 'test', "
                         f"received {split!r}")
    if label not in ("fine", "coarse"):
        raise ValueError(f"cifar100: invalid value for argument `label`: expected 'fine' or 'coarse', "
                         f"received {label!r}")
    folder = _batch_folder("cifar100", root, "test.bin", "cifar-100-binary")
    images, labels = _load(folder, (f"{split}.bin",), 2, (20, 100), 1 if label == "fine" else 0)
    return ImageArrayDataset(images, labels, transform=transform, source=str(folder))
