"""Each tier's softmax cross-entropy kernels against the float64 reference."""

import numpy as np
import pytest
from tests.helpers import kernel_tiers

from convstack.nn.kernels import tiers
from convstack.nn.kernels.reference import loss as reference

SHAPES = [(1, 1), (64, 10), (5, 3, 4), (2, 4, 3, 5), (300, 1000)]


def _kernels(tier):
    implementation = tiers.get_tier(tier).implementation
    return implementation(reference.cross_entropy_forward), implementation(reference.cross_entropy_backward)


def _case(rng, shape, dtype, ignored=False):
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    target = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    weight = rng.random(target.shape).astype(dtype) + 0.5
    if ignored:
        weight.reshape(-1)[1::3] = 0  # ignore_index positions: weight 0 (their class stays a valid one)
    return x, target, weight


@pytest.mark.parametrize("tier", kernel_tiers())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ignored", [False, True], ids=["all", "some-ignored"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_cross_entropy_matches_the_float64_reference(tier, dtype, ignored, shape, rng):
    x, target, weight = _case(rng, shape, dtype, ignored)
    denominator = weight.sum()
    forward, backward = _kernels(tier)
    loss, saved = forward(x, target, weight, denominator)
    expected, expected_saved = reference.cross_entropy_forward(x.astype(np.float64), target,
                                                               weight.astype(np.float64), np.float64(denominator))
    tolerance = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-14}
    assert loss.shape == () and loss.dtype == dtype
    np.testing.assert_allclose(loss, expected, **tolerance)
    grad = np.asarray(0.5, dtype=dtype)
    grad_input = backward(grad, saved)
    assert grad_input.dtype == dtype and grad_input.shape == shape
    np.testing.assert_allclose(grad_input, reference.cross_entropy_backward(np.float64(0.5), expected_saved),
                               **tolerance)


@pytest.mark.parametrize("tier", kernel_tiers())
def test_cross_entropy_takes_non_contiguous_scores_and_int32_targets(tier, rng):
    x, target, weight = _case(rng, (6, 7, 5), np.float32)
    strided = np.ascontiguousarray(x.transpose(0, 2, 1)).transpose(0, 2, 1)
    loss, saved = _kernels(tier)[0](strided, target.astype(np.int32), weight, 4.0)
    expected, expected_saved = reference.cross_entropy_forward(x, target, weight, 4.0)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    np.testing.assert_allclose(_kernels(tier)[1](np.float32(1), saved),
                               reference.cross_entropy_backward(np.float32(1), expected_saved), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("tier", kernel_tiers())
def test_cross_entropy_of_extreme_and_nan_scores(tier):
    forward = _kernels(tier)[0]
    big = np.array([[1e4, -1e4, 0.0]], dtype=np.float32)  # no overflow: log-sum-exp
    loss, _ = forward(big, np.array([1]), np.ones(1, np.float32), 1.0)
    assert loss == np.float32(2e4)
    poisoned = np.array([[0.0, np.nan, 1.0], [0.0, 1.0, 2.0]], dtype=np.float32)
    loss, _ = forward(poisoned, np.array([0, 2]), np.ones(2, np.float32), 2.0)
    assert np.isnan(loss)


@pytest.mark.skipif("numba" not in kernel_tiers(), reason="the compiled tier needs Numba")
def test_compiled_cross_entropy_splits_rows_across_threads_the_same_way(monkeypatch, rng):
    from convstack.nn.kernels.compiled import loss

    x, target, weight = _case(rng, (9, 4, 3), np.float64)
    serial, serial_saved = loss.cross_entropy_forward(x, target, weight, 7.0)
    monkeypatch.setattr(loss, "GRAIN", 2)  # every score array of 4+ elements takes the parallel kernel
    parallel, parallel_saved = loss.cross_entropy_forward(x, target, weight, 7.0)
    np.testing.assert_allclose(parallel, serial, rtol=1e-14)
    np.testing.assert_array_equal(parallel_saved.unit_grad, serial_saved.unit_grad)
