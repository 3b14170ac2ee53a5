"""linear: parity with PyTorch over leading dimensions, finite differences, errors."""

import doctest
import importlib
import re

import numpy as np
import pytest
from tests.helpers import check_against_torch, check_gradients

import convstack as cs
import convstack.nn.functional as F

TOLERANCES = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("leading", [(), (4,), (2, 3), (2, 1, 3)])
def test_linear_matches_torch(leading, bias, dtype, rng):
    torch = pytest.importorskip("torch")
    arrays = [rng.standard_normal(leading + (5,)).astype(dtype), rng.standard_normal((3, 5)).astype(dtype)]
    if bias:
        arrays.append(rng.standard_normal(3).astype(dtype))
    check_against_torch(F.linear, torch.nn.functional.linear, arrays, **TOLERANCES[dtype])


@pytest.mark.parametrize("bias", [True, False])
def test_linear_finite_differences(bias, rng):
    arrays = [rng.standard_normal((2, 2, 3)), rng.standard_normal((4, 3))] + ([rng.standard_normal(4)] if bias else [])
    check_gradients(F.linear, arrays)


def test_linear_without_weight_gradient_skips_it():
    x = cs.ones(2, 3).requires_grad_()
    F.linear(x, cs.ones(4, 3)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 4.0))


ERRORS = {
    "in-features": (
        lambda: F.linear(cs.zeros(2, 5), cs.zeros(3, 4)),
        "linear: the last dimension of input (5) must equal in_features (4), received input shape (2, 5), "
        "weight shape (3, 4)",
    ),
    "weight-rank": (
        lambda: F.linear(cs.zeros(2, 4), cs.zeros(4)),
        "linear: expected a 2-D weight (out_features, in_features), received input shape (2, 4), weight shape (4,)",
    ),
    "bias-shape": (
        lambda: F.linear(cs.zeros(2, 4), cs.zeros(3, 4), cs.zeros(4)),
        "linear: expected bias of shape (3,) (out_features), received input shape (2, 4), weight shape (3, 4), "
        "bias shape (4,)",
    ),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors(case):
    call, message = ERRORS[case]
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_mixed_dtypes_are_refused():
    message = "linear: expected one dtype for all arguments, received input float32, weight float64"
    with pytest.raises(TypeError, match=message):
        F.linear(cs.zeros(2, 4), cs.zeros(3, 4, dtype=np.float64))


def test_docstring_examples_run():
    module = importlib.import_module("convstack.nn.functional.linear")
    result = doctest.testmod(module, extraglobs={"cs": cs, "F": F}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
