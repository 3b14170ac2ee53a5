"""The one exception the data readers raise for a file they refuse."""

from __future__ import annotations

import os


class DataFormatError(ValueError):
    """A data file is malformed, truncated, inconsistent or too large to trust.

    The message always starts with the file it is about, then says what is wrong:
    ``DataFormatError: /data/train-images-idx3-ubyte.gz: truncated gzip stream``.

    Attributes:
        path: the offending file (a string), or ``None`` for in-memory data.
        reason: what is wrong with it, without the path.
    """

    def __init__(self, path, reason: str):
        self.path = None if path is None else os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path if self.path is not None else '<data>'}: {reason}")


class ChecksumError(DataFormatError):
    """A downloaded file's MD5 checksum differs from the published one."""
