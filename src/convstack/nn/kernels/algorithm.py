"""Which convolution algorithm runs each pass of each layer, and the settings that steer the choice.

Algorithms (``ALGORITHMS``), each for the passes and shapes its ``applies`` allows:

    "gemm"        im2col + GEMM in chunks of the batch (``chunked``); any shape. Its input
                  gradient is the correlation of the padded gradient with the flipped kernel
                  (stride 1) or dcols + col2im (strided).
    "col2im"      input gradient only: dcols = W^T @ grad, then col2im (any shape).
    "pointwise"   1x1(x1) kernels: a GEMM over channels, subsampling first for stride > 1.
    "winograd2"   Winograd F(2x2, 3x3); 2-D 3x3 stride 1 dilation 1 (``winograd``).
    "winograd4"   Winograd F(4x4, 3x3); same shapes.
    "fft"         FFT convolution; stride 1, dilation 1, any number of dimensions (``fft_conv``).

The choice per (pass, ``ConvGeometry``) is, in order:

1. the algorithm forced with ``use(name)`` (a context manager), when it applies there;
2. when measuring is on (``set_benchmark(True)`` or ``with benchmark():``), the fastest
   applicable algorithm, timed once on the real arrays of the first call with that
   geometry and remembered in a process-wide dict (``clear_cache()`` forgets);
3. otherwise ``heuristic``: rules derived from the measurements in
   ``docs/convolution_algorithms.md``.

``set_workspace_limit(nbytes)`` bounds the buffers the chunked algorithms allocate for a
chunk of the batch (default 256 MiB). None of this reads environment variables.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import time

from convstack import blas
from convstack.nn.kernels import chunked, fft_conv, pointwise, winograd
from convstack.nn.kernels.geometry import ConvGeometry

ALGORITHMS = ("gemm", "col2im", "pointwise", "winograd2", "winograd4", "fft")
PASSES = ("forward", "backward_data", "backward_weight")
DEFAULT_WORKSPACE_LIMIT = 256 * 2**20

_forced: contextvars.ContextVar = contextvars.ContextVar("convstack_conv_algorithm", default=None)
_settings = {"workspace_limit": DEFAULT_WORKSPACE_LIMIT, "benchmark": False}
_cache: dict = {}


# ----------------------------------------------------------------------------- settings
def set_workspace_limit(nbytes: int | None) -> None:
    """Bound the im2col / Winograd buffers of one chunk of the batch to ``nbytes`` (None: the default 256 MiB).

    A larger batch is processed in chunks; a single sample whose buffer is larger still
    runs alone, after ``convstack.backend.check_allocation`` has made sure it fits in memory.
    """
    if nbytes is not None and (isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 1):
        raise ValueError(
            f"set_workspace_limit: invalid value for argument `nbytes`: expected a positive integer or None, "
            f"received {nbytes!r}"
        )
    _settings["workspace_limit"] = DEFAULT_WORKSPACE_LIMIT if nbytes is None else nbytes


def workspace_limit() -> int:
    return _settings["workspace_limit"]


@contextlib.contextmanager
def workspace(nbytes: int | None):
    """``with workspace(2**20): ...`` runs the block under another workspace limit."""
    previous = workspace_limit()
    set_workspace_limit(nbytes)
    try:
        yield
    finally:
        _settings["workspace_limit"] = previous


def set_benchmark(enabled: bool) -> None:
    """Time the applicable algorithms on the first call of each (pass, geometry) and keep the fastest."""
    _settings["benchmark"] = bool(enabled)


@contextlib.contextmanager
def benchmark(enabled: bool = True):
    previous = _settings["benchmark"]
    _settings["benchmark"] = bool(enabled)
    try:
        yield
    finally:
        _settings["benchmark"] = previous


@contextlib.contextmanager
def use(name: str | None):
    """Force ``name`` (one of ``ALGORITHMS``) wherever it applies, inside the block; None: choose freely.

    Example:
        >>> with convstack.nn.kernels.algorithm.use("winograd4"):
        ...     y = F.conv2d(x, w, padding=1)   # Winograd F(4x4, 3x3) if the layer is 3x3, stride 1
    """
    if name is not None and name not in ALGORITHMS:
        raise ValueError(
            f"use: invalid value for argument `name`: expected one of {', '.join(ALGORITHMS)} or None, "
            f"received {name!r}"
        )
    token = _forced.set(name)
    try:
        yield
    finally:
        _forced.reset(token)


def clear_cache() -> None:
    """Forget every measured choice."""
    _cache.clear()


def cached_choices() -> dict:
    """A copy of the measured choices: {(pass, geometry): name}."""
    return dict(_cache)


# ----------------------------------------------------------------------------- applicability and choice
def applies(name: str, pass_: str, geometry: ConvGeometry) -> bool:
    """Whether algorithm ``name`` can compute ``pass_`` for ``geometry``."""
    if name == "gemm":
        return True
    if name == "col2im":
        return pass_ == "backward_data"
    if name == "pointwise":
        return pointwise.applies(geometry)
    if name in ("winograd2", "winograd4"):
        return winograd.applies(geometry) and (pass_ != "backward_data" or chunked.correlate_pads(geometry) is not None)
    if name == "fft":
        return fft_conv.applies(geometry) and (pass_ != "backward_data" or chunked.correlate_pads(geometry) is not None)
    return False


def candidates(pass_: str, geometry: ConvGeometry) -> tuple:
    return tuple(name for name in ALGORITHMS if applies(name, pass_, geometry))


def heuristic(pass_: str, geometry: ConvGeometry) -> str:
    """The default choice, from the measurements in ``docs/convolution_algorithms.md``.

    - 1x1 kernels: ``pointwise``.
    - 3x3 stride-1 2-D layers with at least 8 channels per group on both sides: Winograd
      in all three passes, F(4, 3) unless the layer has few pixels per channel
      (``_winograd_size``). Depthwise and thin grouped layers stay on im2col: their
      per-group GEMMs are a few numbers wide. With two or more BLAS threads
      (``convstack.blas.threads()``) im2col's GEMM runs nearly twice as fast while
      Winograd's transforms do not, so there Winograd keeps only 2-D layers with more than
      32 channels per group on both sides, and 3-D layers (``_winograd_pays``).
    - input gradient otherwise: the correlation of the gradient with the flipped kernel
      (stride 1) when the layer has at most twice as many output as input channels
      per group, else dcols + col2im (LeNet's 1 -> 6 and 6 -> 16 layers: 2-3x faster by
      col2im, whose columns have the fewer input channels).
    - kernels of 100 taps or more (11x11, 15x15), stride 1: ``fft`` (2-3.5x faster than
      im2col there; it lost on every benchmark layer, whose kernels have 9 to 49 taps).
    - everything else: ``gemm``.
    """
    if pointwise.applies(geometry):
        return "pointwise"
    out_per_group = geometry.out_channels // geometry.groups
    in_per_group = geometry.in_channels // geometry.groups
    wide = min(out_per_group, in_per_group) >= 8
    if wide and applies("winograd4", pass_, geometry) and _winograd_pays(geometry, min(out_per_group, in_per_group)):
        return _winograd_size(geometry)
    if math.prod(geometry.kernel) >= 100 and applies("fft", pass_, geometry):
        return "fft"
    if pass_ == "backward_data" and (chunked.correlate_pads(geometry) is None or out_per_group > 2 * in_per_group):
        return "col2im"
    return "gemm"


def _winograd_pays(geometry: ConvGeometry, channels: int) -> bool:
    """Whether Winograd beats im2col for a 3x..x3 layer with ``channels`` (the fewer, per group) now.

    It depends on the BLAS threads NumPy runs its GEMMs on.

    One BLAS thread: always (1.1-1.6x, ``docs/convolution_algorithms.md``). Two threads,
    float32 ms, forward / backward-data / backward-weight (the transforms stay on one core):

        layer                     im2col              Winograd F(4, 3)
        ResNet 16@32x32 b128      7.4 / 7.4 / 7.2     9.4 / 9.5 / 9.6
        ResNet 32@16x16 b128      5.9 / 5.9 / 5.9     6.5 / 6.9 / 6.8
        48@16x16 b128             16.9 / 17.0 / 17.2  15.2 / 15.5 / 17.2
        ResNet 64@8x8 b128        5.3 / 5.3 / 5.5     4.9 / 4.9 / 5.0
        1-D 64@1024 k3 b8         1.4 / 1.4 / 1.4     2.1 / 2.1 / 2.0
        1-D 128@256 k3 b32        5.0 / 5.3 / 5.3     5.3 / 5.4 / 5.1
        3-D 16@16^3 b8            6.8 / 6.8 / 6.7     5.5 / 5.5 / 7.4
    """
    threads = blas.threads() or 1
    if threads < 2:
        return True
    dims = len(geometry.kernel)
    return dims == 3 or (dims == 2 and channels > 32)


def _winograd_size(geometry: ConvGeometry) -> str:
    """F(4, 3) unless the layer has fewer than 8 output pixels (batch included) per input channel.

    F(4, 3)'s weight transform is 36 numbers per channel pair against F(2, 3)'s 16, and
    its tiles pad 7x7 and 14x14 maps to 8x8 and 16x16; with many channels and few pixels
    (VGG's 256@14x14 and 512@7x7, batch 8) F(2, 3) was as fast or faster (measured
    10.1 against 10.7 ms, 15.6 against 15.8 ms), while F(4, 3) won by 1.2-1.6x on every
    ResNet-CIFAR and on VGG's 64@56 and 128@28 layers.
    """
    pixels = geometry.batch * math.prod(geometry.out_sizes)
    return "winograd2" if pixels < 8 * geometry.weight_shape[1] else "winograd4"


def choose(pass_: str, geometry: ConvGeometry) -> str:
    """The algorithm that will run ``pass_`` for ``geometry`` (without measuring anything)."""
    forced = _forced.get()
    if forced is not None and applies(forced, pass_, geometry):
        return forced
    cached = _cache.get((pass_, geometry))
    return cached if cached is not None else heuristic(pass_, geometry)


def _op(geometry: ConvGeometry) -> str:
    return f"conv{len(geometry.kernel)}d"


def _run(pass_: str, name: str, geometry: ConvGeometry, arrays):
    limit = workspace_limit()
    op = _op(geometry)
    if pass_ == "forward":
        x, weight, bias = arrays
        if name == "pointwise":
            return pointwise.forward(x, weight, bias, geometry)
        if name in ("winograd2", "winograd4"):
            return winograd.forward(x, weight, bias, geometry, int(name[-1]), limit)
        if name == "fft":
            return fft_conv.forward(x, weight, bias, geometry)
        return chunked.forward(x, weight, bias, geometry, limit, op)
    if pass_ == "backward_data":
        grad, weight = arrays
        if name == "pointwise":
            return pointwise.backward_data(grad, weight, geometry)
        if name == "col2im" or chunked.correlate_pads(geometry) is None:
            return chunked.backward_data(grad, weight, geometry, limit, op)
        pads = chunked.correlate_pads(geometry)
        flipped = chunked.flipped_transposed(weight, geometry.groups)
        adjoint = chunked.gradient_geometry(geometry, pads)
        return _run("forward", name, adjoint, (grad, flipped, None))
    grad, x = arrays
    if name == "pointwise":
        return pointwise.backward_weight(grad, x, geometry)
    if name in ("winograd2", "winograd4"):
        return winograd.backward_weight(grad, x, geometry, int(name[-1]), limit)
    if name == "fft":
        return fft_conv.backward_weight(grad, x, geometry)
    return chunked.backward_weight(grad, x, geometry, limit, op)


def _dispatch(pass_: str, geometry: ConvGeometry, arrays):
    forced = _forced.get()
    if forced is not None and applies(forced, pass_, geometry):
        return _run(pass_, forced, geometry, arrays)
    key = (pass_, geometry)
    if _settings["benchmark"] and key not in _cache:
        best = None
        for name in candidates(pass_, geometry):
            start = time.perf_counter()
            result = _run(pass_, name, geometry, arrays)
            elapsed = time.perf_counter() - start
            if best is None or elapsed < best[0]:
                best = (elapsed, name, result)
        _cache[key] = best[1]
        return best[2]
    return _run(pass_, choose(pass_, geometry), geometry, arrays)


# ----------------------------------------------------------------------------- the three passes
def forward(x, weight, bias, geometry: ConvGeometry):
    """(N, C, *S) unpadded input, (O, Cg, *K) weight, optional (O,) bias -> (N, O, *O)."""
    return _dispatch("forward", geometry, (x, weight, bias))


def forward_for_training(x, weight, bias, geometry: ConvGeometry):
    """``forward``, and what ``backward_weight`` will need: the input, or im2col's columns.

    When im2col + GEMM runs both the forward and the weight gradient and the batch's
    columns are small (``chunked.KEEP_BYTES``), the forward's columns are kept so the
    weight gradient needs only its GEMM; otherwise the input is kept and each algorithm
    rebuilds what it needs chunk by chunk.
    """
    if (not _settings["benchmark"] or ("forward", geometry) in _cache) and choose(
        "forward", geometry
    ) == "gemm" == choose("backward_weight", geometry):
        out, columns = chunked.forward(x, weight, bias, geometry, workspace_limit(), _op(geometry), keep=True)
        return out, (x if columns is None else columns)
    return forward(x, weight, bias, geometry), x


def backward_data(grad, weight, geometry: ConvGeometry):
    """(N, O, *O) output gradient -> (N, C, *S) input gradient."""
    return _dispatch("backward_data", geometry, (grad, weight))


def backward_weight(grad, x, geometry: ConvGeometry):
    """(N, O, *O) output gradient and the unpadded input (or the kept ``Columns``) -> (O, Cg, *K) weight gradient."""
    if isinstance(x, chunked.Columns):
        return chunked.backward_weight(grad, x, geometry, workspace_limit(), _op(geometry))
    return _dispatch("backward_weight", geometry, (grad, x))
