"""Kernel tiers: which implementation of each kernel runs, the NumPy reference or the compiled one.

A tier is one complete set of kernels for one array library:

    "numpy"   the reference: NumPy array code, written to be read (``nn/kernels/reference``).
    "numba"   the compiled tier: the same kernels in Python syntax compiled by Numba, multi-core
              and fused where it pays (``nn/kernels/compiled``); the default where Numba is
              installed. Anything it does not implement falls back to the reference.

Each tier owns its convolution algorithms and the policy that chooses between them
(``tier.convolution``, see ``registry``), and a table from each reference kernel to its
implementation in that tier (``tier.implementation(reference_function)``): a compiled kernel
is added by registering it as the implementation of the reference kernel it replaces, and
a GPU tier (CuPy) would register its kernels the same way.

The CPU tier in use is chosen by ``set_kernel_tier(name)`` / ``with kernel_tier(name):``, and
otherwise, once, by the environment variable ``CONVSTACK_KERNELS`` (``numba`` or ``numpy``)
read the first time a kernel is dispatched; without it, ``numba`` where Numba imports and
``numpy`` elsewhere.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings

from convstack.nn.kernels.registry import ConvolutionPolicy

ENVIRONMENT_VARIABLE = "CONVSTACK_KERNELS"
TIER_NAMES = ("numba", "numpy")


class KernelTier:
    """One set of kernels: its convolution algorithms and policy, and its implementations of the reference kernels.

    Args:
        name: ``"numpy"``, ``"numba"`` (or a GPU tier's name).
        fallback: the tier whose implementation runs where this one has none (the compiled
            tier falls back to the reference).
    """

    def __init__(self, name: str, fallback: KernelTier | None = None):
        self.name = name
        self.fallback = fallback
        self.convolution = ConvolutionPolicy(name)
        self._implementations: dict = {}

    def register(self, reference, implementation) -> None:
        """Make ``implementation`` this tier's version of the reference kernel ``reference`` (same signature)."""
        self._implementations[reference] = implementation

    def implementation(self, reference):
        """This tier's implementation of the reference kernel ``reference`` (else the fallback's, else itself)."""
        found = self._implementations.get(reference)
        if found is not None:
            return found
        return reference if self.fallback is None else self.fallback.implementation(reference)

    def implements(self, reference) -> bool:
        """Whether this tier has its own implementation of ``reference`` (not the fallback's)."""
        return reference in self._implementations

    def __repr__(self) -> str:
        return f"KernelTier({self.name!r})"


_tiers: dict = {}
_state = {"cpu": None}


def _reference_tier() -> KernelTier:
    tier = _tiers.get("numpy")
    if tier is None:
        tier = _tiers["numpy"] = KernelTier("numpy")
        importlib.import_module("convstack.nn.kernels.reference.algorithms").register(tier)
    return tier


def _compiled_tier() -> KernelTier:
    tier = _tiers.get("numba")
    if tier is None:
        reference = _reference_tier()
        compiled = importlib.import_module("convstack.nn.kernels.compiled")  # ImportError without Numba
        tier = KernelTier("numba", fallback=reference)
        reference_algorithms = importlib.import_module("convstack.nn.kernels.reference.algorithms")
        reference_algorithms.register(tier)
        compiled.register(tier)
        _tiers["numba"] = tier
    return tier


def numba_available() -> bool:
    """Whether the compiled tier can be used here (Numba imports)."""
    try:
        importlib.import_module("numba")
    except ImportError:
        return False
    return True


def get_tier(name: str) -> KernelTier:
    """The tier called ``name``; raises ``ValueError`` for an unknown name, ``RuntimeError`` when Numba is missing."""
    if name == "numpy":
        return _reference_tier()
    if name == "numba":
        try:
            return _compiled_tier()
        except ImportError as error:
            raise RuntimeError(
                f"the numba kernel tier needs Numba, which could not be imported ({error}); "
                "pip install 'numba>=0.64', or use the NumPy tier (CONVSTACK_KERNELS=numpy)"
            ) from error
    raise ValueError(
        f"Invalid value for argument `name`: expected one of {', '.join(TIER_NAMES)}, received {name!r}"
    )


def _initial_tier() -> KernelTier:
    chosen = os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower()
    if chosen:
        if chosen not in TIER_NAMES:
            raise ValueError(
                f"{ENVIRONMENT_VARIABLE}: expected one of {', '.join(TIER_NAMES)}, received {chosen!r}"
            )
        if chosen == "numba" and not numba_available():
            warnings.warn(
                f"{ENVIRONMENT_VARIABLE}=numba but Numba could not be imported: using the NumPy kernels",
                RuntimeWarning, stacklevel=3,
            )
            return _reference_tier()
        return get_tier(chosen)
    return _compiled_tier() if numba_available() else _reference_tier()


def cpu_tier() -> KernelTier:
    """The tier that runs kernels on NumPy arrays now."""
    tier = _state["cpu"]
    if tier is None:
        tier = _state["cpu"] = _initial_tier()
    return tier


def get_kernel_tier() -> str:
    """The name of the CPU kernel tier in use: ``"numba"`` or ``"numpy"``."""
    return cpu_tier().name


def set_kernel_tier(name: str) -> None:
    """Run every following kernel in tier ``name`` (``"numba"``: compiled, ``"numpy"``: the reference)."""
    _state["cpu"] = get_tier(name)


@contextlib.contextmanager
def kernel_tier(name: str):
    """``with kernel_tier("numpy"): ...`` runs the block on the reference kernels.

    Example:
        >>> with convstack.kernel_tier("numpy"):
        ...     reference = model(images)
    """
    previous = cpu_tier()
    _state["cpu"] = get_tier(name)
    try:
        yield
    finally:
        _state["cpu"] = previous


def tier_for(*arrays) -> KernelTier:
    """The tier for kernels on ``arrays``: the CPU tier in use (a GPU tier registers itself for its arrays)."""
    return cpu_tier()
