"""batch_norm and local_response_norm: PyTorch parity (values, gradients, running statistics),
finite differences, worked examples and pinned errors."""

import doctest
import importlib

import numpy as np
import pytest
from tests.helpers import check_against_torch, check_gradients

import convstack as cs
from convstack.nn import functional as F


def _torch():
    return pytest.importorskip("torch")


SHAPES = {0: (6, 3), 1: (4, 3, 5), 2: (2, 3, 4, 5), 3: (2, 3, 2, 3, 2)}


def _stats(channels, dtype, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(channels).astype(dtype), rng.uniform(0.5, 2.0, channels).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("spatial", [0, 1, 2, 3])
def test_batch_norm_matches_torch(spatial, training, affine, dtype, rng):
    torch = _torch()
    shape = SHAPES[spatial]
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    channels = shape[1]
    mean, var = _stats(channels, dtype)
    inputs = [x] + ([rng.standard_normal(channels).astype(dtype), rng.standard_normal(channels).astype(dtype)]
                    if affine else [])
    cs_stats, torch_stats = (cs.tensor(mean), cs.tensor(var)), (torch.tensor(mean), torch.tensor(var))

    def ours(x, *params):
        return F.batch_norm(x, *cs_stats, *params, training=training, momentum=0.3, eps=1e-3)

    def theirs(x, *params):
        return _torch().nn.functional.batch_norm(x, *torch_stats, *params, training=training, momentum=0.3, eps=1e-3)

    check_against_torch(ours, theirs, inputs, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cs_stats[0].numpy(), torch_stats[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cs_stats[1].numpy(), torch_stats[1].numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training, affine", [(True, True), (True, False), (False, True)])
def test_batch_norm_long_rows_match_torch(training, affine, dtype, rng):
    """L = 64 values per sample and channel: the GEMV / inner-product path for the per-channel sums."""
    x = (rng.standard_normal((4, 3, 8, 8)) * 2 - 1).astype(dtype)
    mean, var = _stats(3, dtype)
    inputs = [x] + ([rng.standard_normal(3).astype(dtype), rng.standard_normal(3).astype(dtype)] if affine else [])

    def ours(x, *params):
        return F.batch_norm(x, cs.tensor(mean), cs.tensor(var), *params, training=training, eps=1e-3)

    def theirs(x, *params):
        torch = _torch()
        return torch.nn.functional.batch_norm(x, torch.tensor(mean), torch.tensor(var), *params, training=training,
                                              eps=1e-3)

    check_against_torch(ours, theirs, inputs, rtol=1e-4, atol=1e-5)


def test_batch_norm_float32_keeps_its_accuracy_far_from_zero(rng):
    """Activations around 1000 with unit spread: the corrected two-pass statistics, output and gradients."""
    torch = _torch()
    x = (1000 + rng.standard_normal((16, 4, 16, 16))).astype(np.float32)
    w, b, g = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal(x.shape)
    ours = [cs.tensor(a.astype(np.float32), requires_grad=True) for a in (x, w, b)]
    out = F.batch_norm(*ours[:1], None, None, *ours[1:], training=True)
    out.backward(cs.tensor(g.astype(np.float32)))
    exact = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, w, b)]
    reference = torch.nn.functional.batch_norm(exact[0], None, None, *exact[1:], training=True)
    reference.backward(torch.tensor(g))
    np.testing.assert_allclose(out.detach().numpy(), reference.detach().numpy(), atol=2e-5)
    for mine, theirs in zip(ours, exact):
        scale = np.abs(theirs.grad.numpy()).max()
        np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), atol=2e-5 * max(scale, 1.0))


@pytest.mark.parametrize("has_weight, has_bias", [(True, False), (False, True)])
def test_batch_norm_weight_or_bias_alone_matches_torch(has_weight, has_bias, rng):
    x = rng.standard_normal((4, 3, 5))
    params = [rng.standard_normal(3)]

    def ours(x, p):
        return F.batch_norm(x, None, None, p if has_weight else None, p if has_bias else None, training=True)

    def theirs(x, p):
        return _torch().nn.functional.batch_norm(x, None, None, p if has_weight else None, p if has_bias else None,
                                                 training=True)

    check_against_torch(ours, theirs, [x] + params)


def test_batch_norm_running_statistics_use_the_unbiased_variance():
    x = cs.tensor([[1.0], [3.0]])  # batch mean 2, biased variance 1, unbiased variance 2
    mean, var = np.zeros(1, np.float32), np.ones(1, np.float32)
    out = F.batch_norm(x, mean, var, training=True, momentum=0.5, eps=0.0)
    np.testing.assert_allclose(out.numpy(), [[-1.0], [1.0]])  # normalised with the biased variance
    np.testing.assert_allclose(mean, [1.0])  # 0.5 * 0 + 0.5 * 2, arrays updated in place
    np.testing.assert_allclose(var, [1.5])  # 0.5 * 1 + 0.5 * 2


def test_batch_norm_eval_leaves_running_statistics_alone():
    mean, var = cs.zeros(2), cs.ones(2)
    F.batch_norm(cs.randn(4, 2), mean, var, training=False)
    np.testing.assert_array_equal(mean.numpy(), [0, 0])
    np.testing.assert_array_equal(var.numpy(), [1, 1])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_finite_differences(training, rng):
    mean, var = _stats(2, np.float64)
    inputs = [rng.standard_normal((3, 2, 2)), rng.standard_normal(2), rng.standard_normal(2)]
    # Running statistics copied on each call: finite differences must not see them drift.
    check_gradients(lambda x, w, b: F.batch_norm(x, mean.copy(), var.copy(), w, b, training=training), inputs)


def test_batch_norm_without_affine_finite_differences(rng):
    check_gradients(lambda x: F.batch_norm(x, None, None, training=True), [rng.standard_normal((2, 3, 3))])


def test_batch_norm_input_gradient_sums_to_zero_per_channel(rng):
    # The normalised output ignores shifts of a channel, so the gradient has zero mean per channel.
    x = cs.tensor(rng.standard_normal((5, 3, 4)), requires_grad=True)
    F.batch_norm(x, None, None, training=True).backward(cs.tensor(rng.standard_normal((5, 3, 4))))
    np.testing.assert_allclose(x.grad.numpy().sum(axis=(0, 2)), 0, atol=1e-10)


# ----------------------------------------------------------------------------- local response norm
LRN_CASES = [
    ((2, 6, 5), dict(size=3)),
    ((2, 7, 4, 5), dict(size=5, alpha=1e-2, beta=0.75, k=2.0)),  # AlexNet's constants, bigger alpha
    ((1, 4, 3, 3), dict(size=2, alpha=0.5, beta=1.5, k=1.0)),
    ((1, 3, 4, 3), dict(size=8, alpha=0.3)),  # window wider than the channels
    ((2, 5, 2, 3, 2), dict(size=4, alpha=0.2, beta=0.6, k=0.5)),
    ((2, 4, 3), dict(size=1, alpha=1.0)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kwargs", LRN_CASES)
def test_local_response_norm_matches_torch(shape, kwargs, dtype, rng):
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    check_against_torch(lambda t: F.local_response_norm(t, **kwargs),
                        lambda t: _torch().nn.functional.local_response_norm(t, **kwargs), [x])


@pytest.mark.parametrize("shape, kwargs", [((1, 5, 2), dict(size=3, alpha=0.5, beta=0.75, k=1.0)),
                                           ((1, 4, 2, 2), dict(size=2, alpha=1.0, beta=1.3, k=2.0))])
def test_local_response_norm_finite_differences(shape, kwargs, rng):
    check_gradients(lambda x: F.local_response_norm(x, **kwargs), [rng.standard_normal(shape)])


def test_local_response_norm_worked_example():
    # size 3, alpha 3 (so alpha / size = 1), beta 1, k 1: y_c = x_c / (1 + sum of neighbouring squares)
    x = cs.tensor([1.0, 2.0, 3.0]).reshape(1, 3, 1)
    expected = [1 / (1 + 1 + 4), 2 / (1 + 1 + 4 + 9), 3 / (1 + 4 + 9)]
    np.testing.assert_allclose(F.local_response_norm(x, 3, alpha=3.0, beta=1.0).numpy().ravel(), expected, rtol=1e-6)


# ----------------------------------------------------------------------------- errors
ERRORS = {
    "bn-rank": (lambda: F.batch_norm(cs.ones(3), None, None, training=True),
                "batch_norm: expected an input of at least 2 dimensions (N, C, *), received shape (3,)"),
    "bn-one-value": (lambda: F.batch_norm(cs.ones(1, 3, 1), None, None, training=True),
                     "batch_norm: expected more than 1 value per channel when training, received input shape "
                     "(1, 3, 1)"),
    "bn-stats-shape": (lambda: F.batch_norm(cs.ones(2, 3), cs.zeros(4), cs.ones(3)),
                       "batch_norm: invalid value for argument `running_mean`: expected a float tensor of shape "
                       "(3,), received (4,) (input shape (2, 3))"),
    "bn-eval-no-stats": (lambda: F.batch_norm(cs.ones(2, 3), None, None),
                         "batch_norm: invalid value for argument `running_mean`: expected running statistics when "
                         "training=False, received None (input shape (2, 3))"),
    "bn-weight": (lambda: F.batch_norm(cs.ones(2, 3), None, None, cs.ones(2), training=True),
                  "batch_norm: invalid value for argument `weight`: expected a float32 tensor of shape (3,), "
                  "received 'float32 of shape (2,)' (input shape (2, 3))"),
    "bn-eps": (lambda: F.batch_norm(cs.ones(2, 3), None, None, training=True, eps=-1.0),
               "batch_norm: invalid value for argument `eps`: expected a non-negative number, received -1.0 "
               "(input shape (2, 3))"),
    "lrn-rank": (lambda: F.local_response_norm(cs.ones(2, 3), 2),
                 "local_response_norm: expected an input of at least 3 dimensions (N, C, D1, ...), received shape "
                 "(2, 3)"),
    "lrn-size": (lambda: F.local_response_norm(cs.ones(1, 3, 2), 0),
                 "local_response_norm: invalid value for argument `size`: expected a positive integer, received 0 "
                 "(input shape (1, 3, 2))"),
}


@pytest.mark.parametrize("call, message", ERRORS.values(), ids=ERRORS.keys())
def test_errors_are_pinned(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert str(error.value) == message


def test_integer_input_is_refused():
    with pytest.raises(TypeError, match="local_response_norm: expected a floating point input, received dtype int64"):
        F.local_response_norm(cs.tensor([[[1, 2]]]), 2)


def test_docstring_examples_run():
    module = importlib.import_module("convstack.nn.functional.normalization")
    result = doctest.testmod(module, extraglobs={"cs": cs, "F": F}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
