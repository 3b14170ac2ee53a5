"""Weight-decay parameter groups and the L1 / L2 / elastic-net penalties (values and finite-difference gradients)."""

from __future__ import annotations

import numpy as np
import pytest
from tests.helpers import check_gradients

import convstack as cs
from convstack import optim


class TinyModel:
    """A stand-in with ``named_parameters()``: a conv, a batch norm and a linear head."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.named = [
            ("conv.weight", cs.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)),
            ("conv.bias", cs.tensor(rng.standard_normal(4), requires_grad=True)),
            ("bn.weight", cs.tensor(np.ones(4), requires_grad=True)),
            ("bn.bias", cs.tensor(np.zeros(4), requires_grad=True)),
            ("head.weight", cs.tensor(rng.standard_normal((2, 4)), requires_grad=True)),
            ("head.bias", cs.tensor(np.zeros(2), requires_grad=True)),
            ("frozen.weight", cs.tensor(np.ones((2, 2)))),
            ("pos_embed", cs.tensor(rng.standard_normal((1, 4, 2)), requires_grad=True)),
        ]

    def named_parameters(self):
        return iter(self.named)

    def parameters(self):
        return (p for _, p in self.named)


def names(model, params):
    lookup = {id(p): n for n, p in model.named_parameters()}
    return [lookup[id(p)] for p in params]


def test_param_groups_exclude_biases_and_norms():
    model = TinyModel()
    no_decay, decay = optim.param_groups_weight_decay(model, 5e-4)
    assert no_decay["weight_decay"] == 0.0 and decay["weight_decay"] == 5e-4
    assert names(model, no_decay["params"]) == ["conv.bias", "bn.weight", "bn.bias", "head.bias"]
    assert names(model, decay["params"]) == ["conv.weight", "head.weight", "pos_embed"]


def test_param_groups_skip_list_by_name_and_prefix():
    model = TinyModel()
    no_decay, decay = optim.param_groups_weight_decay(model, 1e-2, skip_list=("pos_embed", "head"))
    assert names(model, decay["params"]) == ["conv.weight"]
    assert "pos_embed" in names(model, no_decay["params"]) and "head.weight" in names(model, no_decay["params"])


def test_param_groups_feed_an_optimizer():
    model = TinyModel()
    opt = optim.SGD(optim.param_groups_weight_decay(model, 0.1), lr=1.0)
    for _, p in model.named_parameters():
        p.grad = cs.zeros_like(p, dtype=p.dtype)
    before = {n: p.data.copy() for n, p in model.named_parameters()}
    opt.step()
    params = dict(model.named_parameters())
    np.testing.assert_allclose(params["conv.weight"].data, before["conv.weight"] * 0.9)  # decayed
    np.testing.assert_array_equal(params["conv.bias"].data, before["conv.bias"])  # not decayed


def test_param_groups_with_real_modules():
    nn = cs.nn
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 2))
    no_decay, decay = optim.param_groups_weight_decay(model, 1e-4)
    assert [p.shape for p in decay["params"]] == [(4, 3, 3, 3), (2, 16)]
    assert [p.shape for p in no_decay["params"]] == [(4,), (2,)]


def test_param_groups_bad_weight_decay():
    with pytest.raises(ValueError, match="param_groups_weight_decay: .*`weight_decay`.*received -1"):
        optim.param_groups_weight_decay(TinyModel(), -1)


def numpy_penalties(arrays, l1, l2):
    return l1 * sum(np.abs(a).sum() for a in arrays) + l2 * 0.5 * sum((a * a).sum() for a in arrays)


@pytest.mark.parametrize("kind", ["l1", "l2", "elastic"])
def test_penalty_values_and_gradients(kind):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((3, 2)) + 0.1, rng.standard_normal(4) + 0.1]  # away from |w|'s kink at 0
    l1, l2 = {"l1": (0.3, 0.0), "l2": (0.0, 0.7), "elastic": (0.3, 0.7)}[kind]

    def penalty(*params):
        if kind == "l1":
            return optim.l1_penalty(params, l1)
        if kind == "l2":
            return optim.l2_penalty(params, l2)
        return optim.elastic_net_penalty(params, l1, l2)

    value = penalty(*[cs.tensor(a) for a in arrays])
    assert value.shape == ()
    np.testing.assert_allclose(float(value), numpy_penalties(arrays, l1, l2), rtol=1e-12)
    check_gradients(penalty, arrays)
    params = [cs.tensor(a, requires_grad=True) for a in arrays]
    penalty(*params).backward()
    for p, a in zip(params, arrays):
        np.testing.assert_allclose(p.grad.numpy(), l1 * np.sign(a) + l2 * a, rtol=1e-12)


def test_l2_penalty_is_sgd_weight_decay():
    a = np.array([[1.0, -2.0], [0.5, 3.0]])
    p, q = cs.tensor(a, requires_grad=True), cs.tensor(a, requires_grad=True)
    optim.l2_penalty([p], 0.1).backward()
    optim.SGD([p], lr=0.5).step()
    q.grad = cs.zeros_like(q, dtype=q.dtype)
    optim.SGD([q], lr=0.5, weight_decay=0.1).step()
    np.testing.assert_allclose(p.data, q.data, rtol=1e-15)


def test_penalties_accept_a_module_and_empty_lists():
    model = TinyModel()
    expected = sum(np.abs(p.data).sum() for p in model.parameters())
    np.testing.assert_allclose(float(optim.l1_penalty(model, 1.0)), expected)
    assert float(optim.l2_penalty([], 1.0)) == 0.0
    with pytest.raises(ValueError, match="l1_penalty: .*`strength`.*received -0.5"):
        optim.l1_penalty(model, -0.5)
    with pytest.raises(TypeError, match="elastic_net_penalty"):
        optim.elastic_net_penalty([np.ones(2)], 0.1, 0.1)
