"""Learned convolution filters as pictures, and the Gabor functions nearest to them.

First-layer filters of image networks tend to become oriented edge and grating
detectors much like Gabor functions (Krizhevsky et al. 2012, Fig. 3; Zeiler & Fergus
2014); ``fit_gabor`` measures how close each one is.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy

from convstack.vis import _plot
from convstack.vis._plot import to_numpy


def _weight_of(weight_or_module, op: str) -> numpy.ndarray:
    weight = getattr(weight_or_module, "weight", weight_or_module)
    array = to_numpy(weight)
    if array.ndim != 4:
        raise ValueError(
            f"{op}: expected a Conv2d layer or its weight (out_channels, in_channels, kH, kW), "
            f"received shape {array.shape}"
        )
    return array.astype(numpy.float64)


def filter_grid(weight, path=None, columns: int | None = None):
    """Draw the kernels of a 2-D convolution, each normalised on its own to [0, 1].

    A layer with 1 or 3 input channels (the first layer of a gray or RGB network) shows
    one image per filter (colour for 3 channels); a deeper layer shows one row per output
    filter and one column per input channel.

    Args:
        weight: a ``Conv2d`` module or its weight (Tensor or array).
        path: PNG file to write (or a binary file object); ``None`` draws nothing.
        columns: tiles per row for the one-image-per-filter layout (default: near-square).

    Returns:
        The normalised tiles: (F, kH, kW) gray, (F, kH, kW, 3) RGB, or (F, C, kH, kW) for
        a deeper layer. Each filter is scaled by its own minimum and maximum over all its
        input channels, so relative channel strengths stay visible.

    Examples:
        >>> from convstack import nn
        >>> filter_grid(nn.Conv2d(1, 6, 5)).shape
        (6, 5, 5)
    """
    kernels = _weight_of(weight, "filter_grid")
    out_channels, in_channels = kernels.shape[:2]
    tiles = _plot.rescale(kernels, axes=(1, 2, 3))  # (F, C, kH, kW), per filter
    if in_channels == 1:
        tiles = tiles[:, 0]  # (F, kH, kW)
    elif in_channels == 3:
        tiles = tiles.transpose(0, 2, 3, 1)  # (F, kH, kW, 3)
    if path is not None:
        _draw_filters(tiles, in_channels, path, columns)
    return tiles


def _draw_filters(tiles, in_channels, path, columns) -> None:
    if in_channels in (1, 3):
        image = _plot.mosaic(tiles, columns=columns)
        rows, cols = _plot.grid_shape(len(tiles), columns)
    else:
        out_channels, _, height, width = tiles.shape
        rows, cols = out_channels, in_channels
        image = _plot.mosaic(tiles.reshape(-1, height, width), columns=in_channels)  # one row per filter
    fig = _plot.figure(min(12.0, 0.45 * cols + 1.0), min(12.0, 0.45 * rows + 0.6))
    axis = fig.add_subplot(1, 1, 1)
    _plot.show(axis, image, f"{len(tiles)} filters" + ("" if in_channels in (1, 3) else f" x {in_channels} channels"))
    _plot.save(fig, path)


class GaborFit(NamedTuple):
    """The Gabor function nearest to a kernel (``fit_gabor``).

    ``fitted = amplitude * exp(-(u² + (gamma v)²) / (2 sigma²)) * cos(2 pi u / wavelength + phase) + offset``
    with u = x cos(theta) + y sin(theta), v = -x sin(theta) + y cos(theta), x to the right
    and y down from the kernel centre: the convention of ``convstack.image.kernels.gabor``,
    so ``amplitude * gabor(theta, sigma, wavelength, phase, gamma, size=k) + offset``
    rebuilds ``fitted`` for an odd k x k kernel. ``r2`` is the fraction of the kernel's
    variance the fit explains.
    """

    theta: float
    wavelength: float
    phase: float
    sigma: float
    gamma: float
    amplitude: float
    offset: float
    fitted: numpy.ndarray
    r2: float


def _gabor_bank(height, width, thetas, wavelengths, sigmas, gamma):
    """Even (cosine) and odd (sine) Gabor functions for every (theta, wavelength, sigma): (P, H*W) each.

    ``convstack.image.kernels.gabor``'s formula, evaluated for the whole search grid at once
    (one call per grid point would cost ~100x more) and on any kernel shape, even or
    non-square ones included, which that function, made for odd filter sizes, does not take.
    """
    ys, xs = numpy.mgrid[0:height, 0:width].astype(numpy.float64)
    xs, ys = xs - (width - 1) / 2, ys - (height - 1) / 2
    theta, wavelength, sigma = (
        a.reshape(-1, 1, 1) for a in numpy.meshgrid(thetas, wavelengths, sigmas, indexing="ij")
    )  # each (P, 1, 1)
    u = xs * numpy.cos(theta) + ys * numpy.sin(theta)  # (P, H, W)
    v = -xs * numpy.sin(theta) + ys * numpy.cos(theta)
    envelope = numpy.exp(-(u**2 + (gamma * v) ** 2) / (2 * sigma**2))
    carrier = 2 * numpy.pi * u / wavelength
    even = (envelope * numpy.cos(carrier)).reshape(len(theta), -1)
    odd = (envelope * numpy.sin(carrier)).reshape(len(theta), -1)
    return even, odd, theta.ravel(), wavelength.ravel(), sigma.ravel()


def _search(target, height, width, thetas, wavelengths, sigmas, gamma) -> dict:
    """The best grid point: amplitude, phase and offset solved by least squares at every one."""
    even, odd, theta, wavelength, sigma = _gabor_bank(height, width, thetas, wavelengths, sigmas, gamma)
    basis = numpy.stack([even, odd, numpy.ones_like(even)], axis=1)  # (P, 3, H*W): [even, odd, 1]
    gram = basis @ basis.transpose(0, 2, 1) + 1e-9 * numpy.eye(3)  # (P, 3, 3) normal equations
    coefficients = numpy.linalg.solve(gram, (basis @ target)[..., None])[..., 0]  # (P, 3)
    fitted = numpy.einsum("pk,pkn->pn", coefficients, basis)  # (P, H*W)
    residual = ((fitted - target) ** 2).sum(axis=1)
    best = int(residual.argmin())
    return {
        "theta": theta[best],
        "wavelength": wavelength[best],
        "sigma": sigma[best],
        "coefficients": coefficients[best],
        "fitted": fitted[best],
        "residual": float(residual[best]),
    }


def fit_gabor(kernel, orientations: int = 16, gamma: float = 1.0) -> GaborFit:
    """Fit the nearest Gabor function to a 2-D kernel (least squares).

    Grid search over orientation (``orientations`` steps over [0, pi)), wavelength (2 px,
    the Nyquist limit, to twice the kernel size) and envelope width sigma; for every grid
    point the amplitude, phase and a constant offset are solved exactly by linear least
    squares on the even and odd Gabor pair (a cos(c) + b sin(c) = A cos(c - phase)), so
    phase needs no grid. A second, finer grid one coarse step wide around the best point
    refines orientation, wavelength and sigma.

    Args:
        kernel: (kH, kW) array or Tensor.
        orientations: number of orientation steps.
        gamma: envelope aspect ratio, held fixed.

    Returns:
        ``GaborFit``.

    Examples:
        >>> ys, xs = numpy.mgrid[-3:4, -3:4]
        >>> fit = fit_gabor(numpy.exp(-(xs**2 + ys**2) / 8.0) * numpy.cos(2 * numpy.pi * xs / 4.0))
        >>> bool(fit.r2 > 0.95), round(fit.theta, 2)  # a vertical grating: theta 0
        (True, 0.0)
    """
    array = to_numpy(kernel).astype(numpy.float64)
    if array.ndim != 2 or min(array.shape) < 2:
        raise ValueError(f"fit_gabor: expected a 2-D kernel of at least 2x2, received shape {array.shape}")
    if not isinstance(orientations, int) or orientations < 1:
        raise ValueError(
            "fit_gabor: invalid value for argument `orientations`: expected a positive integer, "
            f"received {orientations!r}"
        )
    height, width = array.shape
    size = max(height, width)
    target = array.ravel()
    thetas = numpy.arange(orientations) * numpy.pi / orientations
    wavelengths = numpy.geomspace(2.0, 2.0 * size, 12)
    sigmas = numpy.geomspace(0.5, float(size), 10)
    best = _search(target, height, width, thetas, wavelengths, sigmas, gamma)
    # Coarse to fine: a second grid, one coarse step wide, around the best point.
    theta_step = numpy.pi / orientations
    wavelength_ratio = (wavelengths[1] / wavelengths[0]) ** numpy.linspace(-1, 1, 7)
    sigma_ratio = (sigmas[1] / sigmas[0]) ** numpy.linspace(-1, 1, 7)
    best = _search(
        target,
        height,
        width,
        best["theta"] + theta_step * numpy.linspace(-1, 1, 7),
        best["wavelength"] * wavelength_ratio,
        best["sigma"] * sigma_ratio,
        gamma,
    )
    a, b, offset = best["coefficients"]
    phase = -numpy.arctan2(b, a)
    if not 0 <= best["theta"] < numpy.pi:
        # theta and theta + pi are one orientation with u negated: cos(-c + phase) = cos(c - phase).
        phase = -phase
    total = float(((target - target.mean()) ** 2).sum())
    return GaborFit(
        theta=float(best["theta"] % numpy.pi),
        wavelength=float(best["wavelength"]),
        phase=float(phase),
        sigma=float(best["sigma"]),
        gamma=float(gamma),
        amplitude=float(numpy.hypot(a, b)),
        offset=float(offset),
        fitted=best["fitted"].reshape(height, width),
        r2=1.0 - best["residual"] / total if total > 0 else 1.0,
    )


def gabor_comparison(weight, path=None, max_filters: int = 32) -> list[GaborFit]:
    """Each first-layer filter beside its Gabor fit (colour filters fitted on their channel mean).

    Args:
        weight: a first ``Conv2d`` layer or its weight (F, C, kH, kW).
        path: PNG file to write (or a binary file object); ``None`` draws nothing.
        max_filters: draw at most this many filters (all are fitted).

    Returns:
        One ``GaborFit`` per filter.
    """
    kernels = _weight_of(weight, "gabor_comparison")
    fits = [fit_gabor(kernel.mean(axis=0)) for kernel in kernels]  # one fit per filter (C averaged)
    if path is not None:
        shown = min(len(fits), max_filters)
        fig = _plot.figure(2.2 * min(shown, 4), 1.2 * -(-shown // 4) + 0.3)
        columns = 2 * min(shown, 4)
        for index in range(shown):
            learned = kernels[index].mean(axis=0)
            row, column = divmod(index, 4)
            for offset, (image, label) in enumerate(
                ((learned, f"filter {index}"), (fits[index].fitted, f"fit r²={fits[index].r2:.2f}"))
            ):
                axis = fig.add_subplot(-(-shown // 4), columns, row * columns + 2 * column + offset + 1)
                # Learned kernel and fit on one scale, so the fit's amplitude is comparable.
                scale = max(abs(learned).max(), 1e-12)
                _plot.show(axis, image, label, cmap="gray", vmin=-scale, vmax=scale)
        _plot.save(fig, path)
    return fits
