"""Scatter-add of gathered rows, for backward passes that gather (embedding, grid_sample).

A gather's adjoint sums every gathered value back to where it came from, and positions
repeat. ``bincount`` with weights does that in one vectorised pass per call (NumPy and CuPy
alike, accumulating in float64), where ``add.at`` goes one element at a time. Values come
channel-major, (C, M): each channel's M values scatter into its own stretch of the output,
and calls take a block of channels at a time, so that the index and output of one call stay
small enough to be cache-resident: faster than one call over all the channels, whose
index and float64 output spill out of the caches (measured in docs/vision_functional.md).
"""

from __future__ import annotations

from convstack.backend import get_array_module

_ELEMENTS_PER_CALL = 1 << 19  # values scattered by one bincount call: about 4 MiB of float64 output and index


def scatter_add_channels(rows, values, num_rows: int):
    """A (C, num_rows) array: ``out[c, r] = sum(values[c, j] for j where rows[j] == r)``, in ``values``' dtype.

    ``rows``: (M,) ints in [0, num_rows); ``values``: (C, M).
    """
    xp = get_array_module(values)
    channels, count = values.shape
    out = xp.empty((channels, num_rows), dtype=values.dtype)
    block = max(1, _ELEMENTS_PER_CALL // max(count, num_rows, 1))  # channels per call
    for first in range(0, channels, block):
        last = min(channels, first + block)
        # channel c of the block scatters into elements c * num_rows + rows of the flat (block, num_rows) output
        targets = (xp.arange(last - first)[:, None] * num_rows + rows[None, :]).reshape(-1)
        summed = xp.bincount(targets, weights=values[first:last].reshape(-1), minlength=(last - first) * num_rows)
        out[first:last] = summed.reshape(last - first, num_rows)
    return out
