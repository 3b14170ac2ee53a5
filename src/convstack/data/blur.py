"""Gaussian blur: ``gaussian_blur`` and ``GaussianBlur`` (torchvision.transforms.v2's).

The kernel along each axis is ``exp(-x^2 / (2 sigma^2))`` at ``x = -(k - 1) / 2 ... (k - 1) / 2``,
normalised to sum 1; the image is padded by reflection (``'reflect'``: the edge pixel is not
repeated) by ``k // 2`` and correlated, one axis after the other (the 2-D kernel is their outer
product, so this is the same blur as torchvision's one 2-D convolution). uint8 images are
blurred in float32 and rounded back. Each sample of a batch may have its own sigma.
"""

from __future__ import annotations

import numbers

import numpy

from convstack import backend
from convstack.data._sampling import restore_dtype
from convstack.data._transform import Transform, _unwrap, resolve_generator
from convstack.data.affine import as_batch_of_images
from convstack.nn.functional._utils import invalid
from convstack.tensor import Tensor


def gaussian_kernel1d(kernel_size: int, sigma) -> numpy.ndarray:
    """Normalised 1-D Gaussian weights: (k,) for one sigma, (N, k) for sigmas (N,)."""
    sigma = numpy.asarray(sigma, dtype=numpy.float64)
    x = numpy.linspace(-(kernel_size - 1) * 0.5, (kernel_size - 1) * 0.5, kernel_size)
    pdf = numpy.exp(-0.5 * (x / sigma[..., None]) ** 2)
    return pdf / pdf.sum(axis=-1, keepdims=True)


def blur_batch(four_d, kernel_size, sigma_x, sigma_y):
    """Blur (N, C, H, W) with kernel_size (kx, ky) and one (sigma_x, sigma_y) per sample (arrays (N,))."""
    xp = backend.get_array_module(four_d)
    (kx, ky), (height, width) = kernel_size, four_d.shape[-2:]
    if kx // 2 >= width or ky // 2 >= height:
        raise ValueError(
            f"gaussian_blur: kernel size {tuple(kernel_size)} needs reflection padding of {kx // 2} x {ky // 2}, "
            f"more than the image of shape {tuple(four_d.shape[-2:])} allows (padding < size)"
        )
    work_dtype = four_d.dtype if four_d.dtype.kind == "f" else numpy.dtype(numpy.float32)
    work = four_d.astype(work_dtype, copy=False)
    for axis, size, sigma in ((-2, ky, sigma_y), (-1, kx, sigma_x)):
        weights = xp.asarray(gaussian_kernel1d(size, sigma), dtype=work_dtype)  # (N, k)
        pad = [(0, 0)] * 4
        pad[axis] = (size // 2, size // 2)
        padded = xp.pad(work, pad, mode="reflect")
        length = work.shape[axis]
        out = xp.zeros_like(work)
        for k in range(size):  # one shifted slice per tap
            window = padded[..., k : k + length, :] if axis == -2 else padded[..., k : k + length]
            out += window * weights[:, k].reshape(-1, 1, 1, 1)
        work = out
    return restore_dtype(work, four_d.dtype, xp)


def _kernel_size(kernel_size, op):
    values = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    if (len(values) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in values)
            or not all(v > 0 and v % 2 == 1 for v in values)):
        raise invalid(op, "kernel_size", "an odd positive integer or a pair (kx, ky) of them", kernel_size)
    return values


def gaussian_blur(img, kernel_size, sigma=None):
    """Blur ``img`` (..., H, W) with a Gaussian (``v2.functional.gaussian_blur``).

    Args:
        kernel_size: odd int, or (kx, ky) (width first, as torchvision).
        sigma: a number or (sigma_x, sigma_y); default ``0.3 * ((k - 1) * 0.5 - 1) + 0.8`` per axis.
    """
    kx, ky = _kernel_size(kernel_size, "gaussian_blur")
    if sigma is None:
        sigma = [0.3 * ((k - 1) * 0.5 - 1) + 0.8 for k in (kx, ky)]
    sigma = [float(sigma)] * 2 if isinstance(sigma, numbers.Real) else [float(s) for s in sigma]
    if len(sigma) != 2 or not all(s > 0 for s in sigma):
        raise invalid("gaussian_blur", "sigma", "a positive number or a pair of them", sigma)
    array, wrap = _unwrap(img, "gaussian_blur")
    four_d, restore = as_batch_of_images(array, batched=False)
    out = restore(blur_batch(four_d, (kx, ky), [sigma[0]], [sigma[1]]))
    return Tensor._make(out) if wrap else out


class GaussianBlur(Transform):
    """Blur with a Gaussian of sigma drawn uniformly from ``sigma`` for each sample.

    Args:
        kernel_size: odd int, or (kx, ky).
        sigma: (min, max) to draw from, or one fixed positive number.
        generator: a ``numpy.random.Generator`` (default: the loader's stream or convstack's default).

    Shape:
        (..., H, W) -> (..., H, W).

    Examples:
        >>> GaussianBlur(3, sigma=(0.1, 2.0))
        GaussianBlur(kernel_size=(3, 3), sigma=(0.1, 2.0), generator=None)
    """

    def __init__(self, kernel_size, sigma=(0.1, 2.0), generator=None):
        self.kernel_size = _kernel_size(kernel_size, "GaussianBlur")
        if isinstance(sigma, numbers.Real) and not isinstance(sigma, bool):
            sigma = (float(sigma), float(sigma))
        try:
            low, high = (float(s) for s in sigma)
        except (TypeError, ValueError):
            raise invalid("GaussianBlur", "sigma", "a positive number or a pair (min, max)", sigma) from None
        if not 0 < low <= high:
            raise invalid("GaussianBlur", "sigma", "a positive number or a pair (min, max) with 0 < min <= max", sigma)
        self.sigma = (low, high)
        self.generator = generator

    def apply(self, array, batched):
        self._check_spatial(array, batched)
        four_d, restore = as_batch_of_images(array, batched)
        sigma = resolve_generator(self.generator).uniform(*self.sigma, size=four_d.shape[0])
        return restore(blur_batch(four_d, self.kernel_size, sigma, sigma))
