"""Every optimizer against torch.optim over 20 steps (float64, identical gradients), plus the Optimizer API."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

import convstack as cs
from convstack import optim

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (4,), (2, 3, 2)]
STEPS = 20

CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.1, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.1, "maximize": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.01, "nesterov": True, "maximize": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "maximize": True}),
    ("Adam", {"lr": 0.02, "betas": (0.5, 0.9), "eps": 1e-3, "weight_decay": 0.05, "amsgrad": True, "maximize": True}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.0, "maximize": True}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9}),
    ("RMSprop", {"lr": 0.01, "centered": True}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-4, "centered": True, "momentum": 0.5, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01, "maximize": True, "weight_decay": 0.01}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05}),
    ("Adagrad", {"lr": 0.1, "weight_decay": 0.1, "initial_accumulator_value": 0.5}),
    ("Adagrad", {"lr": 0.1, "eps": 1e-3, "lr_decay": 0.01, "maximize": True}),
]


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in SHAPES]


def gradients(step, arrays):
    """A gradient depending on the parameters (of 0.5 * sum(a * p ** 2) + b . p) with fresh noise each step;
    the last parameter gets none on odd steps (it must then be skipped)."""
    rng = np.random.default_rng(100 + step)
    grads = [rng.uniform(0.5, 2.0, a.shape) * a + rng.standard_normal(a.shape) for a in arrays]
    if step % 2:
        grads[-1] = None
    return grads


def run_convstack(name, options, steps=STEPS, params=None, optimizer=None):
    params = params or [cs.tensor(a, requires_grad=True) for a in make_params()]
    optimizer = optimizer or getattr(optim, name)(params, **options)
    for step in range(steps):
        for p, g in zip(params, gradients(step, [p.data for p in params])):
            p.grad = None if g is None else cs.tensor(g)
        optimizer.step()
    return params, optimizer


def run_torch(name, options, steps=STEPS):
    params = [torch.tensor(a, requires_grad=True) for a in make_params()]
    optimizer = getattr(torch.optim, name)(params, **options)
    for step in range(steps):
        for p, g in zip(params, gradients(step, [p.detach().numpy() for p in params])):
            p.grad = None if g is None else torch.tensor(g)
        optimizer.step()
    return params, optimizer


@pytest.mark.parametrize("name, options", CASES, ids=[f"{n}-{'-'.join(o)}" for n, o in CASES])
def test_matches_torch(name, options):
    ours, our_opt = run_convstack(name, options)
    theirs, their_opt = run_torch(name, options)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-6, atol=1e-6)
    their_state = their_opt.state_dict()["state"]
    for index, state in our_opt.state_dict()["state"].items():
        for key, value in state.items():
            expected = their_state[index][key]
            expected = expected.item() if expected.ndim == 0 else expected.numpy()
            np.testing.assert_allclose(value, expected, rtol=1e-6, atol=1e-6, err_msg=key)


def test_updates_in_place_and_buffers_allocated_once():
    params = [cs.tensor(a, requires_grad=True) for a in make_params()]
    arrays = [p.data for p in params]
    opt = optim.Adam(params, lr=0.1, amsgrad=True)
    run_convstack("Adam", {}, steps=1, params=params, optimizer=opt)
    buffers = {key: id(value) for key, value in opt.state[params[0]].items() if key != "step"}
    run_convstack("Adam", {}, steps=3, params=params, optimizer=opt)
    assert all(p.data is a for p, a in zip(params, arrays))
    assert {key: id(opt.state[params[0]][key]) for key in buffers} == buffers


def test_float32_parameters_stay_float32():
    p = cs.tensor(np.ones((2, 2), dtype=np.float32), requires_grad=True)
    opt = optim.RMSprop([p], lr=0.1, momentum=0.9, centered=True)
    p.grad = cs.tensor(np.full((2, 2), 0.5, dtype=np.float32))
    opt.step()
    assert p.dtype == np.float32 and opt.state[p]["square_avg"].dtype == np.float32


def test_param_groups_have_their_own_options():
    arrays = make_params()
    ours = [cs.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    our_opt = optim.SGD([{"params": ours[:1], "lr": 0.5}, {"params": ours[1:]}], lr=0.1, momentum=0.9)
    their_opt = torch.optim.SGD([{"params": theirs[:1], "lr": 0.5}, {"params": theirs[1:]}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in our_opt.param_groups] == [0.5, 0.1]
    assert our_opt.param_groups[0]["momentum"] == 0.9
    for step in range(5):
        grads = gradients(step, arrays)
        for p, q, g in zip(ours, theirs, grads):
            p.grad = None if g is None else cs.tensor(g)
            q.grad = None if g is None else torch.tensor(g)
        our_opt.step()
        their_opt.step()
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-6, atol=1e-6)


def to_files(state_dict):
    """What a checkpoint writer does: arrays to an .npz, everything else to JSON; then read both back."""
    arrays, meta = {}, {"param_groups": state_dict["param_groups"], "state": {}}
    for index, state in state_dict["state"].items():
        meta["state"][index] = {}
        for key, value in state.items():
            if isinstance(value, np.ndarray):
                arrays[f"{index}/{key}"] = value
            else:
                meta["state"][index][key] = value
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    loaded_meta = json.loads(json.dumps(meta))
    with np.load(buffer, allow_pickle=False) as loaded:
        for name in loaded.files:
            index, key = name.split("/")
            loaded_meta["state"][index][key] = loaded[name]
    return loaded_meta


@pytest.mark.parametrize("name, options", [
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05}),
])
def test_state_dict_round_trip_then_continue(name, options):
    straight, _ = run_convstack(name, options, steps=STEPS)
    first, first_opt = run_convstack(name, options, steps=STEPS // 2)
    saved = to_files(first_opt.state_dict())
    resumed = [cs.tensor(p.data.copy(), requires_grad=True) for p in first]
    other = dict(options, lr=123.0)  # hyperparameters come back from the state dict
    resumed_opt = getattr(optim, name)(resumed, **other)
    resumed_opt.load_state_dict(saved)
    assert resumed_opt.param_groups[0]["lr"] == options["lr"]
    # continue with the same gradient sequence from step STEPS // 2
    for step in range(STEPS // 2, STEPS):
        for p, g in zip(resumed, gradients(step, [p.data for p in resumed])):
            p.grad = None if g is None else cs.tensor(g)
        resumed_opt.step()
    for p, q in zip(resumed, straight):
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_is_a_copy_with_index_keys():
    params, opt = run_convstack("SGD", {"lr": 0.1, "momentum": 0.9}, steps=2)
    saved = opt.state_dict()
    assert sorted(saved["state"]) == [0, 1, 2]
    assert [g["params"] for g in saved["param_groups"]] == [[0, 1, 2]]
    before = saved["state"][0]["momentum_buffer"].copy()
    run_convstack("SGD", {}, steps=2, params=params, optimizer=opt)
    np.testing.assert_array_equal(saved["state"][0]["momentum_buffer"], before)


def test_load_state_dict_rejects_mismatched_groups():
    _, opt = run_convstack("SGD", {"lr": 0.1}, steps=1)
    other = optim.SGD([cs.tensor([1.0], requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="doesn't match the size"):
        other.load_state_dict(opt.state_dict())


def test_zero_grad():
    p = cs.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    (p * p).sum().backward()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), [0.0, 0.0])
    opt.zero_grad()
    assert p.grad is None


def test_closure_and_hooks():
    p = cs.tensor([1.0, -2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.25)
    calls = []

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    opt.register_step_pre_hook(lambda o, args, kwargs: calls.append(("pre", p.data.tolist())))
    handle = opt.register_step_post_hook(lambda o, args, kwargs: calls.append(("post", p.data.tolist())))
    loss = opt.step(closure)
    assert float(loss) == 5.0
    np.testing.assert_allclose(p.data, [0.5, -1.0])
    assert calls == [("pre", [1.0, -2.0]), ("post", [0.5, -1.0])]
    handle.remove()
    opt.step(closure)
    assert [c[0] for c in calls] == ["pre", "post", "pre"]


def test_add_param_group_and_named_params():
    a, b = cs.tensor([1.0], requires_grad=True), cs.tensor([2.0], requires_grad=True)
    opt = optim.Adam([("a", a)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["a"]
    opt.add_param_group({"params": [("b", b)], "lr": 0.01})
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [("a", a)]})


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.SGD(p, lr=-0.1), "SGD: invalid value for argument `lr`: expected a number >= 0, received -0.1"),
    (lambda p: optim.SGD(p, momentum=-1), "argument `momentum`.*received -1"),
    (lambda p: optim.SGD(p, weight_decay=-1e-4), "argument `weight_decay`.*received -0.0001"),
    (lambda p: optim.SGD(p, nesterov=True), "argument `nesterov`.*received True \\(momentum=0, dampening=0\\)"),
    (lambda p: optim.SGD(p, momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.999)), "Adam: .*argument `betas`: expected a pair of numbers in \\[0, 1\\)"),
    (lambda p: optim.AdamW(p, betas=(0.9, -0.1)), "AdamW: .*`betas`"),
    (lambda p: optim.Adam(p, eps=-1.0), "`eps`.*-1.0"),
    (lambda p: optim.RMSprop(p, alpha=-0.5), "RMSprop: .*`alpha`.*-0.5"),
    (lambda p: optim.Adagrad(p, lr_decay=-1), "Adagrad: .*`lr_decay`"),
    (lambda p: optim.Adagrad(p, initial_accumulator_value=-1), "`initial_accumulator_value`"),
    (lambda p: optim.SGD([{"params": p, "lr": -1.0}], lr=0.1), "`lr`.*-1.0"),
])
def test_bad_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make([cs.tensor([1.0], requires_grad=True)])


def test_bad_params():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.SGD(cs.tensor([1.0], requires_grad=True), lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        optim.SGD([np.zeros(2)], lr=0.1)
    leaf = cs.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([leaf * 2], lr=0.1)


def test_adamw_stays_decoupled_after_loading_adam_state():
    _, adam = run_convstack("Adam", {"lr": 0.01}, steps=2)
    adamw = optim.AdamW([cs.tensor(a, requires_grad=True) for a in make_params()])
    adamw.load_state_dict(adam.state_dict())
    assert all(group["decoupled_weight_decay"] for group in adamw.param_groups)


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.01),
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
        lambda ps: optim.Adam(ps, lr=0.1),
    ],
)
def test_updates_write_into_the_parameter_and_state_arrays(make):
    """An update changes the parameter's own array (a model holding views of it sees the step) and reuses
    its state buffers instead of allocating new ones every step."""
    p = cs.nn.Parameter(cs.tensor([1.0, -2.0, 3.0]))
    array = p.data
    opt = make([p])
    buffers = None
    for _ in range(3):
        p.grad = cs.tensor([0.5, 0.5, -1.0])
        before = array.copy()
        opt.step()
        assert p.data is array and not np.array_equal(array, before)
        state = {k: id(v) for k, v in opt.state[p].items() if isinstance(v, np.ndarray)}
        assert buffers is None or state == buffers
        buffers = state
