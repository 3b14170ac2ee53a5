"""``load_state_dict``'s checks and copy: everything is checked before anything is copied."""

from __future__ import annotations

import numpy

from convstack import backend
from convstack.autograd import no_grad
from convstack.tensor import Tensor


def _as_array(value):
    """The array behind a state_dict value (a convstack tensor, an array, a torch tensor), or None."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, numpy.ndarray) or backend.get_array_module(value) is not numpy:
        array = value
    elif hasattr(value, "__array__"):
        if hasattr(value, "detach"):  # a torch tensor that requires grad refuses __array__
            value = value.detach()
        array = numpy.asarray(value)
    else:
        return None
    return array if array.dtype.kind in "fiub" else None


def load_into(module, state_dict, strict: bool) -> tuple[list, list]:
    """Check ``state_dict`` against ``module``'s state, then copy it in place; returns (missing, unexpected).

    Raises ``RuntimeError`` in PyTorch's format (missing keys, unexpected keys, then
    one line per mis-shaped value) before touching any tensor.
    """
    if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
        raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict).__name__}.")
    targets = module.state_dict(keep_vars=True)
    missing = [key for key in targets if key not in state_dict]
    unexpected = [key for key in state_dict.keys() if key not in targets]
    errors, arrays = [], {}
    for key, target in targets.items():
        if key not in state_dict:
            continue
        array = _as_array(state_dict[key])
        if array is None:
            errors.append(
                f'While copying the parameter named "{key}", expected a Tensor or array from checkpoint '
                f"but received {type(state_dict[key]).__name__}"
            )
        elif tuple(array.shape) != target.shape:
            errors.append(
                f"size mismatch for {key}: copying a param with shape {tuple(array.shape)} from checkpoint, "
                f"the shape in current model is {target.shape}."
            )
        else:
            arrays[key] = array
    if strict:
        if unexpected:
            errors.insert(0, "Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ". ")
        if missing:
            errors.insert(0, "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". ")
    if errors:
        raise RuntimeError(f"Error(s) in loading state_dict for {type(module).__name__}:\n\t" + "\n\t".join(errors))
    with no_grad():
        for key, array in arrays.items():
            target = targets[key]
            xp = backend.get_array_module(target.data)
            target.data[...] = xp.asarray(array).astype(target.dtype, copy=False)
            target._bump_version("load_state_dict")
    return missing, unexpected
