"""Checkpoints that cannot execute code: the safetensors layout, a checksum, atomic writes.

File layout (the safetensors format, so other tools can read the arrays):

    8 bytes   little-endian uint64 N, the length of the JSON header
    N bytes   JSON: {name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
                     "__metadata__": {"format": "convstack", "sha256": ..., "state": JSON string}}
    ...       the arrays' bytes, back to back, little-endian

Loading parses JSON and copies bytes into arrays: nothing in the file is ever executed.
``sha256`` covers the data section and is verified on load. Writing goes to a temporary
file in the same folder, is flushed and fsync'ed, then renamed over the target, so a
crash leaves either the old checkpoint or the new one, never half of one.

A checkpoint holds nested state (model and optimizer state dicts, scheduler state,
random-generator state, epoch, history): arrays are stored as tensors named by their
path in the structure, everything else as JSON in the metadata.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from pathlib import Path

import numpy

from convstack.backend import to_numpy

_DTYPES = {
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
_CODES = {numpy.dtype(v): k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024
_ARRAY_MARK = "__array__"


class CheckpointError(ValueError):
    """A checkpoint file that is truncated, corrupted, or does not fit the model."""


# ----------------------------------------------------------------------------- raw tensors
def save_safetensors(arrays: dict, path, metadata: dict | None = None) -> None:
    """Write ``{name: array}`` as a safetensors file, atomically, with a checksum.

    ``path`` is a file path, or a binary file object (``io.BytesIO``, an open file) written in place.
    """
    header, chunks, offset = {}, [], 0
    digest = hashlib.sha256()
    for name, value in arrays.items():
        array = numpy.asarray(to_numpy(getattr(value, "data", value)), order="C")  # keeps 0-d arrays 0-d
        if array.dtype not in _CODES:
            raise CheckpointError(f"{path}: cannot store array {name!r} of dtype {array.dtype}")
        raw = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {
            "dtype": _CODES[array.dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        digest.update(raw)
        offset += len(raw)
    meta = {"format": "convstack", "sha256": digest.hexdigest()}
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    header["__metadata__"] = meta
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the format aligns the data section to 8 bytes
    chunks = [struct.pack("<Q", len(encoded)), encoded, *chunks]
    if hasattr(path, "write"):
        for chunk in chunks:
            path.write(chunk)
    else:
        _atomic_write(Path(path), chunks)


def load_safetensors(path) -> tuple[dict, dict]:
    """Read a safetensors file: ``({name: numpy array}, metadata)``; verify the checksum if present.

    ``path`` is a file path, or a binary file object read from its current position to the end.
    """
    if hasattr(path, "read"):
        blob = path.read()
        path = getattr(path, "name", "<stream>")
    else:
        path = Path(path)
        try:
            blob = path.read_bytes()
        except OSError as error:
            raise CheckpointError(f"{path}: cannot read checkpoint ({error.strerror})") from error
    if len(blob) < 8:
        raise CheckpointError(f"{path}: truncated checkpoint ({len(blob)} bytes, no header)")
    (header_length,) = struct.unpack("<Q", blob[:8])
    if header_length > min(_MAX_HEADER, len(blob) - 8):
        raise CheckpointError(
            f"{path}: corrupted or truncated checkpoint (header length {header_length} exceeds the file)"
        )
    try:
        header = json.loads(blob[8 : 8 + header_length])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: corrupted checkpoint header ({error})") from error
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupted checkpoint header (not a JSON object)")
    metadata = header.pop("__metadata__", {}) or {}
    data = memoryview(blob)[8 + header_length :]
    expected = metadata.get("sha256")
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
        raise CheckpointError(f"{path}: checksum mismatch: the file is corrupted or truncated")
    arrays = {}
    for name, entry in header.items():
        try:
            dtype = numpy.dtype(_DTYPES[entry["dtype"]]).newbyteorder("<")
            shape = tuple(int(s) for s in entry["shape"])
            begin, end = (int(o) for o in entry["data_offsets"])
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"{path}: corrupted entry for {name!r} in the header") from error
        count = int(numpy.prod(shape)) if shape else 1
        if not 0 <= begin <= end <= len(data) or end - begin != count * dtype.itemsize:
            raise CheckpointError(
                f"{path}: entry {name!r} does not fit the file (offsets {begin}..{end}, shape {shape})"
            )
        arrays[name] = numpy.frombuffer(data[begin:end], dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
    return arrays, metadata


# ----------------------------------------------------------------------------- nested state
def save_checkpoint(path, state: dict) -> None:
    """Save nested ``state`` (dicts, lists, numbers, strings, arrays, tensors) to ``path``."""
    arrays: dict = {}
    structure = _split(state, "", arrays)
    save_safetensors(arrays, path, {"state": json.dumps(structure)})


def load_checkpoint(path) -> dict:
    """Load what ``save_checkpoint`` wrote; arrays come back as NumPy arrays."""
    arrays, metadata = load_safetensors(path)
    if metadata.get("format") != "convstack" or "state" not in metadata:
        # A plain safetensors file (e.g. from another library): its arrays are the state.
        return dict(arrays)
    try:
        structure = json.loads(metadata["state"])
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}: corrupted checkpoint metadata ({error})") from error
    return _join(structure, arrays, path)


def load_model_checkpoint(path, model, strict: bool = True):
    """Load the model weights in ``path`` into ``model``: all of them or, on any mismatch, none.

    ``path`` is a training checkpoint (its ``"model"`` entry is used) or a plain state-dict
    file. A file that does not fit the model (missing or unexpected keys, shape differences)
    raises ``CheckpointError`` naming the file and every mismatch, with the model unchanged.
    Returns the whole loaded state.
    """
    state = load_checkpoint(path)
    weights = state["model"] if isinstance(state.get("model"), dict) else state
    try:
        model.load_state_dict(weights, strict=strict)
    except (RuntimeError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: does not fit the model: {one_line(error)}") from error
    return state


def one_line(error) -> str:
    """An error's (possibly multi-line) message on one line."""
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())


def _split(value, key: str, arrays: dict):
    """Replace arrays in ``value`` by ``{"__array__": key}`` markers, collecting them in ``arrays``."""
    if hasattr(value, "data") and hasattr(value, "grad"):  # a Tensor or Parameter
        value = value.data
    if isinstance(value, numpy.ndarray) or type(value).__module__.startswith("cupy"):
        arrays[key] = value
        return {_ARRAY_MARK: key}
    if isinstance(value, numpy.generic):
        return value.item()
    if isinstance(value, dict):
        return {
            "__dict__": [
                [_split(k, f"{key}/k{i}", arrays), _split(v, f"{key}/{i}", arrays)]
                for i, (k, v) in enumerate(value.items())
            ]
        }
    if isinstance(value, (list, tuple)):
        items = [_split(v, f"{key}/{i}", arrays) for i, v in enumerate(value)]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise CheckpointError(
        f"cannot store a value of type {type(value).__name__} at {key or 'the top level'} in a checkpoint"
    )


def _join(structure, arrays: dict, path):
    if isinstance(structure, list):
        return [_join(v, arrays, path) for v in structure]
    if isinstance(structure, dict):
        if _ARRAY_MARK in structure:
            name = structure[_ARRAY_MARK]
            if name not in arrays:
                raise CheckpointError(f"{path}: the checkpoint refers to a missing array {name!r}")
            return arrays[name]
        if "__tuple__" in structure:
            return tuple(_join(v, arrays, path) for v in structure["__tuple__"])
        if "__dict__" in structure:
            return {_join(k, arrays, path): _join(v, arrays, path) for k, v in structure["__dict__"]}
        raise CheckpointError(f"{path}: corrupted checkpoint metadata (unknown node {sorted(structure)})")
    return structure


def _atomic_write(path: Path, chunks) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            for chunk in chunks:
                stream.write(chunk)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    try:  # make the rename itself durable
        directory = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
