"""relu6, hardsigmoid, hardswish, prelu, softplus, silu, mish: parity with PyTorch (values and gradients,
at the kinks too), finite differences, overflow, errors."""

import doctest
import importlib
import re

import numpy as np
import pytest
from tests.helpers import check_against_torch, check_gradients

import convstack as cs
import convstack.nn.functional as F

TOLERANCES = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}

POINTWISE = {
    "relu6": ("relu6", {}),
    "hardsigmoid": ("hardsigmoid", {}),
    "hardswish": ("hardswish", {}),
    "silu": ("silu", {}),
    "mish": ("mish", {}),
    "softplus": ("softplus", {}),
    "softplus-beta2-threshold5": ("softplus", dict(beta=2.0, threshold=5.0)),
    "softplus-beta-0.5": ("softplus", dict(beta=-0.5)),
}
KINKS = [-3.0, 0.0, 3.0, 6.0, 2.5, 10.0]  # every piecewise op's breakpoints, and softplus's thresholds (x = 20 / beta)


def _torch_functional():
    return pytest.importorskip("torch").nn.functional


def _values(shape, dtype, seed=0):
    """Uniform values over [-8, 8] (all pieces), at least 1e-3 from every breakpoint, plus the breakpoints."""
    x = np.random.default_rng(seed).uniform(-8, 8, shape)
    for kink in KINKS:
        x[np.abs(x - kink) < 1e-3] += 0.01
    x.reshape(-1)[: len(KINKS)] = KINKS
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", POINTWISE)
def test_matches_torch_with_its_gradients_at_the_kinks(name, dtype):
    function, options = POINTWISE[name]
    TF = _torch_functional()
    tolerances = TOLERANCES[dtype]
    if name == "hardsigmoid" and dtype == np.float64:
        tolerances = dict(rtol=1e-7, atol=1e-13)  # PyTorch's backward slope is 1/6 rounded to float32
    check_against_torch(
        lambda x: getattr(F, function)(x, **options),
        lambda x: getattr(TF, function)(x, **options),
        [_values((4, 5, 6), dtype)],
        **tolerances,
    )


@pytest.mark.parametrize("name", POINTWISE)
def test_finite_differences(name):
    function, options = POINTWISE[name]
    x = np.random.default_rng(1).uniform(-8, 8, (3, 7))
    x[np.min(np.abs(x[..., None] - np.array(KINKS)), axis=-1) < 1e-2] = 1.234  # away from kinks
    check_gradients(lambda t: getattr(F, function)(t, **options), [x])


@pytest.mark.parametrize("name", ["silu", "mish", "softplus"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_smooth_activations_do_not_overflow(name, dtype):
    TF = _torch_functional()
    x = np.array([-1e4, -800.0, -40.0, 40.0, 800.0, 1e4], dtype=dtype)
    with np.errstate(over="raise", invalid="raise"):
        check_against_torch(getattr(F, name), getattr(TF, name), [x], **TOLERANCES[dtype])


PRELU_CASES = {"shared-4d": ((2, 3, 4, 4), 1), "per-channel-4d": ((2, 3, 4, 4), 3), "per-channel-2d": ((5, 4), 4),
               "per-channel-3d": ((2, 3, 5), 3), "1d-shared": ((6,), 1), "0d": ((), 1)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", PRELU_CASES)
def test_prelu_matches_torch(case, dtype):
    TF = _torch_functional()
    shape, parameters = PRELU_CASES[case]
    x = _values(shape, dtype) if shape else np.array(-1.5, dtype)
    weight = np.random.default_rng(2).uniform(-0.5, 0.5, parameters).astype(dtype)
    check_against_torch(F.prelu, TF.prelu, [x, weight], **TOLERANCES[dtype])


def test_prelu_finite_differences():
    x = np.random.default_rng(3).standard_normal((2, 3, 4))
    check_gradients(F.prelu, [x, np.array([0.1, -0.2, 0.3])])


ERRORS = {
    "prelu-weight-count": (
        lambda: F.prelu(cs.zeros(2, 3, 4), cs.ones(2)),
        "prelu: invalid value for argument `weight`: expected a 1-D float32 tensor of 1 or 3 values (one per "
        "channel, dim 1), received float32 of shape (2,) (input shape (2, 3, 4))",
    ),
    "softplus-beta": (
        lambda: F.softplus(cs.zeros(2), beta=0),
        "softplus: invalid value for argument `beta`: expected a non-zero number, received 0",
    ),
    "softplus-threshold": (
        lambda: F.softplus(cs.zeros(2), threshold="20"),
        "softplus: invalid value for argument `threshold`: expected a number, received '20'",
    ),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors(case):
    call, message = ERRORS[case]
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


@pytest.mark.parametrize("name", ["relu6", "hardsigmoid", "hardswish", "silu", "mish", "softplus"])
def test_integer_input_is_refused(name):
    with pytest.raises(TypeError, match=f"{name}: expected a floating point input, received dtype int64"):
        getattr(F, name)(cs.tensor([1, 2]))


@pytest.mark.parametrize("module", ["piecewise_activation", "smooth_activation"])
def test_docstring_examples_run(module):
    module = importlib.import_module(f"convstack.nn.functional.{module}")
    result = doctest.testmod(module, extraglobs={"cs": cs, "F": F}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
