"""Each tier's batch-norm kernels (with and without the fused ReLU) against the float64 reference."""

import numpy as np
import pytest
from tests.helpers import kernel_tiers

from convstack.nn.kernels import tiers
from convstack.nn.kernels.reference import normalization as reference

# (N, C, *): 1 channel, 1x1 planes (the compiled tier hands these to the reference), planes of
# exactly and just under the compiled tier's minimum, 1-D and 3-D, ResNet's size
SHAPES = [(4, 3, 5, 5), (2, 1, 16), (3, 2, 1, 1), (2, 3, 15), (6, 5), (2, 3, 4, 4, 4), (16, 16, 8, 8)]
ALL = (True, True, True)


def _kernels(tier):
    implementation = tiers.get_tier(tier).implementation
    return implementation(reference.batch_norm_forward), implementation(reference.batch_norm_backward)


def _case(rng, shape, dtype, offset=0.0):
    channels = shape[1]
    x = (rng.standard_normal(shape) * 2 + offset).astype(dtype)
    weight = rng.standard_normal(channels).astype(dtype)
    bias = rng.standard_normal(channels).astype(dtype)
    running_mean = (rng.standard_normal(channels) + offset).astype(dtype)
    running_var = (rng.random(channels) + 0.5).astype(dtype)
    grad = rng.standard_normal(shape).astype(dtype)
    return x, weight, bias, running_mean, running_var, grad


def _run(forward, backward, arrays, training, relu, needs=ALL, affine=True):
    x, weight, bias, running_mean, running_var, grad = (a.copy() for a in arrays)
    if not affine:
        weight = bias = None
    out, saved = forward(x, weight, bias, running_mean, running_var, training, 0.1, 1e-5, needs, relu)
    grads = backward(grad, saved, needs)
    return out, running_mean, running_var, grads


def _expected(arrays, training, relu, needs=ALL, affine=True):
    wide = [a.astype(np.float64) for a in arrays]
    return _run(reference.batch_norm_forward, reference.batch_norm_backward, wide, training, relu, needs, affine)


def _assert_close(actual, expected, dtype):
    tolerance = 2e-4 if dtype == np.float32 else 1e-9
    out, mean, var, grads = actual
    out64, mean64, var64, grads64 = expected
    assert out.dtype == dtype
    np.testing.assert_allclose(out, out64, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(mean, mean64, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(var, var64, rtol=tolerance, atol=tolerance)
    for got, want in zip(grads, grads64):
        assert (got is None) == (want is None)
        if got is not None:
            assert got.dtype == dtype and got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=10 * tolerance, atol=10 * tolerance)


@pytest.mark.parametrize("tier", kernel_tiers())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("relu", [False, True], ids=["bn", "bn-relu"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_batch_norm_matches_the_float64_reference(tier, dtype, training, relu, shape, rng):
    arrays = _case(rng, shape, dtype)
    actual = _run(*_kernels(tier), arrays, training, relu)
    _assert_close(actual, _expected(arrays, training, relu), dtype)


@pytest.mark.parametrize("tier", kernel_tiers())
@pytest.mark.parametrize("needs", [(True, False, False), (False, True, False), (False, False, True),
                                   (False, False, False)], ids=["input", "weight", "bias", "none"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_returns_only_the_gradients_asked_for(tier, needs, training, rng):
    arrays = _case(rng, (4, 3, 6, 6), np.float64)
    forward, backward = _kernels(tier)
    x, weight, bias, mean, var, grad = arrays
    out, saved = forward(x.copy(), weight, bias, mean.copy(), var.copy(), training, 0.1, 1e-5, needs, True)
    if not any(needs):
        assert saved is None
        return
    grads = backward(grad, saved, needs)
    expected = _expected(arrays, training, True)[3]
    for wanted, got, want in zip(needs, grads, expected):
        if wanted:
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
        else:
            assert got is None


@pytest.mark.parametrize("tier", kernel_tiers())
def test_batch_norm_without_affine_parameters(tier, rng):
    arrays = _case(rng, (3, 4, 5, 5), np.float32)
    actual = _run(*_kernels(tier), arrays, True, True, needs=(True, False, False), affine=False)
    _assert_close(actual, _expected(arrays, True, True, needs=(True, False, False), affine=False), np.float32)


@pytest.mark.parametrize("tier", kernel_tiers())
def test_batch_norm_statistics_stay_accurate_in_float32_far_from_zero(tier, rng):
    """Mean 1000, standard deviation 2: a float32 sum of squares would lose every digit of the variance."""
    arrays = _case(rng, (8, 3, 16, 16), np.float32, offset=1000.0)
    actual = _run(*_kernels(tier), arrays, True, False)
    _assert_close(actual, _expected(arrays, True, False), np.float32)


@pytest.mark.parametrize("tier", kernel_tiers())
def test_batch_norm_takes_non_contiguous_inputs(tier, rng):
    forward, backward = _kernels(tier)
    arrays = _case(rng, (4, 3, 10, 8), np.float32)
    x = np.ascontiguousarray(arrays[0].transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # (4, 3, 10, 8), not C order
    grad = arrays[5][:, :, :, ::-1]  # a negative stride
    strided = (x, *arrays[1:5], grad)
    contiguous = tuple(np.ascontiguousarray(a) for a in strided)
    _assert_close(_run(forward, backward, strided, True, True), _expected(contiguous, True, True), np.float32)


@pytest.mark.skipif("numba" not in kernel_tiers(), reason="the compiled tier needs Numba")
def test_compiled_batch_norm_results_own_their_memory(rng):
    """So that autograd hands a leaf input its gradient without copying it."""
    x, weight, bias, mean, var, grad = _case(rng, (4, 3, 6, 6), np.float32)
    forward, backward = _kernels("numba")
    out, saved = forward(x, weight, bias, mean, var, True, 0.1, 1e-5, ALL, True)
    assert out.base is None
    assert all(g.base is None for g in backward(grad, saved, ALL))
