"""The safetensors layout, read without trusting any byte of the file, with a checksum over all of them.

File layout (the safetensors format, so other tools can read the arrays):

    8 bytes   little-endian uint64 N, the length of the JSON header
    N bytes   JSON: {name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
                     "__metadata__": {"format": "convstack", "file_sha256": ..., ...: strings}}
    ...       the arrays' bytes, back to back, little-endian

``file_sha256`` is the SHA-256 of the whole file (the length, the header and the data) as
written with the 64 hex digits of ``file_sha256`` itself set to ``0``: one edited byte
anywhere (a digit of a stored normalisation constant in the header as much as a weight)
fails the check. Files written before this rule carry ``sha256``, over the data section
only; they are still read. Plain safetensors files from other tools carry no checksum.

Reading checks every field of the header for its JSON type and range (entries are
``{"dtype": known name, "shape": [ints >= 0], "data_offsets": [begin <= end]}`` whose sizes
agree with the data section; ``__metadata__`` maps strings to strings; no duplicate keys,
bounded nesting), so that any file, however made, either loads or
raises ``CheckpointError`` naming it.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy

from convstack.atomic import atomic_write
from convstack.backend import to_numpy

DTYPES = {
    "F64": numpy.float64,
    "F32": numpy.float32,
    "F16": numpy.float16,
    "I64": numpy.int64,
    "I32": numpy.int32,
    "I16": numpy.int16,
    "I8": numpy.int8,
    "U8": numpy.uint8,
    "BOOL": numpy.bool_,
}
_CODES = {numpy.dtype(v): k for k, v in DTYPES.items()}
MAX_HEADER = 100 * 1024 * 1024
MAX_DIMENSIONS = 32
CHECKSUM_KEY = "file_sha256"
_PLACEHOLDER = "0" * 64


class CheckpointError(ValueError):
    """A checkpoint file that is truncated, corrupted, or does not fit the model."""


# ----------------------------------------------------------------------------- writing
def save_safetensors(arrays: dict, path, metadata: dict | None = None) -> None:
    """Write ``{name: array}`` as a safetensors file, atomically, with a checksum over every byte.

    ``path`` is a file path, or a binary file object (``io.BytesIO``, an open file) written in place.
    """
    header, chunks, offset = {}, [], 0
    for name, value in arrays.items():
        array = numpy.asarray(to_numpy(getattr(value, "data", value)), order="C")  # keeps 0-d arrays 0-d
        if array.dtype not in _CODES:
            raise CheckpointError(f"{path}: cannot store array {name!r} of dtype {array.dtype}")
        raw = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _CODES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    meta = {"format": "convstack", CHECKSUM_KEY: _PLACEHOLDER}
    meta.update({str(k): str(v) for k, v in (metadata or {}).items() if str(k) != CHECKSUM_KEY})
    header["__metadata__"] = meta
    chunks = seal(header, chunks)
    if hasattr(path, "write"):
        for chunk in chunks:
            path.write(chunk)
    else:
        atomic_write(Path(path), chunks)


def seal(header: dict, chunks: list) -> list:
    """The file's byte chunks for ``header`` (a dict whose metadata holds the placeholder checksum) and data.

    The header is encoded, padded to 8 bytes, and the checksum over all the bytes is written
    in place of the placeholder.
    """
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the format aligns the data section to 8 bytes
    prefix = struct.pack("<Q", len(encoded))
    field = _field(_PLACEHOLDER)
    if encoded.count(field) != 1:
        raise CheckpointError("cannot seal a safetensors header without exactly one checksum placeholder")
    digest = hashlib.sha256(prefix)
    digest.update(encoded)
    for chunk in chunks:
        digest.update(chunk)
    return [prefix, encoded.replace(field, _field(digest.hexdigest())), *chunks]


def _field(hex_digest: str) -> bytes:
    return f'"{CHECKSUM_KEY}":"{hex_digest}"'.encode()


# ----------------------------------------------------------------------------- reading
def load_safetensors(path) -> tuple[dict, dict]:
    """Read a safetensors file: ``({name: numpy array}, metadata)``, verifying its checksum when it has one.

    ``path`` is a file path, or a binary file object read from its current position to the end.

    Raises:
        CheckpointError: naming ``path``, for a file that cannot be read, is truncated,
            corrupted, fails its checksum, or whose header is not what the format says.
    """
    try:
        if hasattr(path, "read"):
            blob, path = path.read(), getattr(path, "name", "<stream>")
        else:
            path = Path(path)
            blob = path.read_bytes()
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read checkpoint ({error.strerror or error})") from error
    except MemoryError:
        raise CheckpointError(f"{path}: too large to read into memory") from None
    if len(blob) < 8:
        raise CheckpointError(f"{path}: truncated checkpoint ({len(blob)} bytes, no header)")
    (header_length,) = struct.unpack("<Q", blob[:8])
    if header_length > min(MAX_HEADER, len(blob) - 8):
        raise CheckpointError(
            f"{path}: corrupted or truncated checkpoint (header length {header_length} exceeds the file)"
        )
    raw_header = blob[8 : 8 + header_length]
    header = parse_json(raw_header, path, "checkpoint header")
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupted checkpoint header (a JSON {type(header).__name__}, not an object)")
    metadata = _metadata(header.pop("__metadata__", {}), path)
    data = memoryview(blob)[8 + header_length :]
    _verify(blob[:8], raw_header, data, metadata, path)
    arrays = {name: _array(name, entry, data, path) for name, entry in header.items()}
    return arrays, metadata


def parse_json(raw, path, what: str):
    """``json.loads`` that refuses duplicate keys and turns any failure (deep nesting included) into CheckpointError.

    NaN and Infinity are read as Python's ``json`` writes them (a history may hold an infinite loss).
    """

    def no_duplicates(pairs):
        result = {}
        for key, value in pairs:
            if key in result:
                raise ValueError(f"duplicate key {key!r}")
            result[key] = value
        return result

    try:
        return json.loads(raw, object_pairs_hook=no_duplicates)
    except RecursionError:
        raise CheckpointError(f"{path}: corrupted {what} (nested too deeply)") from None
    except (UnicodeDecodeError, ValueError) as error:  # json.JSONDecodeError is a ValueError
        raise CheckpointError(f"{path}: corrupted {what} ({error})") from None


def _metadata(metadata, path) -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise CheckpointError(
            f"{path}: corrupted checkpoint header (__metadata__ is a JSON {type(metadata).__name__}, "
            "expected an object of strings)"
        )
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise CheckpointError(
                f"{path}: corrupted checkpoint header (__metadata__ entry {key!r} is a JSON "
                f"{type(value).__name__}, expected a string)"
            )
    return metadata


def _verify(prefix: bytes, raw_header: bytes, data, metadata: dict, path) -> None:
    expected = metadata.get(CHECKSUM_KEY)
    if expected is not None:
        field = _field(expected)
        if len(expected) != 64 or raw_header.count(field) != 1:
            raise CheckpointError(f"{path}: corrupted checkpoint header (malformed {CHECKSUM_KEY})")
        digest = hashlib.sha256(prefix)
        digest.update(raw_header.replace(field, _field(_PLACEHOLDER)))
        digest.update(data)
    elif "sha256" in metadata:  # written before the checksum covered the header
        expected, digest = metadata["sha256"], hashlib.sha256(data)
    elif metadata.get("format") == "convstack":
        raise CheckpointError(f"{path}: corrupted checkpoint header (a convstack checkpoint without its checksum)")
    else:
        return  # a plain safetensors file from another tool: nothing to check against
    if digest.hexdigest() != expected:
        raise CheckpointError(f"{path}: checksum mismatch: the file is corrupted or truncated")


def _index(value) -> bool:
    return type(value) is int and value >= 0  # JSON true/false are not sizes


def _array(name: str, entry, data, path) -> numpy.ndarray:
    def corrupted(why: str) -> CheckpointError:
        return CheckpointError(f"{path}: corrupted entry for {name!r} in the header ({why})")

    if not isinstance(entry, dict):
        raise corrupted(f"a JSON {type(entry).__name__}, expected an object")
    if set(entry) != {"dtype", "shape", "data_offsets"}:
        raise corrupted(f"keys {sorted(entry)}, expected ['data_offsets', 'dtype', 'shape']")
    code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(code, str) or code not in DTYPES:
        raise corrupted(f"dtype {code!r}, expected one of {', '.join(DTYPES)}")
    if not isinstance(shape, list) or len(shape) > MAX_DIMENSIONS or not all(_index(s) for s in shape):
        raise corrupted(f"shape {shape!r}, expected a list of at most {MAX_DIMENSIONS} non-negative integers")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_index(o) for o in offsets):
        raise corrupted(f"data_offsets {offsets!r}, expected [begin, end] with non-negative integers")
    dtype = numpy.dtype(DTYPES[code]).newbyteorder("<")
    count = 1
    for size in shape:
        count *= size  # Python integers: no overflow for absurd shapes
    begin, end = offsets
    if not begin <= end <= len(data) or end - begin != count * dtype.itemsize:
        raise CheckpointError(
            f"{path}: entry {name!r} does not fit the file (offsets {begin}..{end}, shape {tuple(shape)})"
        )
    try:
        return numpy.frombuffer(data[begin:end], dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
    except ValueError as error:  # a zero-size array of a shape NumPy cannot index ("array is too big")
        raise corrupted(str(error)) from None
