"""Weight initialisation, in place, with ``torch.nn.init``'s names and formulas.

Every function fills ``tensor.data`` under ``no_grad`` and returns ``tensor``. Random
values come from ``generator`` (a ``numpy.random.Generator``) or, when none is given,
from ``convstack.random.default_generator()``, so ``convstack.manual_seed`` makes
initialisation reproducible.

Fans: for a weight of shape ``(out, in, *kernel)``, ``fan_in = in * prod(kernel)`` and
``fan_out = out * prod(kernel)``.
"""

from __future__ import annotations

import math
import numbers

import numpy

from convstack import backend
from convstack.autograd import no_grad
from convstack.random import default_generator

_LINEAR_GAINS = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The gain that keeps activations' variance steady through ``nonlinearity``.

    ========================  ===============================
    linear, conv*, sigmoid    1
    tanh                      5/3
    relu                      sqrt(2)
    leaky_relu                sqrt(2 / (1 + negative_slope^2))
    selu                      3/4
    ========================  ===============================
    """
    if nonlinearity in _LINEAR_GAINS or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def calculate_fan_in_and_fan_out(tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight shaped ``(out, in, *kernel)``."""
    if tensor.ndim < 2:
        raise ValueError(
            f"Fan in and fan out can not be computed for tensor with fewer than 2 dimensions, "
            f"received shape {tensor.shape}"
        )
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


_calculate_fan_in_and_fan_out = calculate_fan_in_and_fan_out  # PyTorch's private name, used by ported code


def _fan(tensor, mode: str, op: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{op}: invalid value for argument `mode`: expected 'fan_in' or 'fan_out', received {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor, values):
    """Write ``values`` (host array or scalar) into ``tensor.data`` in place, on its device and dtype."""
    xp = backend.get_array_module(tensor.data)
    with no_grad():
        tensor.data[...] = xp.asarray(values).astype(tensor.dtype, copy=False)
    if hasattr(tensor, "_bump_version"):
        tensor._bump_version("an nn.init function")
    return tensor


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill with U(a, b)."""
    if not a <= b:
        raise ValueError(f"uniform_: expected a <= b, received a={a}, b={b}")
    rng = generator or default_generator()
    return _fill(tensor, rng.uniform(a, b, size=tensor.shape))


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    """Fill with N(mean, std^2)."""
    if std < 0:
        raise ValueError(f"normal_: invalid value for argument `std`: expected a non-negative number, received {std}")
    rng = generator or default_generator()
    return _fill(tensor, rng.normal(mean, std, size=tensor.shape))


def trunc_normal_(tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0, generator=None):
    """Fill with N(mean, std^2) conditioned on [a, b] (bounds in absolute units, as PyTorch).

    Rejection sampling: out-of-range draws are redrawn, a whole array at a time.
    When [a, b] holds little of the normal's mass the proposal switches to U(a, b),
    accepted with probability density / peak density on [a, b].
    """
    if not a < b:
        raise ValueError(f"trunc_normal_: expected a < b, received a={a}, b={b}")
    if std <= 0:
        raise ValueError(f"trunc_normal_: invalid value for argument `std`: expected a positive number, received {std}")
    rng = generator or default_generator()
    cdf = lambda x: 0.5 * (1 + math.erf((x - mean) / (std * math.sqrt(2))))  # noqa: E731
    mass = cdf(b) - cdf(a)
    out = numpy.empty(tensor.shape)
    pending = numpy.ones(tensor.shape, dtype=bool)
    peak = min(max(mean, a), b)  # where the density is highest on [a, b]
    use_normal = mass > 0.25 or not (math.isfinite(a) and math.isfinite(b))
    while pending.any():
        count = int(pending.sum())
        if use_normal:
            draws = rng.normal(mean, std, size=count)
            accepted = (draws >= a) & (draws <= b)
        else:
            draws = rng.uniform(a, b, size=count)
            ratio = numpy.exp(((peak - mean) ** 2 - (draws - mean) ** 2) / (2 * std**2))
            accepted = rng.random(count) < ratio
        slots = numpy.flatnonzero(pending)[accepted]
        out.reshape(-1)[slots] = draws[accepted]
        pending.reshape(-1)[slots] = False
    return _fill(tensor, out)


def orthogonal_(tensor, gain: float = 1.0, generator=None):
    """Fill with a (semi-)orthogonal matrix times ``gain`` (Saxe et al. 2014), as ``torch.nn.init.orthogonal_``.

    The tensor is viewed as a (rows, cols) matrix, ``rows = shape[0]``: its rows are orthonormal
    when ``rows <= cols``, its columns otherwise. Drawn as the Q of the QR decomposition of a
    standard normal matrix, with Q's columns signed by R's diagonal so that the law is uniform
    (Haar) over orthogonal matrices (Mezzadri 2007).
    """
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: only tensors with 2 or more dimensions are supported, received shape "
                         f"{tensor.shape}")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    rng = generator or default_generator()
    flattened = rng.normal(0.0, 1.0, size=(rows, cols))
    if rows < cols:
        flattened = flattened.T  # (cols, rows): QR of the tall matrix gives orthonormal columns
    q, r = numpy.linalg.qr(flattened)  # q: (max, min)
    q *= numpy.sign(numpy.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor.shape))


def constant_(tensor, val: float):
    return _fill(tensor, val)


def zeros_(tensor):
    return _fill(tensor, 0)


def ones_(tensor):
    return _fill(tensor, 1)


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    """U(-bound, bound) with ``bound = gain * sqrt(6 / (fan_in + fan_out))`` (Glorot & Bengio 2010)."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    """N(0, std^2) with ``std = gain * sqrt(2 / (fan_in + fan_out))`` (Glorot & Bengio 2010)."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def kaiming_uniform_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator=None):
    """U(-bound, bound) with ``bound = gain * sqrt(3 / fan)`` (He et al. 2015).

    ``a`` is the negative slope of the leaky ReLU that follows (``gain`` from
    ``calculate_gain(nonlinearity, a)``); ``mode`` picks ``fan_in`` (keeps the forward
    variance) or ``fan_out`` (keeps the backward variance).
    """
    fan = _fan(tensor, mode, "kaiming_uniform_")
    if fan == 0:
        return tensor  # an empty weight: nothing to fill
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator=None):
    """N(0, std^2) with ``std = gain / sqrt(fan)`` (He et al. 2015)."""
    fan = _fan(tensor, mode, "kaiming_normal_")
    if fan == 0:
        return tensor
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan), generator)


def default_reset_(weight, bias, generator=None) -> None:
    """PyTorch's default for Linear and Conv layers.

    ``kaiming_uniform_(weight, a=sqrt(5))``, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    and the bias from the same bound.
    """
    kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    if bias is not None:
        fan_in, _ = calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound, generator)
