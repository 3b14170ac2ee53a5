"""LambdaLR, MultiplicativeLR, CyclicLR, CosineAnnealingWarmRestarts and SWALR against torch.optim: rates and
momenta step by step (fractional epochs too), state dicts through JSON, argument errors."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

import convstack as cs
from convstack import optim
from convstack.optim import lr_scheduler, swa_utils

torch = pytest.importorskip("torch")

STEPS = 30
GROUP_LRS = (0.1, 0.02)


def optimizers(name="SGD", **options):
    """The same two-group optimizer in convstack and in torch."""
    def groups(tensor):
        return [{"params": [tensor([1.0], requires_grad=True)], "lr": lr} for lr in GROUP_LRS]

    options = {"lr": 0.1, **options}
    ours = getattr(optim, name)(groups(cs.tensor), **options)
    return ours, getattr(torch.optim, name)(groups(torch.tensor), **options)


def momenta(optimizer):
    return [g["betas"][0] if "betas" in g else g.get("momentum") for g in optimizer.param_groups]


def trace(scheduler, optimizer, steps, epochs=None):
    """Rates and momenta after construction and after each ``step()`` (or ``step(epoch)``)."""
    rows = [(list(scheduler.get_last_lr()), momenta(optimizer))]
    for step in range(steps):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about step order and the epoch argument
            scheduler.step() if epochs is None or epochs[step] is None else scheduler.step(epochs[step])
        assert list(scheduler.get_last_lr()) == [g["lr"] for g in optimizer.param_groups]
        rows.append((list(scheduler.get_last_lr()), momenta(optimizer)))
    return rows


def assert_same(ours, theirs):
    assert len(ours) == len(theirs)
    for step, ((lr, mom), (their_lr, their_mom)) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(lr, their_lr, rtol=1e-9, atol=1e-15, err_msg=f"lr at step {step}")
        if their_mom[0] is not None:
            np.testing.assert_allclose(mom, their_mom, rtol=1e-9, atol=1e-15, err_msg=f"momentum at step {step}")


class Warmup:
    """A callable object (not a function): its attributes are part of the scheduler's state dict."""

    def __init__(self, epochs):
        self.epochs = epochs

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.epochs)


def half_life(epoch):
    return 0.5 ** (epoch / 10)


SCHEDULES = [
    ("LambdaLR", {"lr_lambda": half_life}, {}),
    ("LambdaLR", {"lr_lambda": [Warmup(5), lambda epoch: 1 / (1 + epoch)]}, {}),
    ("MultiplicativeLR", {"lr_lambda": lambda epoch: 0.9 if epoch % 3 else 1.05}, {}),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 4}, {"momentum": 0.9}),
    ("CyclicLR", {"base_lr": [0.01, 0.001], "max_lr": [0.1, 0.05], "step_size_up": 3, "step_size_down": 7,
                  "mode": "triangular2"}, {"momentum": 0.9}),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 5, "mode": "exp_range", "gamma": 0.95,
                  "base_momentum": 0.7, "max_momentum": 0.95}, {"momentum": 0.9}),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2, "scale_fn": lambda x: 1 / (1 + x),
                  "scale_mode": "iterations", "cycle_momentum": False}, {}),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 6, "scale_fn": lambda x: 0.8**x}, {"momentum": 0.5}),
    ("CosineAnnealingWarmRestarts", {"T_0": 7}, {}),
    ("CosineAnnealingWarmRestarts", {"T_0": 3, "T_mult": 2, "eta_min": 0.001}, {}),
]


@pytest.mark.parametrize("name, options, optimizer_options", SCHEDULES, ids=[
    f"{n}-{'-'.join(str(v) for v in o.values() if not callable(v) and not isinstance(v, list))}"
    for n, o, _ in SCHEDULES])
def test_matches_torch(name, options, optimizer_options):
    ours, theirs = optimizers(**optimizer_options)
    ours_rows = trace(getattr(lr_scheduler, name)(ours, **options), ours, STEPS)
    theirs_rows = trace(getattr(torch.optim.lr_scheduler, name)(theirs, **options), theirs, STEPS)
    assert_same(ours_rows, theirs_rows)


def test_cyclic_lr_cycles_adam_beta1():
    ours, theirs = optimizers("Adam", betas=(0.9, 0.99))
    options = {"base_lr": 0.001, "max_lr": 0.01, "step_size_up": 5, "base_momentum": 0.85, "max_momentum": 0.95}
    assert_same(trace(lr_scheduler.CyclicLR(ours, **options), ours, STEPS),
                trace(torch.optim.lr_scheduler.CyclicLR(theirs, **options), theirs, STEPS))
    assert ours.param_groups[0]["betas"][1] == 0.99


@pytest.mark.parametrize("T_mult", [1, 2, 3])
def test_warm_restarts_stepped_by_fractional_epochs_match_torch(T_mult):  # noqa: N803
    """``scheduler.step(epoch + i / iterations)`` after each batch, then an interleaved jump and plain steps."""
    epochs = [e + i / 4 for e in range(7) for i in range(4)] + [26, None, None, 3.5, None]
    ours, theirs = optimizers()
    options = {"T_0": 2, "T_mult": T_mult, "eta_min": 0.002}
    assert_same(trace(lr_scheduler.CosineAnnealingWarmRestarts(ours, **options), ours, len(epochs), epochs),
                trace(torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(theirs, **options), theirs, len(epochs),
                      epochs))


@pytest.mark.parametrize("options", [{"swa_lr": 0.05}, {"swa_lr": [0.05, 0.01], "anneal_epochs": 4,
                                                         "anneal_strategy": "linear"},
                                     {"swa_lr": 0.2, "anneal_epochs": 0}])
def test_swalr_matches_torch(options):
    ours, theirs = optimizers()
    assert_same(trace(swa_utils.SWALR(ours, **options), ours, 15),
                trace(torch.optim.swa_utils.SWALR(theirs, **options), theirs, 15))


def test_swalr_after_a_decay_anneals_from_where_the_rate_is():
    ours, theirs = optimizers()
    ours_decay, theirs_decay = lr_scheduler.StepLR(ours, 2, 0.5), torch.optim.lr_scheduler.StepLR(theirs, 2, 0.5)
    trace(ours_decay, ours, 5), trace(theirs_decay, theirs, 5)
    assert_same(trace(swa_utils.SWALR(ours, swa_lr=0.03, anneal_epochs=3), ours, 8),
                trace(torch.optim.swa_utils.SWALR(theirs, swa_lr=0.03, anneal_epochs=3), theirs, 8))


def build(name, optimizer, warmup):
    if name == "LambdaLR":
        return lr_scheduler.LambdaLR(optimizer, [warmup, half_life])
    if name == "CyclicLR":
        return lr_scheduler.CyclicLR(optimizer, 0.01, 0.1, step_size_up=3, mode="triangular2")
    if name == "CosineAnnealingWarmRestarts":
        return lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=3, T_mult=2)
    return swa_utils.SWALR(optimizer, swa_lr=0.05, anneal_epochs=4)


@pytest.mark.parametrize("name", ["LambdaLR", "CyclicLR", "CosineAnnealingWarmRestarts", "SWALR"])
def test_state_dict_round_trips_through_json_then_continues(name):
    straight_opt, _ = optimizers(momentum=0.9)
    straight = trace(build(name, straight_opt, Warmup(6)), straight_opt, STEPS)

    first_opt, _ = optimizers(momentum=0.9)
    first_warmup = Warmup(6)
    first = build(name, first_opt, first_warmup)
    trace(first, first_opt, 10)
    saved_opt = json.loads(json.dumps(first_opt.state_dict()))
    saved_sched = json.loads(json.dumps(first.state_dict()))

    resumed_opt, _ = optimizers(momentum=0.9)
    resumed_warmup = Warmup(1)  # its attribute comes back from the state dict
    resumed = build(name, resumed_opt, resumed_warmup)
    resumed.load_state_dict(saved_sched)
    resumed_opt.load_state_dict(saved_opt)
    assert trace(resumed, resumed_opt, STEPS - 10) == straight[10:]
    if name == "LambdaLR":
        assert resumed_warmup.epochs == 6 and saved_sched["lr_lambdas"] == [{"epochs": 6}, None]


@pytest.mark.parametrize("make, kind, message", [
    (lambda o: lr_scheduler.LambdaLR(o, [half_life]), ValueError,
     "LambdaLR: invalid value for argument `lr_lambda`: expected a function, or one function per parameter group "
     "(2), received 'a list of 1'"),
    (lambda o: lr_scheduler.LambdaLR(o, 0.5), TypeError, "LambdaLR: lr_lambda should be a function, but got float"),
    (lambda o: lr_scheduler.CyclicLR(o, 0.01, 0.1, mode="cosine"), ValueError,
     "CyclicLR: invalid value for argument `mode`: expected 'triangular', 'triangular2' or 'exp_range' (or a "
     "scale_fn), received 'cosine'"),
    (lambda o: lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_up=0), ValueError,
     "CyclicLR: invalid value for argument `step_size_up`: expected a positive number of steps, received 0"),
    (lambda o: lr_scheduler.CyclicLR(o, 0.01, [0.1, 0.2, 0.3]), ValueError,
     "CyclicLR: invalid value for argument `max_lr`: expected one value per parameter group (2), received "
     "[0.1, 0.2, 0.3]"),
    (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=0), ValueError,
     "CosineAnnealingWarmRestarts: invalid value for argument `T_0`: expected a positive integer, received 0"),
    (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=1.5), ValueError,
     "CosineAnnealingWarmRestarts: invalid value for argument `T_mult`: expected an integer >= 1, received 1.5"),
    (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=5).step(-1), ValueError,
     "CosineAnnealingWarmRestarts.step: invalid value for argument `epoch`: expected a non-negative number, "
     "received -1"),
    (lambda o: swa_utils.SWALR(o, 0.05, anneal_strategy="exp"), ValueError,
     "SWALR: invalid value for argument `anneal_strategy`: expected 'cos' or 'linear', received 'exp'"),
    (lambda o: swa_utils.SWALR(o, 0.05, anneal_epochs=-1), ValueError,
     "SWALR: invalid value for argument `anneal_epochs`: expected an integer >= 0, received -1"),
])
def test_bad_arguments(make, kind, message):
    ours, _ = optimizers()
    with pytest.raises(kind, match=re.escape(message)):
        make(ours)


def test_cyclic_lr_needs_momentum_to_cycle_it():
    plain = optim.Adagrad([cs.tensor([1.0], requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match=re.escape("CyclicLR: invalid value for argument `cycle_momentum`: expected "
                                                   "False for an optimizer without momentum or betas, received True "
                                                   "(Adagrad)")):
        lr_scheduler.CyclicLR(plain, 0.01, 0.1)
    scheduler = lr_scheduler.CyclicLR(plain, 0.01, 0.1, step_size_up=2, cycle_momentum=False)
    for _ in range(2):
        scheduler.step()
    assert scheduler.get_last_lr() == pytest.approx([0.1])
