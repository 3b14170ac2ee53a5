"""Losses against PyTorch (values and gradients, every reduction and option), finite differences, errors."""

import doctest
import importlib
import re

import numpy as np
import pytest
from tests.helpers import check_against_torch, check_gradients

import convstack as cs
import convstack.nn.functional as F

REDUCTIONS = ["mean", "sum", "none"]
TOLERANCES = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
CLASSES = 4

# input shapes for class-index losses: unbatched, batched, 1-D and 2-D segmentation
CLASS_SHAPES = {"unbatched": (CLASSES,), "batched": (5, CLASSES), "1d": (3, CLASSES, 4), "2d": (2, CLASSES, 3, 3)}

# cross_entropy / nll_loss keyword options; ignore_index 2 is a real class, -100 marks two targets
CLASS_OPTIONS = {
    "plain": {},
    "weight": dict(weight=True),
    "ignore-default": dict(ignore_index=-100),
    "ignore-class": dict(ignore_index=2, weight=True),
    "smoothing": dict(label_smoothing=0.2),
    "everything": dict(weight=True, ignore_index=-100, label_smoothing=0.3),
}


def _torch():
    return pytest.importorskip("torch")


def _class_target(shape, rng, ignore_index=None):
    target = rng.integers(0, CLASSES, size=() if len(shape) == 1 else (shape[0],) + shape[2:])
    if ignore_index == -100 and target.ndim:
        target.reshape(-1)[:2] = -100
    return np.asarray(target, dtype=np.int64)


def _options(options, rng, dtype):
    """Keyword arguments for both libraries (weight as a constant tensor of each)."""
    options = dict(options)
    weight = rng.uniform(0.5, 2.0, CLASSES).astype(dtype) if options.pop("weight", False) else None
    torch = _torch()
    ours = dict(options, weight=None if weight is None else cs.tensor(weight))
    theirs = dict(options, weight=None if weight is None else torch.tensor(weight))
    return ours, theirs


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("option", CLASS_OPTIONS)
@pytest.mark.parametrize("shape", CLASS_SHAPES)
def test_cross_entropy_with_class_indices_matches_torch(shape, option, reduction, rng, dtype=np.float64):
    torch = _torch()
    shape, options = CLASS_SHAPES[shape], CLASS_OPTIONS[option]
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    target = _class_target(shape, rng, options.get("ignore_index"))
    ours, theirs = _options(options, rng, dtype)
    check_against_torch(
        lambda i, t: F.cross_entropy(i, t, reduction=reduction, **ours),
        lambda i, t: torch.nn.functional.cross_entropy(i, t, reduction=reduction, **theirs),
        [x, target],
        **TOLERANCES[dtype],
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("option", ["plain", "everything"])
@pytest.mark.parametrize("shape", CLASS_SHAPES)
def test_cross_entropy_with_probabilities_matches_torch(shape, option, reduction, rng, dtype=np.float64):
    torch = _torch()
    shape, options = CLASS_SHAPES[shape], dict(CLASS_OPTIONS[option])
    options.pop("ignore_index", None)
    x = rng.standard_normal(shape).astype(dtype)
    class_dim = 0 if len(shape) == 1 else 1
    target = rng.random(shape)
    target = (target / target.sum(axis=class_dim, keepdims=True)).astype(dtype)
    ours, theirs = _options(options, rng, dtype)
    check_against_torch(
        lambda i, t: F.cross_entropy(i, t, reduction=reduction, **ours),
        lambda i, t: torch.nn.functional.cross_entropy(i, t, reduction=reduction, **theirs),
        [x, target],
        **TOLERANCES[dtype],
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("option", ["plain", "ignore-default", "ignore-class"])
@pytest.mark.parametrize("shape", CLASS_SHAPES)
def test_nll_loss_matches_torch(shape, option, reduction, rng, dtype=np.float64):
    torch = _torch()
    shape, options = CLASS_SHAPES[shape], CLASS_OPTIONS[option]
    x = rng.standard_normal(shape).astype(dtype)
    target = _class_target(shape, rng, options.get("ignore_index"))
    ours, theirs = _options(options, rng, dtype)
    check_against_torch(
        lambda i, t: F.nll_loss(i, t, reduction=reduction, **ours),
        lambda i, t: torch.nn.functional.nll_loss(i, t, reduction=reduction, **theirs),
        [x, target],
        **TOLERANCES[dtype],
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", [False, True])
@pytest.mark.parametrize("p, margin", [(1, 1.0), (2, 1.0), (2, 2.5)])
@pytest.mark.parametrize("shape", ["unbatched", "batched"])
def test_multi_margin_loss_matches_torch(shape, p, margin, weight, reduction, rng, dtype=np.float64):
    torch = _torch()
    shape = CLASS_SHAPES[shape]
    x = rng.standard_normal(shape).astype(dtype)
    ours, theirs = _options(dict(weight=weight), rng, dtype)
    check_against_torch(
        lambda i, t: F.multi_margin_loss(i, t, p=p, margin=margin, reduction=reduction, **ours),
        lambda i, t: torch.nn.functional.multi_margin_loss(i, t, p=p, margin=margin, reduction=reduction, **theirs),
        [x, _class_target(shape, rng)],
        **TOLERANCES[dtype],
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
def test_regression_losses_match_torch(name, reduction, dtype, rng):
    torch = _torch()
    x, y = rng.standard_normal((2, 3, 4)).astype(dtype), rng.standard_normal((2, 3, 4)).astype(dtype)
    check_against_torch(
        lambda i, t: getattr(F, name)(i, t, reduction=reduction),
        lambda i, t: getattr(torch.nn.functional, name)(i, t, reduction=reduction),
        [x, y],
        **TOLERANCES[dtype],
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape", [None, (3, 1)])
@pytest.mark.parametrize("pos_weight", [False, True])
def test_bce_with_logits_matches_torch(pos_weight, weight_shape, reduction, dtype, rng):
    torch = _torch()
    x = (rng.standard_normal((3, 4)) * 4).astype(dtype)
    x[0, :2] = [60.0, -60.0]  # far into both tails: exp(-x) would overflow a naive form in float32
    target = rng.random((3, 4)).astype(dtype)
    options = {}
    if weight_shape is not None:
        options["weight"] = rng.uniform(0.5, 2, weight_shape).astype(dtype)
    if pos_weight:
        options["pos_weight"] = rng.uniform(0.5, 3, 4).astype(dtype)
    with np.errstate(over="raise"):
        check_against_torch(
            lambda i, t: F.binary_cross_entropy_with_logits(
                i, t, reduction=reduction, **{k: cs.tensor(v) for k, v in options.items()}
            ),
            lambda i, t: torch.nn.functional.binary_cross_entropy_with_logits(
                i, t, reduction=reduction, **{k: torch.tensor(v) for k, v in options.items()}
            ),
            [x, target],
            **TOLERANCES[dtype],
        )


FLOAT32_CASES = {
    "cross_entropy-segmentation": (
        "cross_entropy", dict(weight=True, ignore_index=-100, label_smoothing=0.1), (2, CLASSES, 3, 3)
    ),
    "cross_entropy-probabilities": ("cross_entropy", dict(weight=True, label_smoothing=0.1), (5, CLASSES)),
    "nll_loss": ("nll_loss", dict(weight=True, ignore_index=-100), (3, CLASSES, 4)),
    "multi_margin_loss": ("multi_margin_loss", dict(weight=True, p=2, margin=0.7), (5, CLASSES)),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", FLOAT32_CASES)
def test_class_losses_in_float32_match_torch(case, reduction, rng):
    torch = _torch()
    name, options, shape = FLOAT32_CASES[case]
    x = (rng.standard_normal(shape) * 2).astype(np.float32)
    if case.endswith("probabilities"):
        target = rng.dirichlet(np.ones(CLASSES), size=shape[0]).astype(np.float32)
    else:
        target = _class_target(shape, rng, options.get("ignore_index"))
    ours, theirs = _options(options, rng, np.float32)
    check_against_torch(
        lambda i, t: getattr(F, name)(i, t, reduction=reduction, **ours),
        lambda i, t: getattr(torch.nn.functional, name)(i, t, reduction=reduction, **theirs),
        [x, target],
        **TOLERANCES[np.float32],
    )


FINITE_DIFFERENCE_CASES = {
    "cross_entropy-everything": lambda i: F.cross_entropy(
        i, cs.tensor([[0, -100], [3, 1]]), weight=cs.tensor([1.0, 2.0, 0.5, 1.5]), label_smoothing=0.2
    ),
    "cross_entropy-probabilities": lambda i: F.cross_entropy(
        i, cs.tensor(np.full((2, 4, 2), 0.25)), label_smoothing=0.1, reduction="none"
    ),
    "cross_entropy-fused-op": lambda i: F.cross_entropy(  # no smoothing, reduced: the one-op path
        i, cs.tensor([[0, -100], [3, 3]]), weight=cs.tensor([1.0, 2.0, 0.5, 1.5])
    ),
    "nll_loss": lambda i: F.nll_loss(i, cs.tensor([[2, 0], [1, -100]]), weight=cs.tensor([1.0, 2.0, 0.5, 1.5])),
    "multi_margin_loss-p1": lambda i: F.multi_margin_loss(i[:, :, 0], cs.tensor([1, 3]), margin=0.5),
    "multi_margin_loss-p2": lambda i: F.multi_margin_loss(i[:, :, 0], cs.tensor([1, 3]), p=2, reduction="none"),
    "mse_loss": lambda i: F.mse_loss(i, cs.tensor(np.ones((2, 4, 2)))),
    "l1_loss": lambda i: F.l1_loss(i, cs.tensor(np.full((2, 4, 2), 3.0)), reduction="sum"),
    "bce_with_logits": lambda i: F.binary_cross_entropy_with_logits(
        i,
        cs.tensor(np.full((2, 4, 2), 0.3)),
        pos_weight=cs.tensor([2.0, 0.5]),
        weight=cs.tensor([[1.5], [1], [2], [1]]),
    ),
}


@pytest.mark.parametrize("case", FINITE_DIFFERENCE_CASES)
def test_finite_differences(case, rng):
    check_gradients(FINITE_DIFFERENCE_CASES[case], [rng.standard_normal((2, 4, 2))])


def test_bce_with_logits_target_gradient_by_finite_differences(rng):
    x = cs.tensor(rng.standard_normal((2, 3)))
    pos_weight = cs.tensor([0.5, 2.0, 1.0])
    check_gradients(lambda t: F.binary_cross_entropy_with_logits(x, t, pos_weight=pos_weight), [rng.random((2, 3))])


def test_cross_entropy_probability_target_gradient_by_finite_differences(rng):
    x = cs.tensor(rng.standard_normal((2, 3)))
    check_gradients(lambda t: F.cross_entropy(x, t, label_smoothing=0.1), [rng.random((2, 3))])


def test_cross_entropy_of_huge_logits_is_finite():
    loss = F.cross_entropy(cs.tensor([[1e4, -1e4, 0.0]]), cs.tensor([1]))
    np.testing.assert_allclose(loss.item(), 2e4, rtol=1e-6)


ERRORS = {
    "reduction": (lambda: F.mse_loss(cs.zeros(2), cs.zeros(2), reduction="avg"),
                  "mse_loss: invalid value for argument `reduction`: expected 'mean', 'sum' or 'none', received 'avg'"),
    "target-out-of-range": (lambda: F.cross_entropy(cs.zeros(2, 3), cs.tensor([0, 3])),
                            "cross_entropy: target 3 is out of bounds: expected class indices in [0, 3) or "
                            "ignore_index -100"),
    "target-negative": (lambda: F.nll_loss(cs.zeros(2, 3, 2), cs.tensor([[0, -1], [1, 2]])),
                        "nll_loss: target -1 is out of bounds: expected class indices in [0, 3) or ignore_index -100"),
    "margin-target-out-of-range": (lambda: F.multi_margin_loss(cs.zeros(2, 3), cs.tensor([5, 0])),
                                   "multi_margin_loss: target 5 is out of bounds: expected class indices in [0, 3)"),
    "target-shape": (lambda: F.cross_entropy(cs.zeros(2, 3, 4), cs.tensor([0, 1])),
                     "cross_entropy: expected target of shape (2, 4) (input without its class dimension), received "
                     "input shape (2, 3, 4), target shape (2,)"),
    "probability-shape": (lambda: F.cross_entropy(cs.zeros(2, 3), cs.zeros(2, 4)),
                          "cross_entropy: input and target must have the same shape, received input shape (2, 3), "
                          "target shape (2, 4)"),
    "weight-shape": (lambda: F.nll_loss(cs.zeros(2, 3), cs.tensor([0, 1]), weight=cs.ones(4)),
                     "nll_loss: expected weight of shape (3,) (one per class), received input shape (2, 3), "
                     "weight shape (4,)"),
    "label-smoothing": (lambda: F.cross_entropy(cs.zeros(2, 3), cs.tensor([0, 1]), label_smoothing=1.5),
                        "cross_entropy: invalid value for argument `label_smoothing`: expected a float in [0, 1], "
                        "received 1.5"),
    "margin-p": (lambda: F.multi_margin_loss(cs.zeros(2, 3), cs.tensor([0, 1]), p=3),
                 "multi_margin_loss: invalid value for argument `p`: expected 1 or 2, received 3"),
    "l1-shape": (lambda: F.l1_loss(cs.zeros(2, 3), cs.zeros(3)),
                 "l1_loss: input and target must have the same shape, received input shape (2, 3), target shape (3,)"),
    "bce-pos-weight": (lambda: F.binary_cross_entropy_with_logits(cs.zeros(2, 3), cs.ones(2, 3), pos_weight=cs.ones(2)),
                       "binary_cross_entropy_with_logits: pos_weight must broadcast to the input's shape, received "
                       "input shape (2, 3), pos_weight shape (2,)"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors(case):
    call, message = ERRORS[case]
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_float_class_target_of_index_shape_is_refused():
    with pytest.raises(ValueError, match=re.escape("cross_entropy: input and target must have the same shape")):
        F.cross_entropy(cs.zeros(2, 3), cs.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match="nll_loss: expected integer class indices as target, received dtype float32"):
        F.nll_loss(cs.zeros(2, 3), cs.tensor([0.0, 1.0]))


def test_docstring_examples_run():
    module = importlib.import_module("convstack.nn.functional.loss")
    result = doctest.testmod(module, extraglobs={"cs": cs, "F": F}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
