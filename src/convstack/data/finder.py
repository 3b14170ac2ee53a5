"""Finding, downloading and loading MNIST-style datasets (a pair of IDX files per split).

Places searched, in order, for the split's two files (``name.gz`` or the raw ``name``):
``root`` (and ``root/<dataset>``), ``$CONVSTACK_DATA`` (and ``$CONVSTACK_DATA/<dataset>``),
the user cache folder (``$XDG_CACHE_HOME/convstack/<dataset>``, default
``~/.cache/convstack/<dataset>``), then a system folder such as Debian's
``/usr/share/datasets/<dataset>``. When none has them and downloading is allowed, they
are downloaded into the cache folder and checked against the published MD5 sums.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy

from convstack.data.dataset import ImageArrayDataset
from convstack.data.download import cache_dir, download_file
from convstack.data.errors import DataFormatError
from convstack.data.idx import read_idx

ENVIRONMENT_VARIABLE = "CONVSTACK_DATA"
BUNDLED_SAMPLE = "bundled sample"


@dataclass(frozen=True)
class IdxDatasetSpec:
    """Where an MNIST-style dataset lives and how to check it.

    ``files`` maps a split to its (images, labels) file names without ``.gz``; ``md5`` maps
    the published ``.gz`` names to their checksums.
    """

    name: str
    files: dict
    md5: dict
    classes: tuple
    system_dir: Path | None = None
    sample_dir: Path | None = None
    base_urls: tuple = field(default_factory=tuple)


def search_dirs(name: str, root=None, system_dir=None) -> list[Path]:
    """The folders searched, in order, for dataset ``name``."""
    dirs = []
    for base in (root, os.environ.get(ENVIRONMENT_VARIABLE) or None):
        if base is not None:
            dirs += [Path(base), Path(base) / name]
    dirs.append(cache_dir(name))
    if system_dir is not None:
        dirs.append(Path(system_dir))
    return dirs


def _file_in(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def find_split(spec: IdxDatasetSpec, split: str, root=None) -> tuple[Path, Path] | None:
    """The (images, labels) files of ``split`` in the first folder that has both, or ``None``."""
    for folder in search_dirs(spec.name, root, spec.system_dir):
        found = [_file_in(folder, stem) for stem in spec.files[split]]
        if all(found):
            return found[0], found[1]
    return None


def load_idx_split(images_path, labels_path, num_classes: int, transform=None, classes=None, source=None):
    """An ``ImageArrayDataset`` from an IDX images file (N, H, W) and labels file (N,), both checked."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != numpy.uint8:
        raise DataFormatError(images_path, f"expected uint8 images (N, H, W), found {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != numpy.uint8:
        raise DataFormatError(labels_path, f"expected uint8 labels (N,), found {labels.dtype} {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise DataFormatError(
            labels_path, f"{labels.shape[0]} labels for the {images.shape[0]} images of {images_path}"
        )
    if labels.size and int(labels.max()) >= num_classes:
        raise DataFormatError(labels_path, f"label {int(labels.max())} out of range 0..{num_classes - 1}")
    return ImageArrayDataset(images, labels, transform=transform, classes=classes, source=source)


def download_split(spec: IdxDatasetSpec, split: str, base_url: str, progress: bool = True) -> tuple[Path, Path]:
    """Download ``split``'s two ``.gz`` files from ``base_url`` into the cache folder, MD5-checked."""
    folder = cache_dir(spec.name)
    paths = []
    for stem in spec.files[split]:
        target = folder / f"{stem}.gz"
        if not target.is_file():
            download_file(base_url + target.name, target, md5=spec.md5.get(target.name), progress=progress)
        paths.append(target)
    return paths[0], paths[1]


def load_dataset(spec: IdxDatasetSpec, split: str, root=None, download=True, transform=None, sample=False):
    """Find (or download, or fall back to the bundled sample for) one split of ``spec``."""
    if split not in spec.files:
        raise ValueError(f"{spec.name}: invalid value for argument `split`: expected one of "
                         f"{', '.join(repr(s) for s in spec.files)}, received {split!r}")
    sample_files = None
    if spec.sample_dir is not None:
        sample_files = tuple(Path(spec.sample_dir) / f"{stem}.gz" for stem in spec.files[split])

    def from_sample():
        return load_idx_split(*sample_files, len(spec.classes), transform, spec.classes, BUNDLED_SAMPLE)

    if sample and sample_files is not None:
        return from_sample()
    found = find_split(spec, split, root)
    if found is not None:
        return load_idx_split(*found, len(spec.classes), transform, spec.classes, str(found[0].parent))
    searched = ", ".join(str(d) for d in search_dirs(spec.name, root, spec.system_dir))
    problem = f"{spec.name} ({split}) not found in {searched}"
    if download:
        errors = []
        for base_url in spec.base_urls:
            print(f"{problem}; downloading from {base_url}", file=sys.stderr)
            try:
                paths = download_split(spec, split, base_url)
            except (OSError, DataFormatError) as error:  # offline, refused, or a corrupt download
                errors.append(f"{base_url}: {error}")
                continue
            return load_idx_split(*paths, len(spec.classes), transform, spec.classes, str(paths[0].parent))
        problem += "; download failed (" + "; ".join(errors) + ")"
    if sample_files is None:
        raise FileNotFoundError(problem)
    warnings.warn(f"{problem}; using the bundled sample instead", stacklevel=3)
    return from_sample()
