"""Every learning-rate schedule against torch.optim.lr_scheduler: the rates (and momenta) over 25+ steps."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

import convstack as cs
from convstack import optim
from convstack.optim import lr_scheduler

torch = pytest.importorskip("torch")

STEPS = 30
GROUP_LRS = (0.1, 0.02)


def optimizers(name="SGD", **options):
    """The same two-group optimizer in convstack and in torch."""
    def groups(lib, tensor):
        return [{"params": [tensor([1.0], requires_grad=True)], "lr": lr} for lr in GROUP_LRS]

    options = {"lr": 0.1, **options}
    ours = getattr(optim, name)(groups(cs, cs.tensor), **options)
    theirs = getattr(torch.optim, name)(groups(torch, torch.tensor), **options)
    return ours, theirs


def momenta(optimizer):
    return [g["betas"][0] if "betas" in g else g.get("momentum") for g in optimizer.param_groups]


def trace(scheduler, optimizer, steps, metrics=None):
    """Rates, momenta and get_last_lr() after construction and after each step."""
    rows = [(list(scheduler.get_last_lr()), momenta(optimizer))]
    for step in range(steps):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns that optimizer.step() was never called
            if metrics is None:
                scheduler.step()
            else:
                scheduler.step(metrics[step])
        assert list(scheduler.get_last_lr()) == [g["lr"] for g in optimizer.param_groups]
        rows.append((list(scheduler.get_last_lr()), momenta(optimizer)))
    return rows


def assert_same(ours, theirs):
    assert len(ours) == len(theirs)
    for step, ((lr, mom), (their_lr, their_mom)) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(lr, their_lr, rtol=1e-6, atol=1e-12, err_msg=f"lr at step {step}")
        if their_mom[0] is not None:
            np.testing.assert_allclose(mom, their_mom, rtol=1e-6, atol=1e-12, err_msg=f"momentum at step {step}")


SCHEDULES = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}, {}),
    ("MultiStepLR", {"milestones": [2, 5, 5, 9], "gamma": 0.3}, {}),
    ("ExponentialLR", {"gamma": 0.9}, {}),
    ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.001}, {}),
    ("CosineAnnealingLR", {"T_max": 30}, {}),
    ("LinearLR", {"start_factor": 0.2, "total_iters": 6}, {}),
    ("LinearLR", {"start_factor": 1.0, "end_factor": 0.1, "total_iters": 12}, {}),
    ("ConstantLR", {"factor": 0.5, "total_iters": 4}, {}),
    ("OneCycleLR", {"max_lr": [0.5, 1.0], "total_steps": STEPS}, {"momentum": 0.9}),
    ("OneCycleLR", {"max_lr": 0.3, "total_steps": STEPS, "anneal_strategy": "linear", "pct_start": 0.4},
     {"momentum": 0.9}),
    ("OneCycleLR", {"max_lr": 0.3, "epochs": 3, "steps_per_epoch": 10, "three_phase": True}, {"momentum": 0.9}),
    ("OneCycleLR", {"max_lr": 0.3, "total_steps": STEPS, "cycle_momentum": False, "div_factor": 10.0}, {}),
]


@pytest.mark.parametrize("name, options, optimizer_options", SCHEDULES,
                         ids=[f"{n}-{'-'.join(map(str, o.values()))}" for n, o, _ in SCHEDULES])
def test_matches_torch(name, options, optimizer_options):
    ours, theirs = optimizers(**optimizer_options)
    ours_rows = trace(getattr(lr_scheduler, name)(ours, **options), ours, STEPS)
    theirs_rows = trace(getattr(torch.optim.lr_scheduler, name)(theirs, **options), theirs, STEPS)
    assert_same(ours_rows, theirs_rows)


@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle_cycles_adam_beta1(three_phase):
    ours, theirs = optimizers("Adam", betas=(0.9, 0.99))
    options = {"max_lr": 0.01, "total_steps": 25, "three_phase": three_phase, "base_momentum": 0.8}
    ours_rows = trace(lr_scheduler.OneCycleLR(ours, **options), ours, 25)
    theirs_rows = trace(torch.optim.lr_scheduler.OneCycleLR(theirs, **options), theirs, 25)
    assert_same(ours_rows, theirs_rows)
    assert ours.param_groups[0]["betas"][1] == 0.99


def sequential(lib, optimizer):
    schedules = lib.optim.lr_scheduler if lib is torch else lr_scheduler
    warmup = schedules.LinearLR(optimizer, start_factor=0.1, total_iters=5)
    decay = schedules.CosineAnnealingLR(optimizer, T_max=10, eta_min=1e-4)
    steps = schedules.StepLR(optimizer, step_size=2, gamma=0.5)
    return schedules.SequentialLR(optimizer, schedulers=[warmup, decay, steps], milestones=[5, 15])


def test_sequential_warmup_then_cosine_matches_torch():
    ours, theirs = optimizers()
    assert_same(trace(sequential(cs, ours), ours, STEPS), trace(sequential(torch, theirs), theirs, STEPS))


def test_chained_schedules_compose_like_torch():
    ours, theirs = optimizers()
    ours_a, ours_b = lr_scheduler.StepLR(ours, 4, 0.5), lr_scheduler.ExponentialLR(ours, 0.95)
    schedules = torch.optim.lr_scheduler
    theirs_a, theirs_b = schedules.StepLR(theirs, 4, 0.5), schedules.ExponentialLR(theirs, 0.95)
    for _ in range(STEPS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours_a.step(), ours_b.step(), theirs_a.step(), theirs_b.step()
        np.testing.assert_allclose([g["lr"] for g in ours.param_groups], [g["lr"] for g in theirs.param_groups],
                                   rtol=1e-6)


METRICS = [1.0, 0.9, 0.91, 0.9, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85, 0.7, 0.70001, 0.71, 0.72, 0.73,
           0.74, 0.75, 0.6, 0.61, 0.62, 0.63, 0.64, 0.65, 0.66, 0.67, 0.68, 0.69, 0.7, 0.71]


@pytest.mark.parametrize("options, metrics", [
    ({"patience": 2}, METRICS),
    ({"patience": 1, "factor": 0.5, "threshold": 0.05, "cooldown": 2}, METRICS),
    ({"patience": 0, "factor": 0.5, "threshold_mode": "abs", "threshold": 0.01, "min_lr": [0.01, 0.005]}, METRICS),
    ({"mode": "max", "patience": 1, "factor": 0.3, "min_lr": 1e-3}, [-m for m in METRICS]),
    ({"mode": "max", "threshold_mode": "abs", "patience": 2, "cooldown": 1, "eps": 0.05}, [-m for m in METRICS]),
])
def test_reduce_on_plateau_matches_torch(options, metrics):
    ours, theirs = optimizers()
    ours_rows = trace(lr_scheduler.ReduceLROnPlateau(ours, **options), ours, len(metrics), metrics)
    theirs_rows = trace(torch.optim.lr_scheduler.ReduceLROnPlateau(theirs, **options), theirs, len(metrics), metrics)
    assert_same(ours_rows, theirs_rows)
    assert ours_rows[-1][0] != ours_rows[0][0]  # the sequence does trigger reductions


def test_reduce_on_plateau_accepts_a_tensor_metric():
    ours, _ = optimizers()
    scheduler = lr_scheduler.ReduceLROnPlateau(ours, patience=0)
    scheduler.step(cs.tensor(1.0))
    scheduler.step(cs.tensor(2.0))
    assert scheduler.get_last_lr() == pytest.approx([0.01, 0.002])


def build(kind, optimizer):
    if kind == "sequential":
        return sequential(cs, optimizer)
    if kind == "plateau":
        return lr_scheduler.ReduceLROnPlateau(optimizer, patience=1, cooldown=1)
    if kind == "onecycle":
        return lr_scheduler.OneCycleLR(optimizer, max_lr=0.5, total_steps=STEPS)
    return lr_scheduler.CosineAnnealingLR(optimizer, T_max=7)


@pytest.mark.parametrize("kind", ["sequential", "plateau", "onecycle", "cosine"])
@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_state_dict_round_trip_then_continue(kind, name):
    options = {"momentum": 0.9} if name == "SGD" else {}
    metrics = METRICS if kind == "plateau" else None
    straight_opt, _ = optimizers(name, **options)
    straight = trace(build(kind, straight_opt), straight_opt, STEPS, metrics)

    first_opt, _ = optimizers(name, **options)
    first = build(kind, first_opt)
    trace(first, first_opt, 10, metrics)
    saved_opt = json.loads(json.dumps(first_opt.state_dict()))
    saved_sched = json.loads(json.dumps(first.state_dict()))

    resumed_opt, _ = optimizers(name, **options)
    resumed = build(kind, resumed_opt)  # schedulers first, then the optimizer state (PyTorch's order)
    resumed.load_state_dict(saved_sched)
    resumed_opt.load_state_dict(saved_opt)
    rest = trace(resumed, resumed_opt, STEPS - 10, None if metrics is None else metrics[10:])
    assert rest == straight[10:]


@pytest.mark.parametrize("make, message", [
    (lambda o: lr_scheduler.StepLR(o, step_size=0), "StepLR: .*`step_size`: expected a positive integer, received 0"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=0), "`T_max`"),
    (lambda o: lr_scheduler.LinearLR(o, start_factor=0.0), "`start_factor`: expected a number in \\(0, 1\\]"),
    (lambda o: lr_scheduler.LinearLR(o, end_factor=1.5), "`end_factor`.*1.5"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0), "total_steps"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=2.0), "`pct_start`"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=[1.0], total_steps=10), "`max_lr`: expected one value per"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.0), "`factor`"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="up"), "`mode`: expected 'min' or 'max', received 'up'"),
    (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.StepLR(o, 2)], milestones=[3]), "`milestones`"),
])
def test_bad_arguments(make, message):
    ours, _ = optimizers()
    with pytest.raises(ValueError, match=message):
        make(ours)


def test_one_cycle_needs_momentum_and_stops_at_total_steps():
    plain = optim.Adagrad([cs.tensor([1.0], requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="cycle_momentum"):
        lr_scheduler.OneCycleLR(plain, max_lr=1.0, total_steps=5)
    scheduler = lr_scheduler.OneCycleLR(plain, max_lr=1.0, total_steps=3, cycle_momentum=False)
    for _ in range(2):
        scheduler.step()
    assert math.isclose(scheduler.get_last_lr()[0], 1.0 / 25 / 1e4)  # the last step of the cycle
    scheduler.step()  # one step past the end is allowed, as in PyTorch
    with pytest.raises(ValueError, match="total_steps=3"):
        scheduler.step()
