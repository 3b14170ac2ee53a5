"""Scatter-add at arbitrary positions, for backward passes that gather (embedding, grid_sample).

A gather's adjoint sums every gathered element back to where it came from, and positions
repeat. ``bincount`` with weights does that in one vectorised pass (NumPy and CuPy alike),
accumulating in float64; ``add.at`` would do it one element at a time.
"""

from __future__ import annotations

from convstack.backend import get_array_module


def scatter_add(flat_indices, values, size: int, dtype):
    """A flat array of ``size`` elements: ``out[i] = sum(values[j] for j where flat_indices[j] == i)``.

    ``flat_indices`` (ints in [0, size)) and ``values`` have the same shape; the result has ``dtype``.
    """
    xp = get_array_module(values)
    summed = xp.bincount(flat_indices.reshape(-1), weights=values.reshape(-1), minlength=size)
    return summed.astype(dtype, copy=False)
