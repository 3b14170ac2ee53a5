"""Files: checkpoints and state dicts in a format that cannot run code when loaded."""

from convstack.io.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model_checkpoint,
    load_safetensors,
    save_checkpoint,
    save_safetensors,
)

__all__ = [
    "CheckpointError",
    "load_checkpoint",
    "load_model_checkpoint",
    "load_safetensors",
    "save_checkpoint",
    "save_safetensors",
]
