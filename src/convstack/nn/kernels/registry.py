"""Convolution algorithms as registered objects, and the policy that chooses one per pass and shape.

An algorithm (``ConvAlgorithm``) is an object with a ``name``, the ``passes`` it computes,
``applies(pass_, geometry)`` saying which shapes it serves, a heuristic rule ``preferred(pass_,
geometry, context)`` saying where it should run when nothing else decides, and the passes
themselves on plain arrays:

    forward(x, weight, bias, geometry)          (N, C, *S), (O, Cg, *K), (O,) -> (N, O, *O)
    backward_data(grad, weight, geometry)       (N, O, *O) -> (N, C, *S)
    backward_weight(grad, saved, geometry)      -> (O, Cg, *K); ``saved`` is the input, or what
                                                   this algorithm's ``forward_for_training`` kept

Each kernel tier holds one ``ConvolutionPolicy``: the registry of its algorithms, in order of
preference, and the choice for each (pass, ``ConvGeometry``):

1. the algorithm forced with ``use(name)`` (a context manager), where it applies: forcing
   ``gemm`` runs im2col + GEMM and nothing else;
2. when measuring is on (``benchmark()``), the fastest applicable algorithm, timed once on
   the real arrays of the first call with that geometry and remembered (``clear_cache()``);
3. otherwise the heuristic: the first registered algorithm that applies and whose
   ``preferred`` rule says so. A rule reads only its arguments: the geometry (shapes,
   stride, padding, dilation, groups, dtype) and the ``ChoiceContext`` (threads, tier, workspace
   limit).

Adding an algorithm (a faster kernel, a compiled tier's, a GPU's) means registering it
(``policy.register(algorithm, before=...)``), not editing a chain of conditions.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from typing import NamedTuple

from convstack.backend import get_array_module
from convstack.nn.kernels import workspace
from convstack.nn.kernels.geometry import ConvGeometry

FORWARD, BACKWARD_DATA, BACKWARD_WEIGHT = "forward", "backward_data", "backward_weight"
PASSES = (FORWARD, BACKWARD_DATA, BACKWARD_WEIGHT)


class ChoiceContext(NamedTuple):
    """What a heuristic rule may read besides the geometry: the threads, the tier, the workspace limit."""

    threads: int
    tier: str
    workspace_limit: int


class ConvAlgorithm:
    """One way to compute the passes of a convolution. Subclasses set ``name`` and ``passes`` and override passes.

    ``applies`` defaults to "every geometry, for the passes in ``passes``"; ``preferred`` to
    "never" (the algorithm runs when forced or measured fastest).
    """

    name: str = ""
    passes: tuple = PASSES

    def applies(self, pass_: str, geometry: ConvGeometry) -> bool:
        return pass_ in self.passes

    def preferred(self, pass_: str, geometry: ConvGeometry, context: ChoiceContext) -> bool:
        return False

    def forward(self, x, weight, bias, geometry: ConvGeometry):
        raise TypeError(f"convolution algorithm {self.name!r} has no forward pass")

    def forward_for_training(self, x, weight, bias, geometry: ConvGeometry):
        """``(output, saved)``: the forward, and what ``backward_weight`` will be given (here the input)."""
        return self.forward(x, weight, bias, geometry), x

    def forward_relu(self, x, weight, bias, geometry: ConvGeometry):
        """``max(forward(...), 0)``, for inference: an algorithm that can apply the ReLU as it writes its output
        overrides this (here, one more pass over the output)."""
        out = self.forward(x, weight, bias, geometry)
        get_array_module(out).maximum(out, 0, out=out)
        return out

    def backward_data(self, grad, weight, geometry: ConvGeometry):
        raise TypeError(f"convolution algorithm {self.name!r} has no backward_data pass")

    def backward_weight(self, grad, saved, geometry: ConvGeometry):
        raise TypeError(f"convolution algorithm {self.name!r} has no backward_weight pass")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class Saved(NamedTuple):
    """What a training forward kept for the weight gradient, and the algorithm that kept it."""

    algorithm: ConvAlgorithm
    value: object


def _default_threads() -> int:
    from convstack import threads  # the one place that knows the thread settings

    return threads.get_num_threads()


class ConvolutionPolicy:
    """A tier's convolution algorithms in order of preference, and the choice between them (see the module)."""

    def __init__(self, tier: str, threads=_default_threads):
        self.tier = tier
        self._algorithms: list = []
        self._forced: contextvars.ContextVar = contextvars.ContextVar(f"convstack_conv_{tier}", default=None)
        self._benchmark = False
        self._cache: dict = {}
        self._threads = threads

    # ------------------------------------------------------------------------- the registry
    def register(self, algorithm: ConvAlgorithm, before: str | None = None, replace: bool = False) -> None:
        """Add ``algorithm``; ``before`` a registered name puts it ahead of that one in the heuristic's order.

        A name may be registered once, unless ``replace`` (which keeps the old one's place
        when ``before`` is not given).
        """
        if not isinstance(algorithm, ConvAlgorithm) or not algorithm.name:
            raise TypeError(f"register: expected a ConvAlgorithm with a name, received {algorithm!r}")
        names = self.names()
        if algorithm.name in names:
            if not replace:
                raise ValueError(f"register: a convolution algorithm named {algorithm.name!r} is already registered")
            index = names.index(algorithm.name)
            self._algorithms[index] = algorithm
            if before is None:
                self._cache.clear()
                return
            del self._algorithms[index]
        if before is None:
            self._algorithms.append(algorithm)
        else:
            if before not in self.names():
                raise ValueError(f"register: invalid value for argument `before`: no algorithm named {before!r}")
            self._algorithms.insert(self.names().index(before), algorithm)
        self._cache.clear()

    def unregister(self, name: str) -> ConvAlgorithm:
        algorithm = self.get(name)
        self._algorithms.remove(algorithm)
        self._cache.clear()
        return algorithm

    def names(self) -> list:
        return [algorithm.name for algorithm in self._algorithms]

    def get(self, name: str) -> ConvAlgorithm:
        for algorithm in self._algorithms:
            if algorithm.name == name:
                return algorithm
        raise ValueError(
            f"invalid value for argument `name`: expected one of {', '.join(self.names())} or None, "
            f"received {name!r}"
        )

    def candidates(self, pass_: str, geometry: ConvGeometry) -> tuple:
        """The algorithms that can compute ``pass_`` for ``geometry``, in order of preference."""
        return tuple(algorithm for algorithm in self._algorithms if algorithm.applies(pass_, geometry))

    # ------------------------------------------------------------------------- settings
    @contextlib.contextmanager
    def use(self, name: str | None):
        """Force the algorithm ``name`` wherever it applies, inside the block; None: choose freely."""
        if name is not None:
            self.get(name)
        token = self._forced.set(name)
        try:
            yield
        finally:
            self._forced.reset(token)

    def forced(self) -> str | None:
        return self._forced.get()

    def set_benchmark(self, enabled: bool) -> None:
        self._benchmark = bool(enabled)

    def benchmarking(self) -> bool:
        return self._benchmark

    def clear_cache(self) -> None:
        self._cache.clear()

    def cached_choices(self) -> dict:
        """A copy of the measured choices: {(pass, geometry): name}."""
        return {key: algorithm.name for key, algorithm in self._cache.items()}

    def context(self) -> ChoiceContext:
        return ChoiceContext(threads=self._threads(), tier=self.tier, workspace_limit=workspace.limit())

    # ------------------------------------------------------------------------- choice
    def heuristic(self, pass_: str, geometry: ConvGeometry, context: ChoiceContext | None = None) -> ConvAlgorithm:
        """The first applicable algorithm whose rule prefers it; else the first applicable one."""
        context = self.context() if context is None else context
        applicable = self.candidates(pass_, geometry)
        if not applicable:
            raise ValueError(f"no registered convolution algorithm computes {pass_} for {geometry}")
        for algorithm in applicable:
            if algorithm.preferred(pass_, geometry, context):
                return algorithm
        return applicable[0]

    def choose(self, pass_: str, geometry: ConvGeometry) -> ConvAlgorithm:
        """The algorithm that will run ``pass_`` for ``geometry`` (without measuring anything)."""
        forced = self._forced.get()
        if forced is not None:
            algorithm = self.get(forced)
            if algorithm.applies(pass_, geometry):
                return algorithm
        cached = self._cache.get((pass_, geometry))
        return cached if cached is not None else self.heuristic(pass_, geometry)

    def _measured(self, pass_: str, geometry: ConvGeometry, run):
        """Time ``run(algorithm)`` for every candidate, remember the fastest, return its result."""
        best = None
        for algorithm in self.candidates(pass_, geometry):
            start = time.perf_counter()
            result = run(algorithm)
            elapsed = time.perf_counter() - start
            if best is None or elapsed < best[0]:
                best = (elapsed, algorithm, result)
        self._cache[(pass_, geometry)] = best[1]
        return best[2]

    def _dispatch(self, pass_: str, geometry: ConvGeometry, run):
        if self._benchmark and self._forced.get() is None and (pass_, geometry) not in self._cache:
            return self._measured(pass_, geometry, run)
        return run(self.choose(pass_, geometry))

    # ------------------------------------------------------------------------- the three passes
    def forward(self, x, weight, bias, geometry: ConvGeometry):
        """(N, C, *S) unpadded input, (O, Cg, *K) weight, optional (O,) bias -> (N, O, *O)."""
        return self._dispatch(FORWARD, geometry, lambda algorithm: algorithm.forward(x, weight, bias, geometry))

    def forward_relu(self, x, weight, bias, geometry: ConvGeometry):
        """``max(forward(...), 0)``: the convolution and a ReLU after it, in one pass where the algorithm can."""
        return self._dispatch(FORWARD, geometry, lambda algorithm: algorithm.forward_relu(x, weight, bias, geometry))

    def forward_for_training(self, x, weight, bias, geometry: ConvGeometry):
        """``(output, saved)``: the forward, and what ``backward_weight`` needs (``Saved``).

        When one algorithm runs both the forward and the weight gradient it may keep what
        both need (im2col's columns); otherwise the input is kept.
        """
        measuring = self._benchmark and self._forced.get() is None
        if measuring and ((FORWARD, geometry) not in self._cache or (BACKWARD_WEIGHT, geometry) not in self._cache):
            return self.forward(x, weight, bias, geometry), Saved(None, x)
        forward = self.choose(FORWARD, geometry)
        if forward is self.choose(BACKWARD_WEIGHT, geometry):
            out, kept = forward.forward_for_training(x, weight, bias, geometry)
            return out, Saved(forward, kept)
        return forward.forward(x, weight, bias, geometry), Saved(None, x)

    def backward_data(self, grad, weight, geometry: ConvGeometry):
        """(N, O, *O) output gradient -> (N, C, *S) input gradient."""
        return self._dispatch(
            BACKWARD_DATA, geometry, lambda algorithm: algorithm.backward_data(grad, weight, geometry))

    def backward_weight(self, grad, saved, geometry: ConvGeometry):
        """(N, O, *O) output gradient and the input (or a ``Saved``) -> (O, Cg, *K) weight gradient.

        What an algorithm kept in its training forward goes back to that algorithm, the one
        chosen for the weight gradient when the forward ran.
        """
        if isinstance(saved, Saved):
            if saved.algorithm is not None:
                return saved.algorithm.backward_weight(grad, saved.value, geometry)
            saved = saved.value
        return self._dispatch(
            BACKWARD_WEIGHT, geometry, lambda algorithm: algorithm.backward_weight(grad, saved, geometry)
        )

