"""IDX files (MNIST, Fashion-MNIST): a reader that trusts nothing and a writer.

The IDX format (LeCun et al., http://yann.lecun.com/exdb/mnist/) is a 4-byte magic number
``00 00 <dtype code> <ndim>``, then ``ndim`` big-endian uint32 dimensions, then the array
in C order, big-endian. Files are usually gzipped; gzip is recognised by its own magic
bytes (``1f 8b``), never by the file name.

The reader checks, before allocating anything: the magic number, the dtype code, the
number of dimensions, that the array the header describes fits in ``max_bytes``, and that
the data present is exactly what the header says (file size for raw files; for gzip,
decompression is bounded by the expected size, and the stream must end there, CRC and
length trailer checked by zlib). Every refusal is a ``DataFormatError`` naming the file.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy

from convstack.atomic import atomic_write
from convstack.data.errors import DataFormatError

GZIP_MAGIC = b"\x1f\x8b"
CHUNK_BYTES = 1 << 20
MAX_NDIM = 16
DEFAULT_MAX_BYTES = 1 << 31  # 2 GiB: the largest IDX array the reader will allocate unless told otherwise

# IDX dtype codes -> big-endian NumPy dtypes.
DTYPE_CODES = {
    0x08: numpy.dtype(">u1"),
    0x09: numpy.dtype(">i1"),
    0x0B: numpy.dtype(">i2"),
    0x0C: numpy.dtype(">i4"),
    0x0D: numpy.dtype(">f4"),
    0x0E: numpy.dtype(">f8"),
}
CODES_BY_KIND = {(dtype.kind, dtype.itemsize): code for code, dtype in DTYPE_CODES.items()}


class _RawSource:
    """Reads a raw (uncompressed) file; knows its total size up front."""

    def __init__(self, handle, path):
        self.handle = handle
        self.path = path
        self.size = os.fstat(handle.fileno()).st_size

    def read_exact(self, count: int, what: str) -> bytes:
        data = self.handle.read(count)
        if len(data) != count:
            raise DataFormatError(self.path, f"file ends inside the {what} ({len(data)} of {count} bytes present)")
        return data

    def read_payload(self, out: numpy.ndarray, header_bytes: int) -> None:
        expected = header_bytes + out.nbytes
        if self.size != expected:
            raise DataFormatError(
                self.path,
                f"file size {self.size} bytes disagrees with the header, which describes {expected} bytes",
            )
        view = memoryview(out.reshape(-1).view(numpy.uint8))
        filled = 0
        while filled < out.nbytes:
            count = self.handle.readinto(view[filled:])
            if not count:
                raise DataFormatError(self.path, f"file ends after {filled} of {out.nbytes} data bytes")
            filled += count


class _GzipSource:
    """Streams a gzip file through zlib, never producing more than asked for."""

    def __init__(self, handle, path):
        self.handle = handle
        self.path = path
        self.inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip wrapper, CRC and size checked
        self.pending = b""  # decompressed bytes not handed out yet

    def _inflate(self, limit: int) -> bytes:
        """Up to ``limit`` more decompressed bytes ('' only at the end of the stream)."""
        while True:
            if self.inflater.eof:  # checked first: at the end, zlib may leave bytes in unconsumed_tail
                return b""
            compressed = self.inflater.unconsumed_tail or self.handle.read(CHUNK_BYTES)
            if not compressed:
                raise DataFormatError(self.path, "truncated gzip stream (the file ends before the gzip trailer)")
            try:
                data = self.inflater.decompress(compressed, limit)
            except zlib.error as error:
                raise DataFormatError(self.path, f"corrupt gzip stream ({error})") from None
            if data:
                return data
            if not self.inflater.eof and self.inflater.unconsumed_tail == compressed:
                # zlib neither consumed input nor produced output: refuse rather than spin.
                raise DataFormatError(self.path, "corrupt gzip stream (decompression makes no progress)")

    def read_exact(self, count: int, what: str) -> bytes:
        data = self.pending
        while len(data) < count:
            more = self._inflate(count - len(data))
            if not more:
                raise DataFormatError(self.path, f"data ends inside the {what} ({len(data)} of {count} bytes present)")
            data += more
        self.pending = data[count:]
        return data[:count]

    def read_payload(self, out: numpy.ndarray, header_bytes: int) -> None:
        view = memoryview(out.reshape(-1).view(numpy.uint8))
        filled = min(len(self.pending), out.nbytes)
        view[:filled] = self.pending[:filled]
        surplus = len(self.pending) > filled
        while filled < out.nbytes:
            data = self._inflate(out.nbytes - filled)
            if not data:
                raise DataFormatError(
                    self.path, f"data ends after {filled} of the {out.nbytes} bytes the header describes"
                )
            view[filled : filled + len(data)] = data
            filled += len(data)
        # The stream must end exactly here: one byte more means the header understates the data.
        if surplus or self._inflate(1):
            raise DataFormatError(self.path, f"more data than the {out.nbytes} bytes the header describes")
        if self.inflater.unused_data or self.inflater.unconsumed_tail or self.handle.read(1):
            raise DataFormatError(self.path, "unexpected bytes after the end of the gzip stream")


def read_idx(path, max_bytes: int = DEFAULT_MAX_BYTES) -> numpy.ndarray:
    """Read an IDX file (raw or gzipped) into a native-endian NumPy array.

    Args:
        path: the file. Gzip is detected from the magic bytes, whatever the name.
        max_bytes: refuse (before allocating) an array larger than this.

    Returns:
        An array of the dtype and shape the header declares (``uint8`` for MNIST).

    Raises:
        DataFormatError: naming ``path``, for any malformed, truncated, extended or oversized file.
        FileNotFoundError: when ``path`` does not exist.

    Examples:
        >>> images = read_idx("train-images-idx3-ubyte.gz")   # doctest: +SKIP
        >>> images.shape, images.dtype
        ((60000, 28, 28), dtype('uint8'))
    """
    path = Path(path)
    with open(path, "rb") as handle:
        signature = handle.read(2)
        handle.seek(0)
        source = _GzipSource(handle, path) if signature == GZIP_MAGIC else _RawSource(handle, path)
        magic = source.read_exact(4, "IDX magic number")
        if magic[0] != 0 or magic[1] != 0:
            raise DataFormatError(
                path, f"not an IDX file: magic number {magic.hex()} should start with 0000 (nor is it gzip)"
            )
        if magic[2] not in DTYPE_CODES:
            known = ", ".join(f"0x{code:02x}" for code in DTYPE_CODES)
            raise DataFormatError(path, f"unknown IDX dtype code 0x{magic[2]:02x} (known: {known})")
        dtype, ndim = DTYPE_CODES[magic[2]], magic[3]
        if not 1 <= ndim <= MAX_NDIM:
            raise DataFormatError(path, f"IDX header declares {ndim} dimensions; expected 1 to {MAX_NDIM}")
        shape = tuple(int(d) for d in numpy.frombuffer(source.read_exact(4 * ndim, "IDX dimensions"), dtype=">u4"))
        nbytes = dtype.itemsize
        for dim in shape:  # Python ints: no overflow
            nbytes *= dim
        if nbytes > max_bytes:
            raise DataFormatError(
                path, f"IDX header declares shape {shape} ({nbytes} bytes), more than the limit of {max_bytes} bytes"
            )
        try:
            out = numpy.empty(shape, dtype=dtype)
        except (ValueError, MemoryError) as error:  # e.g. a zero dimension beside absurd ones
            raise DataFormatError(path, f"cannot allocate the IDX shape {shape} ({error})") from None
        source.read_payload(out, 4 + 4 * ndim)
    return out.astype(dtype.newbyteorder("="), copy=False)


def write_idx(path, array, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file, gzipped when ``compress`` (default: the name ends in ``.gz``).

    The gzip header carries no time stamp, so equal arrays give byte-identical files.
    """
    path = Path(path)
    array = numpy.ascontiguousarray(array)
    code = CODES_BY_KIND.get((array.dtype.kind, array.dtype.itemsize))
    if code is None or array.ndim < 1 or array.ndim > MAX_NDIM:
        raise ValueError(
            f"write_idx: invalid value for argument `array`: expected a 1- to {MAX_NDIM}-D array of uint8, int8, "
            f"int16, int32, float32 or float64, received dtype {array.dtype} and shape {array.shape}"
        )
    header = bytes([0, 0, code, array.ndim]) + numpy.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(DTYPE_CODES[code], copy=False).tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    atomic_write(path, gzip.compress(payload, compresslevel=9, mtime=0) if compress else payload)
    return path
