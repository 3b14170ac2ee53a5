"""Regenerate convstack's bundled Fashion-MNIST sample from the official files.

A stratified subset: 1,000 training and 200 test images of each of the 10 classes,
chosen without replacement with a fixed seed and kept in their original order, written
as gzipped IDX files (uint8) under src/convstack/data/sample/. The gzip headers carry no
time stamp, so running this again on the same files gives byte-identical output.

    python3 scripts/make_fashion_mnist_sample.py [--source /usr/share/datasets/fashion-mnist]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy

from convstack.data.fashion_mnist import FILES, SAMPLE_DIR
from convstack.data.finder import load_idx_split
from convstack.data.idx import write_idx

SEED = 20170825  # Fashion-MNIST's arXiv submission date
PER_CLASS = {"train": 1000, "test": 200}


def stratified_indices(labels: numpy.ndarray, per_class: int, rng: numpy.random.Generator) -> numpy.ndarray:
    chosen = [rng.choice(numpy.flatnonzero(labels == c), size=per_class, replace=False) for c in range(10)]
    return numpy.sort(numpy.concatenate(chosen))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/usr/share/datasets/fashion-mnist"),
                        help="folder with the four official .gz files (Debian: dataset-fashion-mnist)")
    parser.add_argument("--output", type=Path, default=SAMPLE_DIR)
    args = parser.parse_args()
    rng = numpy.random.default_rng(SEED)
    args.output.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        images_name, labels_name = FILES[split]
        dataset = load_idx_split(args.source / f"{images_name}.gz", args.source / f"{labels_name}.gz", 10)
        keep = stratified_indices(dataset.labels, PER_CLASS[split], rng)
        write_idx(args.output / f"{images_name}.gz", dataset.images[keep])
        write_idx(args.output / f"{labels_name}.gz", dataset.labels[keep].astype(numpy.uint8))
        print(f"{split}: {keep.size} images -> {args.output}")


if __name__ == "__main__":
    main()
