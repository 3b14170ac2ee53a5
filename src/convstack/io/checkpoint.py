"""Checkpoints that cannot execute code: the safetensors layout, a checksum over every byte, atomic writes.

The file layout and its checks are in ``convstack.io.safetensors_file``. Loading parses
JSON and copies bytes into arrays: nothing in the file is ever executed. Writing goes to
a temporary file in the same folder, is flushed and fsync'ed, then renamed over the
target (``convstack.atomic``), so a crash leaves either the old checkpoint or the new one,
never half of one.

A checkpoint holds nested state (model and optimizer state dicts, scheduler state,
random-generator state, epoch, history): arrays are stored as tensors named by their
path in the structure, everything else as JSON in the metadata: lists, and objects of one
of three kinds, ``{"__array__": name}``, ``{"__tuple__": [...]}`` and
``{"__dict__": [[key, value], ...]}``. Anything else in that JSON is refused, naming the file.
"""

from __future__ import annotations

import json

import numpy

from convstack.io.safetensors_file import (  # noqa: F401 - re-exported: the raw layer's names
    CheckpointError,
    load_safetensors,
    parse_json,
    save_safetensors,
)

_ARRAY_MARK = "__array__"


# ----------------------------------------------------------------------------- nested state
def save_checkpoint(path, state: dict) -> None:
    """Save nested ``state`` (dicts, lists, numbers, strings, arrays, tensors) to ``path``."""
    arrays: dict = {}
    structure = _split(state, "", arrays)
    save_safetensors(arrays, path, {"state": json.dumps(structure)})


def load_checkpoint(path, require_dict: bool = True):
    """Load what ``save_checkpoint`` wrote; arrays come back as NumPy arrays.

    ``require_dict``: refuse a state that is not a dict (a training checkpoint always is;
    ``convstack.load`` also reads a saved tensor or list).

    Raises:
        CheckpointError: naming ``path`` for any file that is not a checkpoint of this shape.
    """
    arrays, metadata = load_safetensors(path)
    if metadata.get("format") != "convstack" or "state" not in metadata:
        # A plain safetensors file (e.g. from another library): its arrays are the state.
        return dict(arrays)
    structure = parse_json(metadata["state"], path, "checkpoint metadata")
    try:
        state = _join(structure, arrays, path)
    except RecursionError:
        raise CheckpointError(f"{path}: corrupted checkpoint metadata (nested too deeply)") from None
    if require_dict and not isinstance(state, dict):
        raise CheckpointError(f"{path}: corrupted checkpoint metadata (the state is a {type(state).__name__}, "
                              "expected a dict)")
    return state


def load_model_checkpoint(path, model, strict: bool = True):
    """Load the model weights in ``path`` into ``model``: all of them or, on any mismatch, none.

    ``path`` is a training checkpoint (its ``"model"`` entry is used) or a plain state-dict
    file. A file that does not fit the model (missing or unexpected keys, shape differences,
    entries that are not arrays) raises ``CheckpointError`` naming the file and every
    mismatch, with the model unchanged. Returns the whole loaded state.
    """
    state = load_checkpoint(path)
    weights = state["model"] if isinstance(state.get("model"), dict) else state
    check_weights(weights, path)
    try:
        model.load_state_dict(weights, strict=strict)
    except (RuntimeError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: does not fit the model: {one_line(error)}") from error
    return state


def check_weights(weights, path) -> None:
    """Refuse a state dict whose names are not strings or whose values are not arrays, naming the entry."""
    if not isinstance(weights, dict):
        raise CheckpointError(f"{path}: the model's state is a {type(weights).__name__}, expected a dict of arrays")
    for name, value in weights.items():
        if not isinstance(name, str) or not isinstance(value, numpy.ndarray):
            raise CheckpointError(
                f"{path}: the model's state holds {type(value).__name__} at {name!r}, expected an array under a name"
            )


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
    """Rebuild the state from the JSON ``structure``, checking each node's shape."""
    if isinstance(structure, list):
        return [_join(v, arrays, path) for v in structure]
    if not isinstance(structure, dict):
        return structure
    if len(structure) != 1 or next(iter(structure)) not in (_ARRAY_MARK, "__tuple__", "__dict__"):
        raise CheckpointError(f"{path}: corrupted checkpoint metadata (unknown node {sorted(structure)})")
    ((kind, content),) = structure.items()
    if kind == _ARRAY_MARK:
        if not isinstance(content, str) or content not in arrays:
            raise CheckpointError(f"{path}: the checkpoint refers to a missing array {content!r}")
        return arrays[content]
    if not isinstance(content, list):
        raise CheckpointError(f"{path}: corrupted checkpoint metadata ({kind} holds a {type(content).__name__})")
    if kind == "__tuple__":
        return tuple(_join(v, arrays, path) for v in content)
    result = {}
    for pair in content:
        if not isinstance(pair, list) or len(pair) != 2:
            raise CheckpointError(f"{path}: corrupted checkpoint metadata (a __dict__ item is not a [key, value] pair)")
        key, value = _join(pair[0], arrays, path), _join(pair[1], arrays, path)
        try:
            result[key] = value
        except TypeError:  # an unhashable key
            raise CheckpointError(
                f"{path}: corrupted checkpoint metadata (a dict key of type {type(key).__name__})"
            ) from None
    return result
