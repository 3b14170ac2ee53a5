"""The one place random numbers come from: ``manual_seed`` seeds every default stream.

Initialisation, shuffling, dropout and augmentation draw from ``default_generator()``
unless a ``numpy.random.Generator`` is passed to them explicitly.
"""

from __future__ import annotations

import numpy

_generator = numpy.random.default_rng()


def manual_seed(seed: int) -> numpy.random.Generator:
    """Seed convstack's default random stream; returns the new generator."""
    global _generator
    if not isinstance(seed, (int, numpy.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"Invalid value for argument `seed`: expected a non-negative integer, received {seed!r}")
    _generator = numpy.random.default_rng(int(seed))
    return _generator


def default_generator() -> numpy.random.Generator:
    """The generator ops draw from when none is passed."""
    return _generator


def get_rng_state() -> dict:
    """The default generator's state, a JSON-serialisable dict (for checkpoints)."""
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restore a state ``get_rng_state`` returned; anything else raises ``ValueError`` and changes nothing."""
    from convstack.structure import check_like

    check_like(state, get_rng_state(), "random generator state")
    try:
        _generator.bit_generator.state = state
    except (OverflowError, TypeError, KeyError, ValueError) as error:
        raise ValueError(f"random generator state: {error}") from None
