"""A folder of images, one sub-folder per class: ``root/<class name>/<image>.png``.

Class indices follow the sorted class names. Images are decoded by Pillow, imported only
when an image is read.
"""

from __future__ import annotations

from pathlib import Path

import numpy

from convstack.data.dataset import Dataset, _check_index
from convstack.data.errors import DataFormatError
from convstack.data.transforms import ToTensor

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def read_image(path, mode: str = "RGB", background: int = 0) -> numpy.ndarray:
    """Decode one image file to uint8 (H, W) for ``mode='L'`` or (H, W, 3) for ``mode='RGB'``.

    16-bit, 32-bit integer and float images are scaled to 8 bits and transparent pixels
    composited over ``background`` (see ``convstack.image.decode``).

    Raises:
        FileNotFoundError: when ``path`` is not a file.
        DataFormatError: naming ``path`` when Pillow cannot decode it, it is too large, or its
            mode or values have no faithful 8-bit conversion.
    """
    from convstack.image.decode import decode

    if mode not in ("L", "RGB"):
        raise ValueError(f"read_image: invalid value for argument `mode`: expected 'L' or 'RGB', received {mode!r}")
    return decode(path, mode, background)


class ImageFolder(Dataset):
    """Labelled images from ``root/<class>/<file>``, read one at a time.

    Args:
        root: the folder of class sub-folders.
        mode: ``'L'`` (grayscale) or ``'RGB'``; every image is converted to it.
        transform: applied to each image (default ``ToTensor()``: float32 (C, H, W) in [0, 1]).
        extensions: the file suffixes taken as images (case-insensitive).

    Attributes:
        classes: the sorted class names; ``class_to_idx``; ``samples``: (path, label) pairs.
    """

    def __init__(self, root, mode: str = "RGB", transform=None, extensions=EXTENSIONS):
        if mode not in ("L", "RGB"):
            raise ValueError(f"ImageFolder: invalid value for argument `mode`: expected 'L' or 'RGB', "
                             f"received {mode!r}")
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"ImageFolder: no such folder {root}")
        self.root, self.mode, self.source = root, mode, str(root)
        self.transform = ToTensor() if transform is None else transform
        self.classes = tuple(sorted(entry.name for entry in root.iterdir() if entry.is_dir()))
        if not self.classes:
            raise DataFormatError(root, "no class sub-folders (expected root/<class name>/<image files>)")
        self.class_to_idx = {name: index for index, name in enumerate(self.classes)}
        suffixes = tuple(e.lower() for e in extensions)
        self.samples = [
            (path, index)
            for index, name in enumerate(self.classes)
            for path in sorted((root / name).iterdir())
            if path.is_file() and path.suffix.lower() in suffixes
        ]
        if not self.samples:
            raise DataFormatError(root, f"no image files ({', '.join(suffixes)}) in any class sub-folder")

    @property
    def targets(self):
        return numpy.asarray([label for _, label in self.samples], dtype=numpy.int64)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index):
        path, label = self.samples[_check_index(index, len(self), "ImageFolder")]
        return self.transform(read_image(path, self.mode)), label
