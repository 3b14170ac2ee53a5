"""nn.init: gains, fans, and the statistics of every scheme (bounds and std within sampling tolerance)."""

import math

import numpy as np
import pytest

import convstack as cs
from convstack import nn
from convstack.nn import init


def weight(*shape):
    return nn.Parameter(cs.zeros(*shape))


def values(t):
    return t.detach().numpy().astype(np.float64)


@pytest.mark.parametrize("name, param, gain", [
    ("linear", None, 1.0), ("conv2d", None, 1.0), ("conv_transpose3d", None, 1.0), ("sigmoid", None, 1.0),
    ("tanh", None, 5 / 3), ("relu", None, math.sqrt(2)), ("leaky_relu", None, math.sqrt(2 / (1 + 0.01**2))),
    ("leaky_relu", 0.2, math.sqrt(2 / 1.04)), ("leaky_relu", math.sqrt(5), math.sqrt(1 / 3)), ("selu", None, 0.75),
])
def test_calculate_gain(name, param, gain):
    assert init.calculate_gain(name, param) == pytest.approx(gain)


def test_gain_and_fan_errors():
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="negative_slope 'a' not a valid number"):
        init.calculate_gain("leaky_relu", "a")
    with pytest.raises(ValueError, match=r"fewer than 2 dimensions, received shape \(5,\)"):
        init.calculate_fan_in_and_fan_out(cs.zeros(5))
    with pytest.raises(ValueError, match="kaiming_normal_: invalid value for argument `mode`"):
        init.kaiming_normal_(weight(2, 2), mode="fan_avg")


def test_fans():
    assert init.calculate_fan_in_and_fan_out(cs.zeros(16, 6, 5, 5)) == (150, 400)
    assert init._calculate_fan_in_and_fan_out(cs.zeros(10, 84)) == (84, 10)
    assert init.calculate_fan_in_and_fan_out(cs.zeros(4, 2, 3, 3, 3)) == (54, 108)


def test_kaiming_uniform_bound_and_std():
    w = weight(256, 64, 3, 3)  # fan_in 576, fan_out 2304
    bound = math.sqrt(2) * math.sqrt(3 / 576)
    v = values(init.kaiming_uniform_(w, nonlinearity="relu"))
    assert np.abs(v).max() <= bound and np.abs(v).max() > 0.999 * bound
    assert v.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)
    v = values(init.kaiming_uniform_(w, a=0.2, mode="fan_out"))
    assert v.std() == pytest.approx(math.sqrt(2 / 1.04) / math.sqrt(2304), rel=0.01)


def test_kaiming_and_xavier_normal_std():
    w = weight(256, 64, 3, 3)
    assert values(init.kaiming_normal_(w, nonlinearity="relu")).std() == pytest.approx(math.sqrt(2 / 576), rel=0.01)
    assert values(init.kaiming_normal_(w, mode="fan_out", nonlinearity="tanh")).std() == pytest.approx(
        5 / 3 / math.sqrt(2304), rel=0.01
    )
    v = values(init.xavier_normal_(w, gain=2.0))
    assert v.mean() == pytest.approx(0, abs=1e-3)
    assert v.std() == pytest.approx(2.0 * math.sqrt(2 / (576 + 2304)), rel=0.01)


def test_xavier_uniform_bound():
    w = weight(300, 200)
    bound = math.sqrt(6 / 500)
    v = values(init.xavier_uniform_(w))
    assert np.abs(v).max() <= bound and np.abs(v).max() > 0.999 * bound
    assert v.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)


def test_uniform_normal_constant():
    w = weight(200, 200)
    v = values(init.uniform_(w, -2.0, 3.0))
    assert v.min() >= -2.0 and v.max() <= 3.0 and v.mean() == pytest.approx(0.5, abs=0.02)
    v = values(init.normal_(w, 1.0, 0.5))
    assert v.mean() == pytest.approx(1.0, abs=0.01) and v.std() == pytest.approx(0.5, rel=0.01)
    assert (values(init.constant_(w, 0.3)) == np.float32(0.3)).all()
    assert not values(init.zeros_(w)).any() and (values(init.ones_(w)) == 1).all()
    with pytest.raises(ValueError, match="expected a <= b"):
        init.uniform_(w, 1.0, 0.0)


def test_trunc_normal():
    w = weight(300, 300)
    v = values(init.trunc_normal_(w))  # N(0, 1) cut to [-2, 2]
    assert v.min() >= -2 and v.max() <= 2
    assert v.std() == pytest.approx(0.8796, rel=0.01)  # std of the standard normal truncated to [-2, 2]
    v = values(init.trunc_normal_(w, mean=0.0, std=1.0, a=3.0, b=3.5))  # a thin far tail: the uniform proposal
    assert v.min() >= 3.0 and v.max() <= 3.5
    assert v.mean() == pytest.approx(3.1856, abs=0.005)  # (phi(3) - phi(3.5)) / (Phi(3.5) - Phi(3))
    v = values(init.trunc_normal_(w, std=0.02, a=-0.04, b=0.04))
    assert np.abs(v).max() <= 0.04 and v.std() == pytest.approx(0.02 * 0.8796, rel=0.01)


def test_in_place_no_graph_and_generator():
    w = weight(4, 3)
    data = w.data
    out = init.kaiming_uniform_(w, generator=np.random.default_rng(3))
    assert out is w and w.data is data and w.requires_grad and w.grad_fn is None
    again = values(init.kaiming_uniform_(weight(4, 3), generator=np.random.default_rng(3)))
    np.testing.assert_array_equal(values(w), again)
    cs.manual_seed(11)
    first = values(init.normal_(weight(5)))
    cs.manual_seed(11)
    np.testing.assert_array_equal(first, values(init.normal_(weight(5))))
    double = nn.Parameter(cs.zeros(3, 3, dtype=cs.float64))
    assert init.xavier_normal_(double).dtype == np.float64


@pytest.mark.parametrize("layer, fan_in", [
    (lambda: nn.Conv2d(6, 16, 5), 150),
    (lambda: nn.Conv1d(4, 8, 3, groups=2), 6),
    (lambda: nn.ConvTranspose2d(8, 4, 3), 36),  # PyTorch reads the fan from the weight (in, out/groups, k, k)
    (lambda: nn.Linear(400, 120), 400),
])
def test_default_layer_initialisation_bounds(layer, fan_in):
    module = layer()
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) gives gain sqrt(1/3): sqrt(1/3)*sqrt(3/fan_in)
    w, b = values(module.weight), values(module.bias)
    assert np.abs(w).max() <= bound * (1 + 1e-6) and np.abs(w).max() > 0.9 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.1)
    assert np.abs(b).max() <= bound * (1 + 1e-6)
    module.reset_parameters(generator=np.random.default_rng(0))
    first = values(module.weight)
    module.reset_parameters(generator=np.random.default_rng(0))
    np.testing.assert_array_equal(first, values(module.weight))


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4), (8, 3, 3, 3), (2, 6, 1)])
@pytest.mark.parametrize("gain", [1.0, math.sqrt(2)])
def test_orthogonal_rows_or_columns_are_orthonormal_times_gain(shape, gain):
    w = init.orthogonal_(weight(*shape), gain=gain)
    matrix = values(w).reshape(shape[0], -1)
    gram = matrix @ matrix.T if matrix.shape[0] <= matrix.shape[1] else matrix.T @ matrix
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(matrix.shape)), atol=1e-5)


def test_orthogonal_is_uniform_over_orthogonal_matrices():
    """Haar measure: every entry has mean 0 and variance 1/n (without the sign fix QR's first entry is biased)."""
    rng = np.random.default_rng(0)
    draws = np.stack([values(init.orthogonal_(weight(3, 3), generator=rng)) for _ in range(3000)])
    np.testing.assert_allclose(draws.mean(axis=0), 0, atol=0.04)
    np.testing.assert_allclose((draws**2).mean(axis=0), 1 / 3, atol=0.03)


def test_orthogonal_keeps_dtype_is_reproducible_and_refuses_vectors():
    double = nn.Parameter(cs.zeros(4, 4, dtype=cs.float64))
    assert init.orthogonal_(double).dtype == np.float64
    first = values(init.orthogonal_(weight(3, 4), generator=np.random.default_rng(5)))
    np.testing.assert_array_equal(first, values(init.orthogonal_(weight(3, 4), generator=np.random.default_rng(5))))
    assert init.orthogonal_(weight(0, 3)).shape == (0, 3)
    with pytest.raises(ValueError, match=r"orthogonal_: only tensors with 2 or more dimensions are supported, "
                                         r"received shape \(5,\)"):
        init.orthogonal_(weight(5))
