"""PyTorch state dicts in and out: ``.pt`` / ``.pth`` files through torch, ``.safetensors`` files without it.

The zoo uses torchvision's parameter names and layouts (``layer1.0.conv1.weight``,
``features.0.weight``, ``fc.weight`` as (out, in)), so torchvision's ResNet, VGG, AlexNet and
GoogLeNet state dicts load with ``strict=True``. torch is imported only to read or write
``.pt`` files, always with ``torch.load(..., weights_only=True)``: a file that holds anything but
tensors and plain containers is refused, never run. Safetensors files are read and written by
convstack's own reader (``convstack.io.checkpoint``), no torch and no ``safetensors`` package needed.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import numpy

from convstack.atomic import atomic_write
from convstack.io.checkpoint import load_safetensors, save_safetensors

TORCH_SUFFIXES = (".pt", ".pth", ".bin")
_WRAPPERS = ("state_dict", "model_state_dict", "model")  # common checkpoint layouts around a state dict


def _import_torch(op: str, path):
    try:
        import torch
    except ImportError as error:
        raise ImportError(f"{op}: reading or writing {path} (a .pt/.pth/.bin file) needs PyTorch: pip install "
                          "'convstack[torch]'; a .safetensors file exchanges the same weights without it") from error
    return torch


def _as_numpy(name: str, value):
    """A torch tensor or array as a NumPy array (bfloat16 and other dtypes NumPy lacks become float32)."""
    if hasattr(value, "detach"):  # a torch tensor
        tensor = value.detach().cpu()
        if str(tensor.dtype) in ("torch.bfloat16", "torch.float8_e4m3fn", "torch.float8_e5m2"):
            tensor = tensor.float()
        return tensor.numpy()
    if isinstance(value, numpy.ndarray):
        return value
    if hasattr(value, "numpy") and hasattr(value, "shape"):  # a convstack tensor
        return value.numpy()
    raise ValueError(f"entry {name!r} is a {type(value).__name__}, not a tensor")


def _unwrap(state) -> Mapping:
    """The state dict inside a training checkpoint (``{'state_dict': {...}, 'epoch': 3}``) or the dict itself."""
    if isinstance(state, Mapping) and not all(hasattr(v, "shape") for v in state.values()):
        for key in _WRAPPERS:
            inner = state.get(key)
            if isinstance(inner, Mapping) and inner and all(hasattr(v, "shape") for v in inner.values()):
                return inner
    return state


def read_state_dict(source) -> dict:
    """``{name: numpy array}`` from a ``.pt``/``.pth``/``.bin`` file, a ``.safetensors`` file, or a mapping.

    A mapping may hold torch tensors, convstack tensors or arrays. A state dict wrapped in a
    training checkpoint (under ``state_dict``, ``model_state_dict`` or ``model``) is unwrapped,
    and the ``module.`` prefix that ``DataParallel`` adds to every key is removed.
    """
    op = "load_torch_state_dict"
    if isinstance(source, Mapping):
        state = source
    else:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"{op}: {path} does not exist")
        suffix = path.suffix.lower()
        if suffix == ".safetensors":
            state, _ = load_safetensors(path)
        elif suffix in TORCH_SUFFIXES:
            torch = _import_torch(op, path)
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as error:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError ...
                raise ValueError(f"{op}: {path} is not a file of tensors that torch.load(weights_only=True) "
                                 f"accepts ({type(error).__name__}: {str(error).splitlines()[0]})") from error
        else:
            raise ValueError(f"{op}: invalid value for argument `source`: expected a .pt, .pth, .bin or "
                             f".safetensors file or a mapping, received {path.name!r}")
    state = _unwrap(state)
    if not isinstance(state, Mapping):
        raise ValueError(f"{op}: expected a state dict (names to tensors), found a {type(state).__name__}")
    arrays = {str(name): _as_numpy(str(name), value) for name, value in state.items()}
    if arrays and all(name.startswith("module.") for name in arrays):
        arrays = {name[len("module."):]: value for name, value in arrays.items()}
    return arrays


def load_torch_state_dict(model, source, strict: bool = True):
    """Load a PyTorch (or safetensors) state dict into ``model``.

    Args:
        model: a ``convstack.nn.Module`` whose names match the file's (the zoo uses torchvision's).
        source: a ``.pt``/``.pth``/``.bin`` file (read by torch with ``weights_only=True``), a
            ``.safetensors`` file (read without torch), or a mapping of names to tensors or arrays.
        strict: refuse missing and unexpected keys (shapes are always checked, and nothing is
            copied unless everything fits).

    Returns:
        ``IncompatibleKeys(missing_keys, unexpected_keys)``, as ``Module.load_state_dict``.

    Examples:
        >>> model = convstack.models.resnet18(num_classes=1000)
        >>> load_torch_state_dict(model, "resnet18-f37072fd.pth")  # torchvision's file
        IncompatibleKeys(missing_keys=[], unexpected_keys=[])
    """
    arrays = read_state_dict(source)
    for name, target in model.state_dict().items():
        # A 0-d value (BatchNorm's num_batches_tracked) that a writer stored as one element.
        if name in arrays and target.ndim == 0 and arrays[name].shape == (1,):
            arrays[name] = arrays[name].reshape(())
    return model.load_state_dict(arrays, strict=strict)


def save_torch_state_dict(model, path) -> None:
    """Write ``model.state_dict()`` for PyTorch: a ``.pt``/``.pth`` file through torch, or ``.safetensors`` without.

    ``torch.load(path, weights_only=True)`` (or any safetensors reader) gives back a dict of
    tensors that ``torch_model.load_state_dict`` accepts when the names match.
    """
    path = Path(path)
    arrays = {name: numpy.array(tensor.numpy()) for name, tensor in model.state_dict().items()}
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        save_safetensors(arrays, path)
    elif suffix in TORCH_SUFFIXES:
        torch = _import_torch("save_torch_state_dict", path)
        buffer = io.BytesIO()  # torch.save turns a failed write into an unhelpful RuntimeError: give it memory
        torch.save({name: torch.from_numpy(array) for name, array in arrays.items()}, buffer)
        atomic_write(path, buffer.getbuffer())
    else:
        raise ValueError(f"save_torch_state_dict: invalid value for argument `path`: expected a .pt, .pth, .bin or "
                         f".safetensors file, received {path.name!r}")
