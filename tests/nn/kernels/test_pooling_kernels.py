"""Each tier's max and average pooling kernels against the float64 reference, in 1-D, 2-D and 3-D."""

import numpy as np
import pytest
from tests.helpers import kernel_tiers

from convstack.nn.kernels import tiers
from convstack.nn.kernels.reference import average_pooling, max_pooling
from convstack.nn.kernels.reference.windows import pooling_output_size

# name: (input shape, kernel, stride, padding, dilation, ceil_mode)
CASES = {
    "2x2-tiled": ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), False),
    "2x2-odd-size": ((2, 3, 7, 9), (2, 2), (2, 2), (0, 0), (1, 1), False),
    "3x3s2p1-ceil": ((2, 3, 9, 7), (3, 3), (2, 2), (1, 1), (1, 1), True),
    "3x2-stride-2x3-dilated": ((2, 3, 9, 7), (3, 2), (2, 3), (1, 1), (2, 1), True),
    "overlapping-stride-1": ((1, 2, 6, 5), (3, 3), (1, 1), (1, 1), (1, 1), False),
    "1x1-planes": ((3, 4, 1, 1), (1, 1), (1, 1), (0, 0), (1, 1), False),
    "1-channel": ((4, 1, 6, 6), (2, 3), (2, 1), (1, 1), (1, 1), False),
    "1d-dilated-ceil": ((2, 2, 11), (3,), (2,), (1,), (2,), True),
    "3d": ((2, 2, 5, 6, 7), (2, 3, 2), (1, 2, 2), (1, 1, 0), (1, 1, 2), False),
    "3d-ceil": ((1, 2, 5, 5, 5), (2, 2, 2), (2, 2, 2), (0, 1, 0), (1, 1, 1), True),
}


def _geometry(case):
    shape, kernel, stride, padding, dilation, ceil_mode = CASES[case]
    out_sizes = tuple(pooling_output_size(n, k, s, p, d, ceil_mode)
                      for n, k, s, p, d in zip(shape[2:], kernel, stride, padding, dilation))
    return shape, kernel, stride, padding, dilation, out_sizes


def _max_kernels(tier):
    implementation = tiers.get_tier(tier).implementation
    return implementation(max_pooling.max_pool_forward), implementation(max_pooling.max_pool_backward)


def _avg_kernels(tier):
    implementation = tiers.get_tier(tier).implementation
    return implementation(average_pooling.avg_pool_forward), implementation(average_pooling.avg_pool_backward)


def _tolerance(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


@pytest.mark.parametrize("tier", kernel_tiers())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("return_indices", [False, True], ids=["values", "indices"])
@pytest.mark.parametrize("case", CASES)
def test_max_pool_matches_the_float64_reference(tier, dtype, return_indices, case, rng):
    shape, kernel, stride, padding, dilation, out_sizes = _geometry(case)
    forward, backward = _max_kernels(tier)
    # few distinct values: ties inside windows, which the first maximum in window order must win
    x = rng.integers(-3, 4, shape).astype(dtype)
    out, indices, saved = forward(x, kernel, stride, padding, dilation, out_sizes, True, return_indices)
    expected, expected_indices, expected_saved = max_pooling.max_pool_forward(
        x.astype(np.float64), kernel, stride, padding, dilation, out_sizes, True, True)
    assert out.dtype == dtype and out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)
    if return_indices:
        assert indices.dtype == np.int64
        np.testing.assert_array_equal(indices, expected_indices)
    else:
        assert indices is None
    grad = rng.standard_normal(out.shape).astype(dtype)
    grad_input = backward(grad, saved)
    assert grad_input.dtype == dtype and grad_input.shape == shape
    np.testing.assert_allclose(grad_input, max_pooling.max_pool_backward(grad.astype(np.float64), expected_saved),
                               **_tolerance(dtype))


@pytest.mark.parametrize("tier", kernel_tiers())
def test_max_pool_without_gradient_keeps_nothing(tier, rng):
    shape, kernel, stride, padding, dilation, out_sizes = _geometry("3x3s2p1-ceil")
    x = rng.standard_normal(shape).astype(np.float32)
    out, indices, saved = _max_kernels(tier)[0](x, kernel, stride, padding, dilation, out_sizes, False, False)
    assert indices is None and saved is None
    np.testing.assert_array_equal(out, max_pooling.max_pool_forward(x, kernel, stride, padding, dilation, out_sizes,
                                                                     False, False)[0])


@pytest.mark.parametrize("tier", kernel_tiers())
@pytest.mark.parametrize("case", ["2x2-tiled", "3x3s2p1-ceil"])
def test_max_pool_nan_and_infinities(tier, case, rng):
    """A NaN wins its window (its position too); a window of -inf takes its first inside position."""
    shape, kernel, stride, padding, dilation, out_sizes = _geometry(case)
    x = rng.standard_normal(shape).astype(np.float32)
    x[0, 0, :3, :3] = -np.inf
    x[0, 1, 1, 1] = np.nan
    x[1, 2, 2, :] = np.nan
    out, indices, saved = _max_kernels(tier)[0](x, kernel, stride, padding, dilation, out_sizes, True, True)
    expected, expected_indices, _ = max_pooling.max_pool_forward(x, kernel, stride, padding, dilation, out_sizes,
                                                                 True, True)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(indices, expected_indices)
    grad = np.ones(out.shape, dtype=np.float32)
    routed = _max_kernels(tier)[1](grad, saved)
    assert routed.sum() == grad.sum()  # every output's gradient lands on one input


@pytest.mark.parametrize("tier", kernel_tiers())
def test_max_pool_takes_non_contiguous_inputs(tier, rng):
    shape, kernel, stride, padding, dilation, out_sizes = _geometry("3x3s2p1-ceil")
    x = rng.standard_normal(shape[:2] + shape[2:][::-1]).astype(np.float32).transpose(0, 1, 3, 2)
    forward, backward = _max_kernels(tier)
    out, _, saved = forward(x, kernel, stride, padding, dilation, out_sizes, True, False)
    expected, _, expected_saved = max_pooling.max_pool_forward(np.ascontiguousarray(x), kernel, stride, padding,
                                                               dilation, out_sizes, True, False)
    np.testing.assert_array_equal(out, expected)
    grad = rng.standard_normal(out.shape[:2] + out.shape[2:][::-1]).astype(np.float32).transpose(0, 1, 3, 2)
    np.testing.assert_allclose(backward(grad, saved), max_pooling.max_pool_backward(np.ascontiguousarray(grad),
                                                                                   expected_saved), rtol=1e-6)


@pytest.mark.parametrize("tier", kernel_tiers())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("count_include_pad", [True, False], ids=["with-pad", "without-pad"])
@pytest.mark.parametrize("divisor_override", [None, 3], ids=["divisor", "override"])
@pytest.mark.parametrize("case", [name for name, case in CASES.items() if all(d == 1 for d in case[4])])
def test_avg_pool_matches_the_float64_reference(tier, dtype, count_include_pad, divisor_override, case, rng):
    shape, kernel, stride, padding, _, out_sizes = _geometry(case)
    forward, backward = _avg_kernels(tier)
    x = rng.standard_normal(shape).astype(dtype)
    out, saved = forward(x, kernel, stride, padding, out_sizes, count_include_pad, divisor_override)
    expected, expected_saved = average_pooling.avg_pool_forward(x.astype(np.float64), kernel, stride, padding,
                                                                out_sizes, count_include_pad, divisor_override)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, expected, **_tolerance(dtype))
    grad = rng.standard_normal(out.shape).astype(dtype)
    grad_input = backward(grad, saved)
    assert grad_input.dtype == dtype and grad_input.shape == shape
    np.testing.assert_allclose(grad_input, average_pooling.avg_pool_backward(grad.astype(np.float64),
                                                                             expected_saved), **_tolerance(dtype))


@pytest.mark.skipif("numba" not in kernel_tiers(), reason="the compiled tier needs Numba")
def test_compiled_pooling_results_own_their_memory(rng):
    """So that autograd hands a leaf input its gradient without copying it."""
    shape, kernel, stride, padding, dilation, out_sizes = _geometry("3x3s2p1-ceil")
    x = rng.standard_normal(shape).astype(np.float32)
    max_forward, max_backward = _max_kernels("numba")
    out, _, saved = max_forward(x, kernel, stride, padding, dilation, out_sizes, True, False)
    assert out.base is None and max_backward(np.ones_like(out), saved).base is None
    avg_forward, avg_backward = _avg_kernels("numba")
    out, saved = avg_forward(x, kernel, stride, padding, out_sizes, True, None)
    assert out.base is None and avg_backward(np.ones_like(out), saved).base is None
