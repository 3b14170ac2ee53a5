"""The user's handle on convolution algorithms: force one, measure them, bound their workspace.

Every call here acts on the convolution policy of the CPU kernel tier in use
(``convstack.nn.kernels.tiers``; see ``registry`` for the algorithms and the order of the
choice: forced, measured, heuristic). The names are those the tier registers, e.g.
``gemm``, ``flat-planes``, ``correlate``, ``pointwise``, ``winograd2``, ``winograd4``, ``fft``.

Example:
    >>> from convstack.nn.kernels import algorithm
    >>> with algorithm.use("winograd4"):
    ...     y = F.conv2d(x, w, padding=1)   # Winograd F(4x4, 3x3) where the layer is 3x3, stride 1
    >>> with algorithm.benchmark():
    ...     model(images)                   # each layer's passes timed once, the fastest kept
"""

from __future__ import annotations

import contextlib

from convstack.nn.kernels import tiers
from convstack.nn.kernels import workspace as _workspace
from convstack.nn.kernels.geometry import ConvGeometry
from convstack.nn.kernels.registry import PASSES  # noqa: F401  (re-exported)

DEFAULT_WORKSPACE_LIMIT = _workspace.DEFAULT_LIMIT


def policy():
    """The ``ConvolutionPolicy`` of the CPU tier in use."""
    return tiers.cpu_tier().convolution


def names() -> list:
    """The algorithms the tier in use registers, in the heuristic's order."""
    return policy().names()


# ----------------------------------------------------------------------------- settings
def set_workspace_limit(nbytes: int | None) -> None:
    """Bound the buffers one chunk of the batch may take to ``nbytes`` (None: the default 256 MiB)."""
    _workspace.set_limit(nbytes)


def workspace_limit() -> int:
    return _workspace.limit()


@contextlib.contextmanager
def workspace(nbytes: int | None):
    """``with workspace(2**20): ...`` runs the block under another workspace limit."""
    previous = _workspace.limit()
    _workspace.set_limit(nbytes)
    try:
        yield
    finally:
        _workspace.set_limit(previous)


def set_benchmark(enabled: bool) -> None:
    """Time the applicable algorithms on the first call of each (pass, geometry) and keep the fastest."""
    policy().set_benchmark(enabled)


@contextlib.contextmanager
def benchmark(enabled: bool = True):
    chosen = policy()
    previous = chosen.benchmarking()
    chosen.set_benchmark(enabled)
    try:
        yield
    finally:
        chosen.set_benchmark(previous)


@contextlib.contextmanager
def use(name: str | None):
    """Force the algorithm ``name`` wherever it applies, inside the block; None: choose freely."""
    chosen = policy()
    if name is not None and name not in chosen.names():
        raise ValueError(
            f"use: invalid value for argument `name`: expected one of {', '.join(chosen.names())} or None, "
            f"received {name!r}"
        )
    with chosen.use(name):
        yield


def clear_cache() -> None:
    """Forget every measured choice."""
    policy().clear_cache()


def cached_choices() -> dict:
    """A copy of the measured choices: {(pass, geometry): name}."""
    return policy().cached_choices()


# ----------------------------------------------------------------------------- inspection
def applies(name: str, pass_: str, geometry: ConvGeometry) -> bool:
    """Whether algorithm ``name`` can compute ``pass_`` for ``geometry``."""
    return policy().get(name).applies(pass_, geometry)


def candidates(pass_: str, geometry: ConvGeometry) -> tuple:
    """The names of the algorithms that can compute ``pass_`` for ``geometry``, in the heuristic's order."""
    return tuple(algorithm.name for algorithm in policy().candidates(pass_, geometry))


def heuristic(pass_: str, geometry: ConvGeometry) -> str:
    return policy().heuristic(pass_, geometry).name


def choose(pass_: str, geometry: ConvGeometry) -> str:
    """The name of the algorithm that will run ``pass_`` for ``geometry`` (without measuring anything)."""
    return policy().choose(pass_, geometry).name


# ----------------------------------------------------------------------------- the passes, on the tier in use
def forward(x, weight, bias, geometry: ConvGeometry):
    """(N, C, *S) unpadded input, (O, Cg, *K) weight, optional (O,) bias -> (N, O, *O)."""
    return policy().forward(x, weight, bias, geometry)


def backward_data(grad, weight, geometry: ConvGeometry):
    """(N, O, *O) output gradient -> (N, C, *S) input gradient."""
    return policy().backward_data(grad, weight, geometry)


def backward_weight(grad, saved, geometry: ConvGeometry):
    """(N, O, *O) output gradient and the input (or what a training forward saved) -> (O, Cg, *K)."""
    return policy().backward_weight(grad, saved, geometry)
