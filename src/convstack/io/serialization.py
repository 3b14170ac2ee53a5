"""``convstack.save`` / ``convstack.load``: ``torch.save`` / ``torch.load`` for data, on the safe checkpoint format.

What PyTorch users save with ``torch.save`` (a tensor, ``model.state_dict()``, a dict of
state dicts, tensors, numbers and strings for a training checkpoint) goes through
``io.checkpoint``: the safetensors layout, a checksum, an atomic write, and no pickle, so
loading a file never runs code. A flat state dict is written as a plain safetensors file
whose tensors carry their own names, readable by any safetensors reader; anything nested
keeps its structure in the file's metadata. A whole ``Module`` (what pickle would store) is
refused: save its ``state_dict()`` and build the model in code.

Examples:
    >>> model = cs.nn.Linear(3, 2)
    >>> buffer = io.BytesIO()
    >>> cs.save(model.state_dict(), buffer)
    >>> _ = buffer.seek(0)
    >>> cs.nn.Linear(3, 2).load_state_dict(cs.load(buffer))
    <All keys matched successfully>
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from convstack import backend
from convstack.io.checkpoint import load_checkpoint, save_checkpoint, save_safetensors
from convstack.tensor import Tensor


def _is_array(value) -> bool:
    return isinstance(value, Tensor) or (hasattr(value, "shape") and hasattr(value, "dtype"))


def save(obj, f) -> None:
    """Save ``obj`` (a tensor, or dicts/lists/tuples of tensors, arrays, numbers, strings, None) to ``f``.

    Args:
        obj: what to save; typically ``model.state_dict()`` or ``{"model": ..., "optimizer": ...,
            "epoch": 3}``. Tensors are saved without their graph or ``requires_grad``.
        f: a path, or a binary file object opened for writing.
    """
    from convstack.nn import Module

    if isinstance(obj, Module):
        raise TypeError(
            f"save: cannot store a Module ({type(obj).__name__}) itself: that would need pickle, which convstack "
            "never uses; save module.state_dict() and load it into a model built in code"
        )
    if isinstance(obj, Mapping) and obj and all(isinstance(k, str) and _is_array(v) for k, v in obj.items()):
        # A flat state dict: the tensors under their own names, the dict's order in the metadata.
        structure = {"__dict__": [[key, {"__array__": key}] for key in obj]}
        save_safetensors(dict(obj), f, {"format": "convstack", "state": json.dumps(structure)})
        return
    save_checkpoint(f, obj)


def load(f, map_location=None, *, weights_only: bool = True):
    """Load what ``save`` wrote (or any safetensors file), with every array as a ``Tensor``.

    Args:
        f: a path, or a binary file object opened for reading.
        map_location: the device for the tensors (``None`` or ``"cpu"``; ``"cuda"`` with the GPU backend).
        weights_only: accepted for PyTorch compatibility; the format holds only data either way, so
            ``True`` and ``False`` load the same thing and neither can run code.

    Returns:
        The saved object: tensors, dicts, lists, tuples, numbers, strings.
    """
    if not isinstance(weights_only, bool):
        raise TypeError(f"load: expected weights_only to be True or False, received {weights_only!r}")
    state = load_checkpoint(f, require_dict=False)
    return _as_tensors(state, map_location)


def _as_tensors(value, device):
    if isinstance(value, dict):
        return {key: _as_tensors(item, device) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_tensors(item, device) for item in value]
    if isinstance(value, tuple):
        return tuple(_as_tensors(item, device) for item in value)
    if _is_array(value):
        return Tensor(value if device in (None, "cpu") else backend.to_device(value, device))
    return value
