"""dropout, dropout2d, dropout3d: statistics, determinism, scaling, gradients, errors."""

import doctest
import importlib
import re

import numpy as np
import pytest
from tests.helpers import check_gradients

import convstack as cs
import convstack.nn.functional as F


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics(p):
    x = cs.ones(200_000)
    out = F.dropout(x, p).numpy()
    dropped = np.mean(out == 0)
    assert abs(dropped - p) < 0.01
    assert abs(out.mean() - 1.0) < 0.02  # inverted dropout preserves the mean
    np.testing.assert_allclose(np.unique(out), [0.0, 1 / (1 - p)], rtol=1e-6)


@pytest.mark.parametrize("op", [F.dropout, F.dropout2d])
def test_manual_seed_makes_the_mask_reproducible(op):
    x = cs.randn(4, 8, 3, 3)
    cs.manual_seed(7)
    first = op(x).numpy()
    cs.manual_seed(7)
    np.testing.assert_array_equal(op(x).numpy(), first)
    assert not np.array_equal(op(x).numpy(), first)  # the stream moved on


def test_explicit_generator_is_used_instead_of_the_default_stream():
    x = cs.randn(64)
    a = F.dropout(x, generator=np.random.default_rng(3)).numpy()
    b = F.dropout(x, generator=np.random.default_rng(3)).numpy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "op, shape", [(F.dropout, (2, 3)), (F.dropout2d, (2, 3, 2, 2)), (F.dropout3d, (2, 3, 2, 2, 2))]
)
def test_identity_when_not_training_or_p_zero(op, shape):
    x = cs.randn(*shape)
    assert op(x, 0.5, training=False) is x
    assert op(x, 0.0) is x


def test_p_one_gives_zeros_and_zero_gradient():
    x = cs.randn(3, 4, requires_grad=True)
    out = F.dropout(x, p=1.0)
    np.testing.assert_array_equal(out.detach().numpy(), np.zeros((3, 4)))
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((3, 4)))


def test_gradient_uses_the_same_mask(rng):
    x = cs.tensor(rng.standard_normal((50, 20)), requires_grad=True)
    out = F.dropout(x, p=0.3)
    out.sum().backward()
    expected = np.where(out.detach().numpy() != 0, 1 / 0.7, 0.0)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)


def test_finite_differences_with_a_fixed_generator(rng):
    for op, shape in [(F.dropout, (3, 4)), (F.dropout2d, (2, 3, 2, 2)), (F.dropout3d, (3, 2, 1, 2))]:
        check_gradients(lambda x, op=op: op(x, 0.4, generator=np.random.default_rng(1)), [rng.standard_normal(shape)])


@pytest.mark.parametrize(
    "op, shape, channel_dims",
    [(F.dropout2d, (16, 32, 3, 4), 2), (F.dropout2d, (64, 3, 4), 1), (F.dropout3d, (8, 16, 2, 3, 2), 2),
     (F.dropout3d, (64, 2, 3, 2), 1)],
)
def test_feature_dropout_zeroes_whole_channels(op, shape, channel_dims):
    out = op(cs.ones(*shape), 0.5).numpy()
    spatial = tuple(range(channel_dims, len(shape)))
    channel_max, channel_min = out.max(axis=spatial), out.min(axis=spatial)
    np.testing.assert_array_equal(channel_max, channel_min)  # each channel is all-zero or all-scaled
    assert set(np.unique(channel_max)) == {0.0, 2.0}
    assert abs(np.mean(channel_max == 0) - 0.5) < 0.15


def test_dropout_keeps_dtype():
    assert F.dropout(cs.ones(4, dtype=np.float64)).dtype == np.float64
    assert F.dropout(cs.ones(4)).dtype == np.float32


ERRORS = {
    "p-too-large": (lambda: F.dropout(cs.ones(2), 1.5),
                    "dropout: invalid value for argument `p`: expected a probability in [0, 1], received 1.5"),
    "p-negative": (lambda: F.dropout2d(cs.ones(1, 2, 2, 2), -0.1),
                   "dropout2d: invalid value for argument `p`: expected a probability in [0, 1], received -0.1"),
    "generator": (lambda: F.dropout(cs.ones(2), generator=3),
                  "dropout: invalid value for argument `generator`: expected a numpy.random.Generator or None, "
                  "received 3"),
    "rank-2d": (lambda: F.dropout2d(cs.ones(2, 3)),
                "dropout2d: expected a 4-D input (N, C, D1, D2) or a 3-D input (C, D1, D2), received a 2-D input "
                "of shape (2, 3)"),
    "rank-3d": (lambda: F.dropout3d(cs.ones(2, 3, 4)),
                "dropout3d: expected a 5-D input (N, C, D1, D2, D3) or a 4-D input (C, D1, D2, D3), received a 3-D "
                "input of shape (2, 3, 4)"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors(case):
    call, message = ERRORS[case]
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_docstring_examples_run():
    module = importlib.import_module("convstack.nn.functional.dropout")
    result = doctest.testmod(module, extraglobs={"cs": cs, "F": F}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
