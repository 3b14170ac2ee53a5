"""triplet_margin_loss and margin_ranking_loss: parity with PyTorch (values and the gradients of every
input, target included) over reductions, norms, swap, 0-D and empty batches; errors."""

import doctest
import importlib
import math
import warnings

import numpy as np
import pytest
from tests.helpers import check_against_torch, check_gradients

import convstack as cs
import convstack.nn.functional as F

EXACT = dict(rtol=1e-10, atol=1e-12)
REDUCTIONS = ("mean", "sum", "none")


def _torch_functional():
    return pytest.importorskip("torch").nn.functional


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", [dict(), dict(margin=2.0, p=1), dict(swap=True), dict(p=math.inf, swap=True),
                                     dict(margin=0.5, p=3, eps=0.0)], ids=str)
@pytest.mark.parametrize("shape", [(6, 4), (4,), (2, 3, 4), ()], ids=str)
def test_triplet_margin_loss_matches_torch(shape, options, reduction, rng):
    TF = _torch_functional()
    inputs = [np.asarray(rng.standard_normal(shape)) for _ in range(3)]
    check_against_torch(lambda a, p, n: F.triplet_margin_loss(a, p, n, reduction=reduction, **options),
                        lambda a, p, n: TF.triplet_margin_loss(a, p, n, reduction=reduction, **options),
                        inputs, **EXACT)


def test_triplet_margin_loss_finite_differences(rng):
    check_gradients(lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=3.0, swap=True),
                    [rng.standard_normal((4, 3)) for _ in range(3)])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.5])
@pytest.mark.parametrize("shape", [(7,), (3, 4), ()], ids=str)
def test_margin_ranking_loss_matches_torch(shape, margin, reduction, rng):
    TF = _torch_functional()
    target = np.asarray(rng.choice([-1.0, 1.0], size=shape))
    inputs = [np.asarray(rng.standard_normal(shape)), np.asarray(rng.standard_normal(shape)), target]
    check_against_torch(lambda a, b, y: F.margin_ranking_loss(a, b, y, margin, reduction=reduction),
                        lambda a, b, y: TF.margin_ranking_loss(a, b, y, margin, reduction=reduction), inputs, **EXACT)


def test_margin_ranking_loss_integer_target_and_broadcasting_match_torch(rng):
    TF = _torch_functional()
    check_against_torch(lambda a, b, y: F.margin_ranking_loss(a, b, y, 0.2),
                        lambda a, b, y: TF.margin_ranking_loss(a, b, y, 0.2),
                        [rng.standard_normal((3, 1)), rng.standard_normal((3, 4)), np.array([[1], [-1], [1]])],
                        **EXACT)


def test_margin_ranking_loss_finite_differences(rng):
    target = np.array([1.0, -1.0, 1.0, -1.0])
    check_gradients(lambda a, b: F.margin_ranking_loss(a, b, cs.tensor(target), 0.3),
                    [rng.standard_normal(4), rng.standard_normal(4)])


@pytest.mark.parametrize("reduction, expected", [("sum", 0.0), ("none", None), ("mean", math.nan)])
def test_empty_batches_reduce_as_torch(reduction, expected):
    a = cs.zeros(0, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's "mean of empty slice", inside the mean op
        triplet = F.triplet_margin_loss(a, a, a, reduction=reduction)
        ranking = F.margin_ranking_loss(cs.zeros(0), cs.zeros(0), cs.zeros(0), reduction=reduction)
    if expected is None:
        assert triplet.shape == (0,) and ranking.shape == (0,)
    else:
        np.testing.assert_equal([triplet.item(), ranking.item()], [expected, expected])


def test_worked_values():
    anchor, positive, negative = cs.tensor([[0.0, 0.0]]), cs.tensor([[0.0, 1.0]]), cs.tensor([[0.0, 3.0]])
    # d(a, p) = 1, d(a, n) = 3, d(p, n) = 2: the swap picks 2
    assert F.triplet_margin_loss(anchor, positive, negative, margin=2.5, eps=0.0).item() == pytest.approx(0.5)
    assert F.triplet_margin_loss(anchor, positive, negative, margin=2.5, eps=0.0, swap=True).item() == \
        pytest.approx(1.5)
    loss = F.margin_ranking_loss(cs.tensor([3.0, 1.0]), cs.tensor([1.0, 3.0]), cs.tensor([1.0, 1.0]), 1.0, "none")
    np.testing.assert_allclose(loss.numpy(), [0.0, 3.0])


ERRORS = {
    "triplet-rank": (lambda: F.triplet_margin_loss(cs.ones(3, 4), cs.ones(3, 4), cs.ones(4)),
                     "triplet_margin_loss: expected anchor, positive, negative of the same number of dimensions, "
                     "received anchor shape (3, 4), positive shape (3, 4), negative shape (4,)"),
    "triplet-shape": (lambda: F.triplet_margin_loss(cs.ones(3, 4), cs.ones(3, 4), cs.ones(3, 5)),
                      "triplet_margin_loss: expected anchor, positive, negative of shapes that broadcast together, "
                      "received anchor shape (3, 4), positive shape (3, 4), negative shape (3, 5)"),
    "triplet-margin": (lambda: F.triplet_margin_loss(cs.ones(3), cs.ones(3), cs.ones(3), margin=0),
                       "triplet_margin_loss: invalid value for argument `margin`: expected a number > 0, received 0.0"),
    "triplet-reduction": (lambda: F.triplet_margin_loss(cs.ones(3), cs.ones(3), cs.ones(3), reduction="avg"),
                          "triplet_margin_loss: invalid value for argument `reduction`: expected 'mean', 'sum' or "
                          "'none', received 'avg'"),
    "ranking-rank": (lambda: F.margin_ranking_loss(cs.ones(3, 4), cs.ones(4), cs.ones(3, 4)),
                     "margin_ranking_loss: expected input1, input2, target of the same number of dimensions, received "
                     "input1 shape (3, 4), input2 shape (4,), target shape (3, 4)"),
    "ranking-shape": (lambda: F.margin_ranking_loss(cs.ones(3), cs.ones(3), cs.ones(2)),
                      "margin_ranking_loss: expected input1, input2, target of shapes that broadcast together, "
                      "received input1 shape (3,), input2 shape (3,), target shape (2,)"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors_are_pinned(case):
    call, message = ERRORS[case]
    with pytest.raises(ValueError) as error:
        call()
    assert str(error.value) == message


def test_docstring_examples_run():
    module = importlib.import_module("convstack.nn.functional.loss_metric")
    result = doctest.testmod(module, extraglobs={"cs": cs, "F": F}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
