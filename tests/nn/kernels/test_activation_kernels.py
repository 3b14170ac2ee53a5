"""Each tier's ReLU kernels against the float64 reference: shapes, dtypes, layouts, NaN, both thread paths."""

import numpy as np
import pytest
from tests.helpers import kernel_tiers

from convstack.nn.kernels import tiers
from convstack.nn.kernels.reference import activation as reference

SHAPES = [(0,), (1,), (7,), (3, 1, 1, 1), (64, 6, 28, 28), (5, 300001)]


def _kernels(tier):
    implementation = tiers.get_tier(tier).implementation
    return implementation(reference.relu_forward), implementation(reference.relu_backward)


@pytest.mark.parametrize("tier", kernel_tiers())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_relu_matches_the_float64_reference(tier, dtype, shape, rng):
    forward, backward = _kernels(tier)
    x = rng.standard_normal(shape).astype(dtype)
    grad = rng.standard_normal(shape).astype(dtype)
    out = forward(x)
    assert out.dtype == dtype and out.shape == shape and out is not x
    np.testing.assert_array_equal(out, reference.relu_forward(x.astype(np.float64)))
    grad_input = backward(grad, out)
    assert grad_input.dtype == dtype
    np.testing.assert_array_equal(grad_input, reference.relu_backward(grad.astype(np.float64), out))


@pytest.mark.parametrize("tier", kernel_tiers())
def test_relu_takes_non_contiguous_inputs(tier, rng):
    forward, backward = _kernels(tier)
    x = rng.standard_normal((6, 40, 30)).astype(np.float32).transpose(2, 0, 1)[:, ::2]  # (30, 3, 40), strided
    grad = rng.standard_normal((30, 6, 40)).astype(np.float32)[:, ::2]
    out = forward(x)
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    np.testing.assert_array_equal(backward(grad, out), np.where(x > 0, grad, 0))


@pytest.mark.parametrize("tier", kernel_tiers())
def test_relu_keeps_nan_forward_and_routes_no_gradient_through_it(tier):
    forward, backward = _kernels(tier)
    x = np.array([np.nan, -1.0, 0.0, 2.0, -np.inf, np.inf], dtype=np.float32)
    out = forward(x)
    np.testing.assert_array_equal(out, [np.nan, 0.0, 0.0, 2.0, 0.0, np.inf])
    np.testing.assert_array_equal(backward(np.ones_like(x), out), [0.0, 0.0, 0.0, 1.0, 0.0, 1.0])


@pytest.mark.skipif("numba" not in kernel_tiers(), reason="the compiled tier needs Numba")
def test_compiled_relu_splits_work_across_threads_the_same_way(monkeypatch, rng):
    from convstack.nn.kernels.compiled import activation

    monkeypatch.setattr(activation, "GRAIN", 3)  # every array of 6+ elements takes the parallel kernel
    x = rng.standard_normal(1001).astype(np.float32)
    grad = rng.standard_normal(1001).astype(np.float32)
    out = activation.relu_forward(x)
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    np.testing.assert_array_equal(activation.relu_backward(grad, out), np.where(x > 0, grad, 0))


@pytest.mark.parametrize("tier", kernel_tiers())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_relu_in_place_rectifies_the_array_itself(tier, dtype, shape, rng):
    in_place = tiers.get_tier(tier).implementation(reference.relu_inplace)
    x = rng.standard_normal(shape).astype(dtype)
    if x.size:
        x.reshape(-1)[0] = np.nan  # a NaN stays NaN, as NumPy's maximum
    expected = np.maximum(x, 0)
    assert in_place(x) is x
    np.testing.assert_array_equal(x, expected)
    strided = rng.standard_normal((6, 8)).astype(dtype)[:, ::2]  # not contiguous: the reference's path
    expected = np.maximum(strided, 0)
    assert in_place(strided) is strided
    np.testing.assert_array_equal(strided, expected)
