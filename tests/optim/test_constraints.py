"""Max-norm constraint: matches torch.renorm, leaves small units alone, runs after each step through the hook."""

from __future__ import annotations

import numpy as np
import pytest

import convstack as cs
from convstack import optim

torch = pytest.importorskip("torch")


def unit_norms(array, dim=0, p=2.0):
    moved = np.moveaxis(array, dim, 0).reshape(array.shape[dim], -1)
    return np.linalg.norm(moved, ord=p, axis=1)


@pytest.mark.parametrize("shape, dim", [((6, 5), 0), ((4, 3, 3, 3), 0), ((3, 4, 2, 2), 1), ((5, 2, 3), -1)])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_matches_torch_renorm(shape, dim, norm_type):
    rng = np.random.default_rng(0)
    array = rng.standard_normal(shape) * rng.uniform(0.1, 2.0, size=(shape[dim],) + (1,) * (len(shape) - 1)).reshape(
        [shape[dim] if axis == dim % len(shape) else 1 for axis in range(len(shape))])
    c = float(np.median(unit_norms(array, dim, norm_type)))
    weight = cs.tensor(array, requires_grad=True)
    optim.apply_max_norm_([weight], c, dim=dim, norm_type=norm_type)
    expected = torch.renorm(torch.tensor(array), norm_type, dim, c).numpy()
    np.testing.assert_allclose(weight.data, expected, rtol=1e-12, atol=1e-12)
    assert unit_norms(weight.data, dim, norm_type).max() <= c * (1 + 1e-9)
    small = unit_norms(array, dim, norm_type) <= c
    assert small.any() and (~small).any()
    np.testing.assert_array_equal(np.take(weight.data, np.flatnonzero(small), axis=dim),
                                  np.take(array, np.flatnonzero(small), axis=dim))


def test_biases_are_left_alone_and_arrays_kept():
    weight = cs.tensor(np.full((3, 4), 5.0), requires_grad=True)
    bias = cs.tensor(np.full(3, 5.0), requires_grad=True)
    array = weight.data
    optim.MaxNorm(2.0)([weight, bias])
    assert weight.data is array
    np.testing.assert_allclose(unit_norms(weight.data), 2.0 * 10.0 / (10.0 + 1e-7))
    np.testing.assert_array_equal(bias.data, np.full(3, 5.0))


def test_attach_runs_after_every_step():
    rng = np.random.default_rng(0)
    weight = cs.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    bias = cs.tensor(np.zeros(4), requires_grad=True)
    opt = optim.SGD([weight, bias], lr=1.0)
    handle = optim.MaxNorm(1.0).attach(opt)
    for _ in range(3):
        weight.grad = cs.tensor(rng.standard_normal((4, 3)) * 3)
        bias.grad = cs.tensor(np.full(4, -10.0))
        opt.step()
        assert unit_norms(weight.data).max() <= 1.0
    np.testing.assert_array_equal(bias.data, np.full(4, 30.0))
    handle.remove()
    weight.grad = cs.tensor(np.full((4, 3), -10.0))
    opt.step()
    assert unit_norms(weight.data).max() > 1.0


def test_module_and_bad_arguments():
    nn = cs.nn
    if hasattr(nn, "Linear"):
        layer = nn.Linear(8, 3)
        with cs.no_grad():
            layer.weight.data *= 100
        optim.apply_max_norm_(layer, 0.5)
        assert unit_norms(layer.weight.data).max() <= 0.5
    with pytest.raises(ValueError, match="MaxNorm: .*`max_norm`: expected a number > 0, received 0"):
        optim.MaxNorm(0)
    with pytest.raises(ValueError, match="`dim`: expected a dimension of the 2-D weight, received 2"):
        optim.apply_max_norm_([cs.tensor(np.ones((2, 2)))], 1.0, dim=2)
