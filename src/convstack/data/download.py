"""Downloading data files: streamed, MD5-verified, written atomically, with a progress bar on stderr."""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.request
from pathlib import Path

from convstack.atomic import atomic_write
from convstack.data.errors import ChecksumError

CHUNK_BYTES = 1 << 16
TIMEOUT_SECONDS = 30


def cache_dir(name: str) -> Path:
    """``$XDG_CACHE_HOME/convstack/<name>``, or ``~/.cache/convstack/<name>``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "convstack" / name


def file_md5(path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Progress:
    """``name  45% 11.9/26.4 MB`` rewritten in place on stderr."""

    def __init__(self, name, total, stream):
        self.name, self.total, self.stream, self.shown = name, total, stream, -1

    def update(self, done):
        if self.stream is None:
            return
        if self.total:
            percent = min(100, 100 * done // self.total)
            if percent == self.shown:
                return
            self.shown = percent
            text = f"{percent:3d}% {done / 1e6:.1f}/{self.total / 1e6:.1f} MB"
        else:
            text = f"{done / 1e6:.1f} MB"
        self.stream.write(f"\rdownloading {self.name}: {text}")
        self.stream.flush()

    def finish(self):
        if self.stream is not None:
            self.stream.write("\n")
            self.stream.flush()


def download_file(url: str, destination, md5: str | None = None, progress: bool = True,
                  timeout: float = TIMEOUT_SECONDS) -> Path:
    """Download ``url`` to ``destination``, atomically, checking its MD5 when given.

    The file is streamed into a temporary file beside ``destination`` and renamed over it
    only when complete and verified, so an interrupted or corrupted download never leaves
    a file that looks finished.

    Raises:
        ChecksumError: the downloaded bytes do not match ``md5`` (nothing is written).
        OSError: the URL cannot be fetched (``urllib.error.URLError`` is one).
    """
    destination = Path(destination)
    digest = hashlib.md5(usedforsecurity=False)
    with urllib.request.urlopen(url, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        bar = _Progress(destination.name, int(length) if length and length.isdigit() else None,
                        sys.stderr if progress else None)

        def stream_into(out):
            done = 0
            for block in iter(lambda: response.read(CHUNK_BYTES), b""):
                out.write(block)
                digest.update(block)
                done += len(block)
                bar.update(done)
            bar.finish()
            if md5 is not None and digest.hexdigest() != md5.lower():
                raise ChecksumError(url, f"MD5 checksum {digest.hexdigest()} differs from the published {md5}")

        atomic_write(destination, stream_into)  # a temporary beside it, renamed once complete and verified
    return destination
