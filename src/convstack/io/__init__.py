"""Files: checkpoints and state dicts in a format that cannot run code when loaded."""

from convstack.io.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model_checkpoint,
    load_safetensors,
    save_checkpoint,
    save_safetensors,
)
from convstack.io.serialization import load, save

__all__ = [
    "CheckpointError",
    "load_checkpoint",
    "load_model_checkpoint",
    "load_safetensors",
    "save_checkpoint",
    "save_safetensors",
    "save",
    "load",
]

from convstack.io.onnx_export import export_onnx  # noqa: E402 - onnx itself is imported only when called
from convstack.io.onnx_import import GraphModule, import_onnx  # noqa: E402

__all__ += ["export_onnx", "import_onnx", "GraphModule"]

from convstack.io.torch_weights import load_torch_state_dict, read_state_dict, save_torch_state_dict  # noqa: E402

__all__ += ["load_torch_state_dict", "read_state_dict", "save_torch_state_dict"]
