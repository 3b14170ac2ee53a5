"""Activations and (log-)softmax: parity with PyTorch, finite differences, erf accuracy, errors."""

import doctest
import importlib
import math
import re

import numpy as np
import pytest
from tests.helpers import check_against_torch, check_gradients

import convstack as cs
import convstack.nn.functional as F
from convstack.nn.functional.activation import erf

TOLERANCES = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}

# case -> (function name in both libraries, keyword arguments); each applied element-wise
POINTWISE = {
    "relu": ("relu", {}),
    "leaky_relu": ("leaky_relu", {}),
    "leaky_relu-0.2": ("leaky_relu", dict(negative_slope=0.2)),
    "elu": ("elu", {}),
    "elu-alpha0.5": ("elu", dict(alpha=0.5)),
    "gelu": ("gelu", {}),
    "gelu-tanh": ("gelu", dict(approximate="tanh")),
    "sigmoid": ("sigmoid", {}),
    "tanh": ("tanh", {}),
}


def _torch_functional():
    return pytest.importorskip("torch").nn.functional


def _away_from_kinks(shape, dtype, rng):
    """Random values at least 1e-3 from zero, where relu-like ops have no derivative."""
    x = rng.uniform(-4, 4, shape)
    x[np.abs(x) < 1e-3] = 0.5
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", POINTWISE)
def test_pointwise_matches_torch(name, dtype, rng):
    function, options = POINTWISE[name]
    TF = _torch_functional()
    check_against_torch(
        lambda x: getattr(F, function)(x, **options),
        lambda x: getattr(TF, function)(x, **options),
        [_away_from_kinks((3, 4, 5), dtype, rng)],
        **TOLERANCES[dtype],
    )


@pytest.mark.parametrize("name", POINTWISE)
def test_pointwise_finite_differences(name, rng):
    function, options = POINTWISE[name]
    check_gradients(lambda x: getattr(F, function)(x, **options), [_away_from_kinks((2, 5), np.float64, rng)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dim", [0, 1, -1, 2])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family_matches_torch(name, dim, dtype, rng):
    x = (rng.standard_normal((3, 4, 5)) * 3).astype(dtype)
    TF = _torch_functional()
    check_against_torch(
        lambda t: getattr(F, name)(t, dim), lambda t: getattr(TF, name)(t, dim), [x], **TOLERANCES[dtype]
    )


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family_finite_differences(name, rng):
    check_gradients(lambda t: getattr(F, name)(t, dim=1), [rng.standard_normal((2, 4))])


def test_softmax_family_is_stable_for_huge_inputs():
    x = cs.tensor([[1000.0, 0.0, -1000.0], [1e30, 1e30, -1e30]])
    log2 = math.log(2)
    np.testing.assert_allclose(F.softmax(x, dim=1).numpy(), [[1, 0, 0], [0.5, 0.5, 0]], rtol=1e-6, atol=0)
    expected = [[0, -1000, -2000], [-log2, -log2, -2e30]]
    np.testing.assert_allclose(F.log_softmax(x, dim=1).numpy(), expected, rtol=1e-6, atol=1e-6)


def test_softmax_zero_dim_input_and_dtype():
    assert F.softmax(cs.tensor(3.0), dim=0).item() == 1.0
    out = F.log_softmax(cs.tensor([[1.0, 2.0]]), dim=-1, dtype=np.float64)
    assert out.dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_does_not_overflow(dtype):
    x = np.array([-800.0, -30.0, 0.0, 30.0, 800.0], dtype=dtype)
    with np.errstate(over="raise"):
        out = F.sigmoid(cs.tensor(x)).numpy()
    tiny = math.exp(-30)
    np.testing.assert_allclose(out, [0.0, tiny / (1 + tiny), 0.5, 1 / (1 + tiny), 1.0], rtol=1e-6, atol=0)


def test_erf_matches_math_erf_to_float64_precision():
    x = np.concatenate([np.linspace(-7, 7, 20001), [0.0, 0.46875, 4.0, -4.0, 1e-300, 40.0, -np.inf, np.inf]])
    expected = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(erf(x), expected, rtol=1e-15, atol=1e-16)


def test_erf_in_float32_is_within_a_few_ulps():
    x = np.concatenate([np.linspace(-6, 6, 40001), [0.0, 1e-30, -1e-8, -np.inf, np.inf]]).astype(np.float32)
    expected = np.array([math.erf(v) for v in x.astype(np.float64)])
    out = erf(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=5e-7, atol=5e-7)


@pytest.mark.parametrize("shape", [(2, 8, 16, 16), (3, 5, 7), (4, 64)])
def test_relu_on_large_and_odd_sizes_with_nan_and_inf_matches_torch(shape):
    """(2, 8, 16, 16) goes down the zero-row path; the others do not."""
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32).ravel()
    x[:4] = [np.nan, np.inf, -np.inf, 0.0]
    x = x.reshape(shape)
    check_against_torch(F.relu, _torch_functional().relu, [x], check_grad=False)
    smooth = np.where(np.isfinite(x) & (x != 0), x, 1.5).astype(np.float32)
    check_against_torch(F.relu, _torch_functional().relu, [smooth])


def test_relu_gradient_is_zero_at_zero_like_torch():
    x = cs.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    F.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 1.0])


def test_relu_inplace_overwrites_its_input_and_the_others_leave_it_alone():
    x = cs.tensor([-1.0, 2.0])
    assert F.relu(x, inplace=True) is x and x.tolist() == [0.0, 2.0] and x._version == 1
    x = cs.tensor([-1.0, 2.0])
    assert F.leaky_relu(x, 0.5, inplace=True).tolist() == [-0.5, 2.0]  # accepted, computed out of place
    assert x.tolist() == [-1.0, 2.0]


ERRORS = {
    "softmax-no-dim": (
        lambda: F.softmax(cs.zeros(2, 3)),
        "softmax: invalid value for argument `dim`: expected an integer in [-2, 1] for a 2-D input, "
        "received None (input shape (2, 3))",
    ),
    "log_softmax-dim-out-of-range": (
        lambda: F.log_softmax(cs.zeros(2, 3), 2),
        "log_softmax: invalid value for argument `dim`: expected an integer in [-2, 1] for a 2-D input, received 2",
    ),
    "gelu-approximate": (
        lambda: F.gelu(cs.zeros(2), approximate="erf"),
        "gelu: invalid value for argument `approximate`: expected 'none' or 'tanh', received 'erf'",
    ),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors(case):
    call, message = ERRORS[case]
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_integer_input_is_refused():
    with pytest.raises(TypeError, match="relu: expected a floating point input, received dtype int64"):
        F.relu(cs.tensor([1, 2]))


def test_docstring_examples_run():
    module = importlib.import_module("convstack.nn.functional.activation")
    result = doctest.testmod(module, extraglobs={"cs": cs, "F": F}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
