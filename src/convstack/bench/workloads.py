"""The benchmark's workloads, in table order: the issue's list (issue 5, item 1)."""

from __future__ import annotations

from convstack.bench.layer_workloads import CONV_LAYERS, POOLS, conv_workloads, pool_and_norm_workloads
from convstack.bench.model_workloads import model_workloads

__all__ = ["CONV_LAYERS", "POOLS", "all_workloads"]


def all_workloads(quick: bool = False):
    """Per-layer rows (convolutions, pooling, batch norm), then whole models."""
    return conv_workloads() + pool_and_norm_workloads() + model_workloads(quick)
