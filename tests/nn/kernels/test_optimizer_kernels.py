"""Each tier's SGD and Adam updates against the float64 reference, over a few steps, every option."""

import itertools

import numpy as np
import pytest
from tests.helpers import kernel_tiers

from convstack.nn.kernels import tiers
from convstack.nn.kernels.reference import optimizers as reference

SHAPES = [(1,), (7, 3), (3, 1, 5, 5), (140000,)]
STEPS = 3


def _tolerance(dtype):
    return {"rtol": 2e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-14}


def _gradients(rng, shape, dtype):
    return [rng.standard_normal(shape).astype(dtype) for _ in range(STEPS)]


SGD_OPTIONS = [dict(momentum=m, dampening=d, weight_decay=w, nesterov=n, maximize=x)
               for m, d, w, n, x in itertools.product((0.0, 0.9), (0.0, 0.3), (0.0, 0.01), (False, True), (False, True))
               if not (n and (m == 0 or d != 0))]


def _sgd(step, param, grads, options):
    buffer = None
    for grad in grads:
        buffer = step(param, grad, buffer, 0.1, options["momentum"], options["dampening"], options["weight_decay"],
                      options["nesterov"], options["maximize"])
    return param, buffer


@pytest.mark.parametrize("tier", kernel_tiers())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", SGD_OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_sgd_matches_the_float64_reference(tier, dtype, options, rng):
    step = tiers.get_tier(tier).implementation(reference.sgd_step)
    start, grads = rng.standard_normal((7, 3)).astype(dtype), _gradients(rng, (7, 3), dtype)
    param = start.copy()
    param_array = param
    param, buffer = _sgd(step, param, grads, options)
    assert param is param_array  # in place
    expected, expected_buffer = _sgd(reference.sgd_step, start.astype(np.float64),
                                     [g.astype(np.float64) for g in grads], options)
    np.testing.assert_allclose(param, expected, **_tolerance(dtype))
    if options["momentum"] == 0:
        assert buffer is None
    else:
        assert buffer.dtype == dtype
        np.testing.assert_allclose(buffer, expected_buffer, **_tolerance(dtype))


@pytest.mark.parametrize("tier", kernel_tiers())
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_sgd_on_every_size(tier, shape, rng):
    step = tiers.get_tier(tier).implementation(reference.sgd_step)
    start, grads = rng.standard_normal(shape).astype(np.float32), _gradients(rng, shape, np.float32)
    options = dict(momentum=0.9, dampening=0.0, weight_decay=5e-4, nesterov=True, maximize=False)
    param, _ = _sgd(step, start.copy(), grads, options)
    expected, _ = _sgd(reference.sgd_step, start.astype(np.float64), [g.astype(np.float64) for g in grads], options)
    np.testing.assert_allclose(param, expected, **_tolerance(np.float32))


ADAM_OPTIONS = [dict(weight_decay=w, amsgrad=a, maximize=x, decoupled_weight_decay=d)
                for w, a, x, d in itertools.product((0.0, 0.1), (False, True), (False, True), (False, True))]


def _adam(update, param, grads, options):
    exp_avg, exp_avg_sq, largest = (np.zeros_like(param) for _ in range(3))
    for step, grad in enumerate(grads, 1):
        update(param, grad, exp_avg, exp_avg_sq, largest, step, 0.01, 0.9, 0.999, 1e-8, options["weight_decay"],
               options["amsgrad"], options["maximize"], options["decoupled_weight_decay"])
    return param, exp_avg, exp_avg_sq, largest


@pytest.mark.parametrize("tier", kernel_tiers())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", ADAM_OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_adam_matches_the_float64_reference(tier, dtype, options, rng):
    update = tiers.get_tier(tier).implementation(reference.adam_step)
    start, grads = rng.standard_normal((7, 3)).astype(dtype), _gradients(rng, (7, 3), dtype)
    grads[1][0, 0] = 0.0  # a zero gradient: the second moment decays, AMSGrad keeps its maximum
    actual = _adam(update, start.copy(), grads, options)
    expected = _adam(reference.adam_step, start.astype(np.float64), [g.astype(np.float64) for g in grads], options)
    for got, want in zip(actual, expected):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **_tolerance(dtype))


@pytest.mark.parametrize("tier", kernel_tiers())
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_adam_on_every_size(tier, shape, rng):
    update = tiers.get_tier(tier).implementation(reference.adam_step)
    start, grads = rng.standard_normal(shape).astype(np.float32), _gradients(rng, shape, np.float32)
    options = dict(weight_decay=0.01, amsgrad=True, maximize=False, decoupled_weight_decay=True)
    actual = _adam(update, start.copy(), grads, options)
    expected = _adam(reference.adam_step, start.astype(np.float64), [g.astype(np.float64) for g in grads], options)
    for got, want in zip(actual, expected):
        np.testing.assert_allclose(got, want, **_tolerance(np.float32))


@pytest.mark.parametrize("tier", kernel_tiers())
def test_updates_of_non_contiguous_parameters_stay_in_place(tier, rng):
    """A parameter viewing a transposed array: the compiled tier hands it to the reference, which updates it."""
    implementation = tiers.get_tier(tier).implementation
    base = rng.standard_normal((4, 6)).astype(np.float32)
    param = base.T  # (6, 4), not C-contiguous, a view of base
    grad = rng.standard_normal((6, 4)).astype(np.float32)
    expected = param - 0.1 * grad
    implementation(reference.sgd_step)(param, grad, None, 0.1, 0.0, 0.0, 0.0, False, False)
    np.testing.assert_allclose(base.T, expected, rtol=1e-6)
    state = [np.zeros_like(param) for _ in range(3)]
    implementation(reference.adam_step)(param, grad, *state, 1, 0.1, 0.9, 0.999, 1e-8, 0.0, False, False, False)
    np.testing.assert_allclose(base.T, expected - 0.1 * np.sign(grad), rtol=1e-4)
