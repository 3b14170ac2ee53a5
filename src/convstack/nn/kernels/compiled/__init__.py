"""The compiled tier: convstack's kernels in Python syntax, compiled by Numba, on every core.

Importing this package imports Numba (an ImportError here means the tier is unavailable and
the NumPy reference runs instead; see ``tiers``). Each module holds one family's kernels,
``@njit(parallel=True, cache=True, nogil=True)`` functions (``runtime.jit``) and the thin
Python functions that check shapes, allocate the results and call them, and registers them
with the tier (``register``): convolution algorithms with the tier's policy, other kernels as
the implementation of the reference kernel they replace.
"""

from __future__ import annotations

import importlib

import numba  # noqa: F401  (the tier exists only where Numba imports)

#: The modules that register kernels, in registration order.
MODULES = ("convolution", "activation", "normalization", "pooling", "loss", "optimizers")


def register(tier) -> None:
    """Register every compiled kernel with ``tier`` (the reference algorithms are registered already)."""
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}").register(tier)
