"""``affine_grid`` and ``grid_sample``: the differentiable sampler of a spatial transformer
(Jaderberg et al. 2015), as ``torch.nn.functional``.

``affine_grid`` maps every output pixel's normalised coordinates (x, y[, z]) in [-1, 1]
through a batch of affine matrices; ``grid_sample`` reads the input at those positions.
Both take 2-D images (N, C, H, W) and 3-D volumes (N, C, D, H, W); the grid's last axis
lists x (width) first, as PyTorch's does.

Sampling is separable into per-axis *taps*: along each spatial axis a source coordinate
gives a few (pixel index, weight, d weight / d coordinate) triples: one for ``nearest``, two
for ``bilinear`` (linear along each axis: bi- or trilinear), four for ``bicubic`` (Keys'
cubic convolution, 2-D only). Every combination of one tap per axis is one gather from the
flattened input, weighted by the product of the tap weights. The backward pass scatters
the output gradient back through the same taps (``_scatter.scatter_add_channels``) and differentiates
the weights for the grid's gradient. Source coordinates follow PyTorch's
``GridSampler.h`` exactly:

- unnormalise: ``align_corners=True`` maps -1 and 1 to the centres of the corner pixels,
  ``src = (g + 1) / 2 * (size - 1)``; ``False`` to their outer edges,
  ``src = ((g + 1) * size - 1) / 2``;
- ``padding_mode``: ``'zeros'`` reads 0 outside the input, ``'border'`` clips coordinates
  to ``[0, size - 1]``, ``'reflection'`` reflects them at the border (the corner centres,
  or the edges with ``align_corners=False``) and then clips. Bilinear and nearest apply the
  padding to the source coordinate; bicubic to each tap's pixel index, as PyTorch does.
- non-finite coordinates (and those beyond the int32 range) read as if far outside (-100).
"""

from __future__ import annotations

import itertools
import math
import numbers

import numpy

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._cubic import cubic_weight_slopes, cubic_weights
from convstack.nn.functional._scatter import scatter_add_channels
from convstack.nn.functional._utils import invalid, shape_context
from convstack.tensor import Tensor, as_tensor

_MODES = ("bilinear", "nearest", "bicubic")
_PADDING_MODES = ("zeros", "border", "reflection")


# ----------------------------------------------------------------------- source coordinates
def _unnormalize(coord, size: int, align_corners: bool):
    """Pixel coordinate of normalised ``coord`` and its derivative (a number)."""
    if align_corners:
        return (coord + 1) / 2 * (size - 1), (size - 1) / 2
    return ((coord + 1) * size - 1) / 2, size / 2


def _clip(coord, size: int):
    """``coord`` clipped to [0, size - 1] and its derivative (1 strictly inside, else 0)."""
    xp = get_array_module(coord)
    return xp.clip(coord, 0, size - 1), (coord > 0) & (coord < size - 1)


def _reflect(coord, twice_low: int, twice_high: int):
    """``coord`` folded into [low, high] by reflections at both ends, and its derivative (+-1)."""
    xp = get_array_module(coord)
    if twice_low == twice_high:
        return xp.zeros_like(coord), xp.zeros_like(coord)
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    shifted = coord - low
    sign = xp.where(shifted < 0, -1, 1).astype(coord.dtype)
    distance = xp.abs(shifted)
    with numpy.errstate(invalid="ignore"):  # infinite coordinates give NaN here, -100 in _finite
        extra = xp.fmod(distance, span)
        even = xp.floor(distance / span) % 2 == 0
    return xp.where(even, extra + low, span - extra + low), xp.where(even, sign, -sign)


def _padded(coord, size: int, padding_mode: str, align_corners: bool):
    """``coord`` (pixels) after ``padding_mode``, and its derivative (an array, or 1)."""
    if padding_mode == "border":
        return _clip(coord, size)
    if padding_mode == "reflection":
        reflected, slope = _reflect(coord, 0, 2 * (size - 1)) if align_corners else _reflect(coord, -1, 2 * size - 1)
        clipped, inside = _clip(reflected, size)
        return clipped, slope * inside
    return coord, 1


def _finite(coord):
    """Coordinates that are not finite or beyond the int32 range become -100 (PyTorch's ``safe_downgrade``)."""
    xp = get_array_module(coord)
    with numpy.errstate(invalid="ignore"):
        safe = xp.isfinite(coord) & (xp.abs(coord) < 2**31 - 1)
    return xp.where(safe, coord, -100).astype(coord.dtype, copy=False)


# ------------------------------------------------------------------------------ taps per axis
# Each returns (taps, slope): taps a list of (index, weight, d weight / d pixel coordinate or None),
# slope the derivative of the pixel coordinate with respect to the grid value.
def _nearest_taps(coord, size, padding_mode, align_corners):
    xp = get_array_module(coord)
    pixel, _ = _unnormalize(coord, size, align_corners)
    pixel, _ = _padded(pixel, size, padding_mode, align_corners)
    index = xp.rint(_finite(pixel)).astype(xp.int64)  # round half to even, as nearbyint
    return [(index, xp.ones_like(coord), None)], 0


def _bilinear_taps(coord, size, padding_mode, align_corners):
    xp = get_array_module(coord)
    pixel, slope = _unnormalize(coord, size, align_corners)
    pixel, padding_slope = _padded(pixel, size, padding_mode, align_corners)
    pixel = _finite(pixel)
    low = xp.floor(pixel)
    index = low.astype(xp.int64)
    taps = [(index, low + 1 - pixel, -xp.ones_like(pixel)), (index + 1, pixel - low, xp.ones_like(pixel))]
    return taps, slope * padding_slope


def _bicubic_taps(coord, size, padding_mode, align_corners):
    xp = get_array_module(coord)
    pixel, slope = _unnormalize(coord, size, align_corners)
    pixel = _finite(pixel)
    low = xp.floor(pixel)
    fraction = pixel - low
    taps = []
    for offset, weight, weight_slope in zip(range(-1, 3), cubic_weights(fraction), cubic_weight_slopes(fraction)):
        tap, _ = _padded(low + offset, size, padding_mode, align_corners)
        taps.append((xp.trunc(tap).astype(xp.int64), weight, weight_slope))
    return taps, slope


_TAPS = {"nearest": _nearest_taps, "bilinear": _bilinear_taps, "bicubic": _bicubic_taps}


# ------------------------------------------------------------------------------------ the op
class GridSample(Function):
    """Sample (N, C, *S) at the grid (N, *O, d): (N, C, *O).

    Inside, pixels are rows of a channels-last (N L, C) copy of the input (L = prod(S)): each
    tap combination gathers one row per output position, C contiguous values at a time.
    """

    def forward(self, x, grid, *, mode, padding_mode, align_corners):
        xp = get_array_module(x, grid)
        batch, channels, *sizes = x.shape
        spatial, length = len(sizes), math.prod(sizes)
        out_sizes = grid.shape[1:-1]
        points = math.prod(out_sizes)
        flat_grid = grid.reshape(batch, points, spatial)  # (N, P, d): d = (x, y[, z]) = (W, H[, D])
        axis_taps, slopes = [], []
        for axis, size in enumerate(sizes):
            taps, slope = _TAPS[mode](flat_grid[..., spatial - 1 - axis], size, padding_mode, align_corners)
            axis_taps.append(taps)
            slopes.append(slope)
        strides = [math.prod(sizes[axis + 1:]) for axis in range(spatial)]
        first_row = xp.arange(batch)[:, None] * length  # (N, 1): where each sample's rows start
        combinations = []  # per combination of taps: (rows (N P,), weight (N P,), taps, valid (N, P))
        for taps in itertools.product(*axis_taps):
            valid = xp.ones((batch, points), dtype=bool)
            pixel = 0
            weight = 1
            for (index, tap_weight, _), size, stride in zip(taps, sizes, strides):
                valid &= (index >= 0) & (index < size)
                pixel = pixel + index * stride
                weight = weight * tap_weight
            rows = xp.where(valid, pixel + first_row, 0).reshape(-1)
            combinations.append((rows, (weight * valid).reshape(-1), taps, valid))
        pixels = xp.ascontiguousarray(x.reshape(batch, channels, length).transpose(0, 2, 1))
        pixels = pixels.reshape(batch * length, channels)  # (N L, C)
        out = xp.zeros((batch * points, channels), dtype=x.dtype)  # (N P, C)
        for rows, weight, _, _ in combinations:
            out += xp.take(pixels, rows, axis=0) * weight[:, None]
        self.pixels = pixels if self.needs_input_grad[1] else None  # the grid's gradient reads them again
        self.combinations, self.slopes, self.mode = combinations, slopes, mode
        self.shapes = (x.shape, grid.shape)
        # (N P, C) -> (N, C, *O)
        return xp.ascontiguousarray(out.reshape(batch, points, channels).transpose(0, 2, 1)).reshape(
            (batch, channels) + tuple(out_sizes))

    def backward(self, grad):
        xp = get_array_module(grad)
        (batch, channels, *sizes), grid_shape = self.shapes
        spatial, length = len(sizes), math.prod(sizes)
        points = math.prod(grid_shape[1:-1])
        grad = grad.reshape(batch, channels, points)  # (N, C, P)
        grad_x = grad_grid = None
        if self.needs_input_grad[0]:
            # every combination's weighted gradient, channel-major (C, K N P), summed into the pixels at once
            by_channel = xp.ascontiguousarray(grad.transpose(1, 0, 2)).reshape(channels, batch * points)  # (C, N P)
            rows = xp.concatenate([rows for rows, _, _, _ in self.combinations])  # (K N P,)
            values = xp.concatenate([by_channel * weight for _, weight, _, _ in self.combinations], axis=1)
            summed = scatter_add_channels(rows, values, batch * length)  # (C, N L)
            grad_x = xp.ascontiguousarray(summed.reshape(channels, batch, length).transpose(1, 0, 2))
            grad_x = grad_x.reshape((batch, channels) + tuple(sizes))
        if self.needs_input_grad[1]:
            grad_grid = xp.zeros((batch, points, spatial), dtype=grad.dtype)  # (N, P, d)
            if self.mode != "nearest":  # piecewise constant: no gradient
                by_point = xp.ascontiguousarray(grad.transpose(0, 2, 1)).reshape(batch * points, channels)  # (N P, C)
                for rows, _, taps, valid in self.combinations:
                    # d out / d tap weight, summed over channels: the value read times the gradient, (N, P)
                    read = (xp.take(self.pixels, rows, axis=0) * by_point).sum(axis=1).reshape(batch, points) * valid
                    for axis in range(spatial):
                        factor = read * taps[axis][2]  # d weight / d pixel coordinate along this axis
                        for other, (_, tap_weight, _) in enumerate(taps):
                            if other != axis:
                                factor = factor * tap_weight
                        grad_grid[..., spatial - 1 - axis] += factor
                for axis, slope in enumerate(self.slopes):  # d pixel coordinate / d grid value: a number or (N, P)
                    grad_grid[..., spatial - 1 - axis] *= slope
            grad_grid = grad_grid.reshape(grid_shape)
        return grad_x, grad_grid


def _choice(op: str, argument: str, value, choices, context: str):
    if not isinstance(value, str) or value not in choices:
        raise invalid(op, argument, "one of " + ", ".join(repr(c) for c in choices), value, context)
    return value


def _align_corners(op: str, value) -> bool:
    if value is None:
        return False  # PyTorch's default since 1.3
    if not isinstance(value, bool):
        raise invalid(op, "align_corners", "True, False or None", value)
    return value


def grid_sample(input, grid, mode: str = "bilinear", padding_mode: str = "zeros", align_corners=None) -> Tensor:
    """Sample ``input`` at the normalised positions in ``grid`` (the spatial transformer's sampler).

    ``grid[n, ..., :]`` holds (x, y) for images, (x, y, z) for volumes (x along the width),
    each in [-1, 1] across the input's extent (-1 the left/top/front, 1 the
    right/bottom/back); positions outside read according to ``padding_mode``.

    Args:
        input: (N, C, H, W) or (N, C, D, H, W) float tensor; N may be 0.
        grid: (N, H_out, W_out, 2) or (N, D_out, H_out, W_out, 3), same dtype as ``input``.
        mode: ``'bilinear'`` (trilinear for volumes), ``'nearest'`` or ``'bicubic'`` (images only).
        padding_mode: ``'zeros'``, ``'border'`` or ``'reflection'``.
        align_corners: True: -1 and 1 are the centres of the corner pixels; False (default,
            also for None): their outer edges, so that sampling is independent of resolution.

    Shape:
        - Output: (N, C, H_out, W_out) or (N, C, D_out, H_out, W_out).

    Examples:
        >>> image = cs.arange(4.0).reshape(1, 1, 2, 2)
        >>> F.grid_sample(image, cs.zeros(1, 1, 1, 2), align_corners=True)  # the centre
        tensor([[[[1.5]]]])
    """
    op = "grid_sample"
    input, grid = as_tensor(input), as_tensor(grid)
    context = shape_context(input=input.shape, grid=grid.shape)
    mode = _choice(op, "mode", mode, _MODES, context)
    padding_mode = _choice(op, "padding_mode", padding_mode, _PADDING_MODES, context)
    align_corners = _align_corners(op, align_corners)
    if input.ndim not in (4, 5):
        raise ValueError(f"{op}: expected a 4-D (N, C, H, W) or 5-D (N, C, D, H, W) input, received a "
                         f"{input.ndim}-D input ({context})")
    spatial = input.ndim - 2
    if grid.ndim != input.ndim or grid.shape[-1] != spatial or grid.shape[0] != input.shape[0]:
        layout = "(N, H_out, W_out, 2)" if spatial == 2 else "(N, D_out, H_out, W_out, 3)"
        raise ValueError(f"{op}: expected a grid {layout} with the input's batch size N = {input.shape[0]} ({context})")
    if mode == "bicubic" and spatial != 2:
        raise invalid(op, "mode", "'bilinear' or 'nearest' for a 5-D input (bicubic is 2-D only)", mode, context)
    if input.dtype.kind != "f" or grid.dtype != input.dtype:
        raise TypeError(f"{op}: expected a floating point input and a grid of the same dtype, received input dtype "
                        f"{input.dtype} and grid dtype {grid.dtype}")
    if any(size == 0 for size in input.shape[2:]):
        raise ValueError(f"{op}: expected non-empty spatial dimensions in the input ({context})")
    return GridSample.apply(input, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners)


# ------------------------------------------------------------------------------ affine_grid
class AffineGrid(Function):
    """``grid[n, p] = theta[n] @ (x_p, y_p[, z_p], 1)``: (N, d, d + 1) -> (N, P, d) for the base points (P, d + 1)."""

    def forward(self, theta, *, base):
        xp = get_array_module(theta)
        self.base = base
        return xp.matmul(base, theta.transpose(0, 2, 1))  # (P, d + 1) @ (N, d + 1, d) -> (N, P, d)

    def backward(self, grad):
        return (get_array_module(grad).matmul(grad.transpose(0, 2, 1), self.base),)  # (N, d, P) @ (P, d + 1)


def _base_coordinates(steps: int, align_corners: bool, xp, dtype):
    """The normalised centres of ``steps`` pixels: -1 .. 1 at the corner centres, or shrunk by (n - 1) / n."""
    if steps <= 1:
        return xp.zeros(steps, dtype=dtype)
    line = xp.linspace(-1.0, 1.0, steps)
    if not align_corners:
        line = line * (steps - 1) / steps
    return line.astype(dtype)


def affine_grid(theta, size, align_corners=None) -> Tensor:
    """The sampling grid of a batch of affine transforms, for ``grid_sample``.

    Output pixel (i, j) of an (H, W) image has normalised coordinates (x_j, y_i) in [-1, 1]
    (with ``align_corners=False`` the pixel centres, ``x_j = (2 j + 1) / W - 1``); its grid
    entry is ``theta[n] @ (x_j, y_i, 1)``. Likewise (x, y, z, 1) for volumes.

    Args:
        theta: (N, 2, 3) affine matrices for images, (N, 3, 4) for volumes; float.
        size: the output size (N, C, H, W) or (N, C, D, H, W), all positive.
        align_corners: as for ``grid_sample`` (False for None); use the same value for both.

    Shape:
        - Output: (N, H, W, 2) or (N, D, H, W, 3).

    Examples:
        >>> identity = cs.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
        >>> F.affine_grid(identity, (1, 1, 1, 2), align_corners=False)
        tensor([[[[-0.5,  0. ],
                  [ 0.5,  0. ]]]])
    """
    op = "affine_grid"
    theta = as_tensor(theta)
    align_corners = _align_corners(op, align_corners)
    if (not isinstance(size, (tuple, list)) or len(size) not in (4, 5)
            or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in size)):
        raise invalid(op, "size", "a tuple (N, C, H, W) or (N, C, D, H, W) of integers", size)
    if any(s < 1 for s in size):
        raise invalid(op, "size", "positive sizes", tuple(size))
    spatial = len(size) - 2
    if theta.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point theta, received dtype {theta.dtype}")
    expected = (size[0], spatial, spatial + 1)
    if theta.shape != expected:
        raise ValueError(f"{op}: expected theta of shape {expected} (N affine {spatial}-D matrices) for size "
                         f"{tuple(size)}, received theta shape {theta.shape}")
    xp = get_array_module(theta.data)
    # (x, y[, z]) along (W, H[, D]): the grid's last axis lists the fastest spatial axis first
    axes = [_base_coordinates(n, align_corners, xp, theta.dtype) for n in size[2:]]  # D?, H, W
    mesh = xp.meshgrid(*axes, indexing="ij")  # each (*S)
    ones = xp.ones(tuple(size[2:]), dtype=theta.dtype)
    base = xp.stack(list(reversed(mesh)) + [ones], axis=-1).reshape(-1, spatial + 1)  # (P, d + 1)
    grid = AffineGrid.apply(theta, base=base)
    return grid.reshape((size[0],) + tuple(size[2:]) + (spatial,))
