"""Filter grids, Gabor fits, feature maps and activation statistics."""

import doctest
import importlib

import numpy as np
import pytest

import convstack as cs
from convstack import nn
from convstack.image import kernels
from convstack.vis import activation_stats, feature_maps, filter_grid, fit_gabor, gabor_comparison

PNG = b"\x89PNG\r\n\x1a\n"


def gabor(size, theta, wavelength, sigma, phase, amplitude=1.0, offset=0.0):
    return amplitude * kernels.gabor(theta, sigma, wavelength, phase, size=size) + offset


def test_first_layer_gray_grid_has_one_tile_per_filter(tmp_path):
    conv = nn.Conv2d(1, 6, 5)
    tiles = filter_grid(conv, tmp_path / "filters.png")
    assert tiles.shape == (6, 5, 5)
    np.testing.assert_allclose(tiles.min(axis=(1, 2)), 0.0)  # each filter normalised on its own
    np.testing.assert_allclose(tiles.max(axis=(1, 2)), 1.0)
    weight = conv.weight.data[:, 0]
    expected = (weight - weight.min(axis=(1, 2), keepdims=True)) / np.ptp(weight, axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(tiles, expected, rtol=1e-6)
    assert (tmp_path / "filters.png").read_bytes()[:8] == PNG


def test_rgb_and_deeper_layers(tmp_path):
    assert filter_grid(nn.Conv2d(3, 4, 3).weight).shape == (4, 3, 3, 3)  # (F, kH, kW, RGB)
    deep = filter_grid(nn.Conv2d(6, 16, 5), tmp_path / "deep.png")
    assert deep.shape == (16, 6, 5, 5)  # one row per filter, one column per input channel
    np.testing.assert_allclose(deep.reshape(16, -1).max(axis=1), 1.0)
    assert (tmp_path / "deep.png").stat().st_size > 1000
    constant = filter_grid(np.ones((2, 1, 3, 3)))
    assert (constant == 0.5).all()
    with pytest.raises(ValueError, match=r"filter_grid: expected a Conv2d layer or its weight .* shape \(4, 3\)"):
        filter_grid(np.zeros((4, 3)))


@pytest.mark.parametrize("theta, wavelength, sigma, phase", [(0.7, 3.3, 1.5, 0.4), (2.0, 5.0, 2.0, -1.2)])
def test_fit_gabor_recovers_a_gabor(theta, wavelength, sigma, phase):
    kernel = gabor(9, theta, wavelength, sigma, phase, amplitude=2.0, offset=0.1)
    fit = fit_gabor(kernel)
    assert fit.r2 > 0.98
    assert abs(np.angle(np.exp(2j * (fit.theta - theta)))) / 2 < 0.1  # orientation, modulo pi
    assert abs(fit.wavelength - wavelength) / wavelength < 0.1
    assert abs(fit.sigma - sigma) / sigma < 0.15
    assert abs(np.angle(np.exp(1j * (fit.phase - phase)))) < 0.2
    assert abs(fit.amplitude - 2.0) < 0.3
    np.testing.assert_allclose(fit.fitted, kernel, atol=0.15)
    # The parameters mean what convstack.image.kernels.gabor means by them.
    rebuilt = gabor(9, fit.theta, fit.wavelength, fit.sigma, fit.phase, fit.amplitude, fit.offset)
    np.testing.assert_allclose(rebuilt, fit.fitted, atol=1e-9)


def test_fit_gabor_on_noise_explains_little():
    assert fit_gabor(np.random.default_rng(0).normal(size=(7, 7))).r2 < 0.7
    with pytest.raises(ValueError, match=r"fit_gabor: expected a 2-D kernel of at least 2x2, received shape \(5,\)"):
        fit_gabor(np.zeros(5))


def test_gabor_comparison_fits_every_filter(tmp_path):
    weight = np.stack([gabor(7, t, 4.0, 1.5, 0.0) for t in (0.0, 0.8, 1.6)])[:, None]  # (3, 1, 7, 7)
    fits = gabor_comparison(weight, tmp_path / "gabor.png")
    assert len(fits) == 3 and all(fit.r2 > 0.98 for fit in fits)
    np.testing.assert_allclose([fit.theta for fit in fits], [0.0, 0.8, 1.6], atol=0.1)
    assert (tmp_path / "gabor.png").read_bytes()[:8] == PNG


def small_net():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 2))


def test_feature_maps_are_the_layer_output(tmp_path):
    model = small_net()
    x = np.random.default_rng(0).normal(size=(2, 1, 8, 8)).astype(np.float32)
    maps = feature_maps(model, "1", x, tmp_path / "maps.png")
    with cs.no_grad():
        expected = model[1](model[0](cs.tensor(x))).data
    assert maps.shape == (2, 4, 6, 6)
    np.testing.assert_array_equal(maps, expected)
    assert feature_maps(model, "2", x[0]).shape == (4, 3, 3)
    assert feature_maps(model, "4", x[0]).shape == (2,)
    assert (tmp_path / "maps.png").read_bytes()[:8] == PNG
    assert not any(m._forward_hooks for m in model.modules())
    with pytest.raises(ValueError, match=r"feature_maps: unknown layer name 'conv1'; valid layer names: 0, 1, 2, 3, 4"):
        feature_maps(model, "conv1", x)


def test_activation_stats_dead_units_from_a_known_bias(tmp_path):
    model = small_net()
    model[0].weight.data[...] = 0.01
    model[0].bias.data[...] = [-10.0, -10.0, 10.0, 10.0]  # channels 0 and 1 can never fire on this input
    x = np.random.default_rng(0).uniform(0, 1, (5, 1, 8, 8)).astype(np.float32)
    stats = activation_stats(model, x, tmp_path / "stats.png")
    assert list(stats) == ["0", "1", "2", "3", "4"]
    relu = stats["1"]
    assert relu["type"] == "ReLU" and relu["shape"] == (4, 6, 6)
    assert relu["dead_fraction"] == 0.5 and relu["zero_fraction"] == 0.5
    assert "dead_fraction" not in stats["0"]
    conv = stats["0"]
    assert conv["zero_fraction"] == 0.0
    with cs.no_grad():
        output = model[0](cs.tensor(x)).data
    assert conv["mean"] == pytest.approx(output.mean(), rel=1e-6)
    assert conv["std"] == pytest.approx(output.std(), rel=1e-6)
    assert 0.0 < conv["mean"] < 0.1  # the +-10 biases cancel; what remains is 9 * 0.01 * the mean pixel
    assert conv["min"] < -9.9 and conv["max"] > 10.0
    assert (tmp_path / "stats.png").read_bytes()[:8] == PNG


@pytest.mark.parametrize("name", ["filters", "maps", "training_plots"])
def test_docstring_examples_run(name):
    module = importlib.import_module(f"convstack.vis.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
