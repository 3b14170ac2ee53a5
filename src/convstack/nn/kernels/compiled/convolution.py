"""The compiled tier's convolution algorithms (registered ahead of the reference ones they outrun)."""

from __future__ import annotations


def register(tier) -> None:
    """Register the compiled convolution algorithms with ``tier``'s policy."""
