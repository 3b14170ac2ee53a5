"""Huber, smooth L1, binary cross-entropy on probabilities, KL divergence: against PyTorch (values, and the
gradients of input and target, every reduction and option), finite differences, the clamps at 0 and 1,
errors; cross-entropy on soft labels (MixUp/CutMix's mixed one-hots) with label smoothing."""

import contextlib
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


def _torch():
    return pytest.importorskip("torch")


def _array(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _probabilities(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).uniform(0.02, 0.98, shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name, option, value", [("smooth_l1_loss", "beta", 1.0), ("smooth_l1_loss", "beta", 0.4),
                                                 ("smooth_l1_loss", "beta", 0.0), ("huber_loss", "delta", 1.0),
                                                 ("huber_loss", "delta", 2.5)])
def test_huber_family_matches_torch(name, option, value, reduction, dtype):
    torch = _torch()
    x, target = _array((4, 6), 0, dtype) * 2, _array((4, 6), 1, dtype)
    check_against_torch(
        lambda i, t: getattr(F, name)(i, t, reduction=reduction, **{option: value}),
        lambda i, t: getattr(torch.nn.functional, name)(i, t, reduction=reduction, **{option: value}),
        [x, target], **TOLERANCES[dtype],
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", [None, "per-element", "per-class"])
def test_binary_cross_entropy_matches_torch(weight, reduction, dtype):
    torch = _torch()
    shape = (5, 3)
    weights = {None: None, "per-element": _probabilities(shape, 3, dtype) * 2,
               "per-class": _probabilities((3,), 4, dtype) * 2}[weight]
    check_against_torch(
        lambda p, t: F.binary_cross_entropy(p, t, None if weights is None else cs.tensor(weights),
                                            reduction=reduction),
        lambda p, t: torch.nn.functional.binary_cross_entropy(p, t, None if weights is None else torch.tensor(weights),
                                                              reduction=reduction),
        [_probabilities(shape, 0, dtype), _probabilities(shape, 1, dtype)], **TOLERANCES[dtype],
    )


def test_binary_cross_entropy_clamps_like_torch_at_zero_and_one():
    torch = _torch()
    p = np.array([0.0, 1e-30, 0.5, 1.0, 1.0, 0.0])
    t = np.array([0.0, 1.0, 0.3, 0.5, 1.0, 1.0])
    ours_p, ours_t = cs.tensor(p, requires_grad=True), cs.tensor(t, requires_grad=True)
    theirs_p, theirs_t = torch.tensor(p, requires_grad=True), torch.tensor(t, requires_grad=True)
    ours = F.binary_cross_entropy(ours_p, ours_t, reduction="none")
    theirs = torch.nn.functional.binary_cross_entropy(theirs_p, theirs_t, reduction="none")
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
    assert ours.detach().numpy().max() == 100.0
    ours.sum().backward(), theirs.sum().backward()
    np.testing.assert_allclose(ours_p.grad.numpy(), theirs_p.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours_t.grad.numpy(), theirs_t.grad.numpy(), rtol=1e-12)  # +-inf where p is 0 or 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none", "mean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(log_target, reduction, dtype):
    torch = _torch()
    logits = _array((4, 5), 0, dtype)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    target = _probabilities((4, 5), 1, dtype)
    target = target / target.sum(axis=1, keepdims=True)
    if log_target:
        target = np.log(target)
    warns = pytest.warns(UserWarning, match="batchmean") if reduction == "mean" else contextlib.nullcontext()
    with warns:
        check_against_torch(
            lambda i, t: F.kl_div(i, t, reduction=reduction, log_target=log_target),
            lambda i, t: torch.nn.functional.kl_div(i, t, reduction=reduction, log_target=log_target),
            [log_p.astype(dtype), target.astype(dtype)], **TOLERANCES[dtype],
        )


def test_kl_div_counts_zero_target_probabilities_as_zero():
    torch = _torch()
    x, t = np.log([[0.2, 0.3, 0.5]]), np.array([[0.0, 0.4, 0.6]])
    ours = F.kl_div(cs.tensor(x, requires_grad=True), cs.tensor(t), reduction="none")
    theirs = torch.nn.functional.kl_div(torch.tensor(x), torch.tensor(t), reduction="none")
    np.testing.assert_allclose(ours.detach().numpy(), theirs.numpy(), rtol=1e-12)
    assert ours.detach().numpy()[0, 0] == 0.0


FINITE_DIFFERENCES = {
    "smooth_l1": (lambda i, t: F.smooth_l1_loss(i, t, reduction="none", beta=0.7), _array, _array),
    "huber": (lambda i, t: F.huber_loss(i, t, reduction="sum", delta=0.6), _array, _array),
    "bce": (lambda p, t: F.binary_cross_entropy(p, t, reduction="none"), _probabilities, _probabilities),
    "kl_div": (lambda i, t: F.kl_div(i, t, reduction="batchmean"), _array, _probabilities),
    "kl_div-log-target": (lambda i, t: F.kl_div(i, t, reduction="none", log_target=True), _array, _array),
}


@pytest.mark.parametrize("name", FINITE_DIFFERENCES)
def test_finite_differences(name):
    fn, make_input, make_target = FINITE_DIFFERENCES[name]
    x, t = make_input((3, 4), 0), make_target((3, 4), 1)
    if name in ("smooth_l1", "huber"):  # keep |x - t| away from the joint of the two pieces
        joint = 0.7 if name == "smooth_l1" else 0.6
        near = np.abs(np.abs(x - t) - joint) < 1e-3
        x[near] += 0.01
    check_gradients(fn, [x, t])


def test_cross_entropy_takes_mixed_soft_labels_with_label_smoothing_as_torch():
    """What MixUp / CutMix give: lam * one_hot(a) + (1 - lam) * one_hot(b), rows summing to one."""
    torch = _torch()
    classes, lam = 5, 0.7
    a, b = np.array([0, 3, 4, 1]), np.array([2, 3, 0, 4])
    soft = (lam * np.eye(classes)[a] + (1 - lam) * np.eye(classes)[b]).astype(np.float32)
    for smoothing in (0.0, 0.1):
        check_against_torch(
            lambda x, t, s=smoothing: F.cross_entropy(x, t, label_smoothing=s),
            lambda x, t, s=smoothing: torch.nn.functional.cross_entropy(x, t, label_smoothing=s),
            [_array((4, classes), 2, np.float32), soft],
        )
    # the same loss as mixing the two hard-label losses (without smoothing)
    logits = cs.tensor(_array((4, classes), 2, np.float32))
    mixed = lam * F.cross_entropy(logits, cs.tensor(a)) + (1 - lam) * F.cross_entropy(logits, cs.tensor(b))
    np.testing.assert_allclose(F.cross_entropy(logits, cs.tensor(soft)).item(), mixed.item(), rtol=1e-5)


ERRORS = {
    "bce-outside": (
        lambda: F.binary_cross_entropy(cs.tensor([0.5, 1.5]), cs.tensor([1.0, 0.0])),
        "binary_cross_entropy: expected every element of input in [0, 1] (probabilities), received 1.5; for scores "
        "use binary_cross_entropy_with_logits",
    ),
    "bce-shape": (
        lambda: F.binary_cross_entropy(cs.tensor([0.5, 0.5]), cs.tensor([1.0])),
        "binary_cross_entropy: input and target must have the same shape, received input shape (2,), target shape "
        "(1,)",
    ),
    "smooth-l1-beta": (
        lambda: F.smooth_l1_loss(cs.zeros(2), cs.zeros(2), beta=-1.0),
        "smooth_l1_loss: invalid value for argument `beta`: expected a non-negative number, received -1.0",
    ),
    "huber-delta": (
        lambda: F.huber_loss(cs.zeros(2), cs.zeros(2), delta=0.0),
        "huber_loss: invalid value for argument `delta`: expected a positive number, received 0.0",
    ),
    "huber-reduction": (
        lambda: F.huber_loss(cs.zeros(2), cs.zeros(2), reduction="batchmean"),
        "huber_loss: invalid value for argument `reduction`: expected 'mean', 'sum' or 'none', received 'batchmean'",
    ),
    "kl-reduction": (
        lambda: F.kl_div(cs.zeros(2), cs.zeros(2), reduction="avg"),
        "kl_div: invalid value for argument `reduction`: expected 'batchmean', 'mean', 'sum' or 'none', received "
        "'avg'",
    ),
    "kl-log-target": (
        lambda: F.kl_div(cs.zeros(2), cs.zeros(2), log_target=1),
        "kl_div: invalid value for argument `log_target`: expected True or False, received 1",
    ),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors(case):
    call, message = ERRORS[case]
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


# (module, functional twin) over the same inputs
MODULES = [
    (lambda: cs.nn.BCELoss(reduction="sum"), lambda p, t: F.binary_cross_entropy(p, t, reduction="sum"), True),
    (lambda: cs.nn.HuberLoss(delta=0.5), lambda x, t: F.huber_loss(x, t, delta=0.5), False),
    (lambda: cs.nn.SmoothL1Loss("none", beta=0.5), lambda x, t: F.smooth_l1_loss(x, t, "none", 0.5), False),
    (lambda: cs.nn.KLDivLoss("batchmean", log_target=True), lambda x, t: F.kl_div(x, t, "batchmean", True), False),
]


@pytest.mark.parametrize("build, functional, probabilities", MODULES)
def test_modules_equal_functional_and_pytorch_repr(build, functional, probabilities):
    torch = _torch()
    make = _probabilities if probabilities else _array
    x, t = cs.tensor(make((3, 4), 0)), cs.tensor(make((3, 4), 1))
    layer = build()
    np.testing.assert_array_equal(layer(x, t).numpy(), functional(x, t).numpy())
    config = layer.get_config()
    theirs = getattr(torch.nn, type(layer).__name__)(**{k: v for k, v in config.items() if v is not None})
    assert repr(layer) == repr(theirs)
    assert type(layer)(**config).get_config() == config


def test_module_constructor_errors():
    with pytest.raises(ValueError, match=re.escape("KLDivLoss: invalid value for argument `reduction`: expected one "
                                                   "of 'none', 'batchmean', 'mean', 'sum', received 'avg'")):
        cs.nn.KLDivLoss("avg")
    with pytest.raises(ValueError, match=re.escape("HuberLoss: invalid value for argument `delta`: expected a "
                                                   "positive number, received 0")):
        cs.nn.HuberLoss(delta=0)


@pytest.mark.parametrize("module", ["regression_loss", "probability_loss"])
def test_docstring_examples_run(module):
    module = importlib.import_module(f"convstack.nn.functional.{module}")
    result = doctest.testmod(module, extraglobs={"cs": cs, "F": F}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
