"""Named filter kernels, each a float64 NumPy array, and ``get_kernel`` for command-line specs.

Every kernel here is meant for ``correlate`` (the deep-learning convention): the weight
at row ``r``, column ``c`` multiplies the pixel ``r - k // 2`` rows below and
``c - k // 2`` columns right of the output pixel. Rows grow downwards and columns to
the right, as in an image array. Derivative kernels (Sobel, Prewitt) are therefore
positive where the intensity increases to the right (``_x``) or downwards (``_y``).
"""

from __future__ import annotations

import math

import numpy

from convstack.backend import check_allocation
from convstack.nn.functional._utils import invalid


def _odd_size(op: str, size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, numpy.integer)) or size < 1 or size % 2 == 0:
        raise invalid(op, "size", "a positive odd integer (the kernel needs a centre cell)", size)
    return int(size)


def _positive(op: str, argument: str, value) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, numpy.integer, numpy.floating))
        or not (0 < value < math.inf)
    ):
        raise invalid(op, argument, "a positive finite number", value)
    return float(value)


def _fits(op: str, argument: str, value, side: int, arrays: int = 1) -> None:
    """Refuse a ``side`` x ``side`` kernel (``arrays`` float64 buffers of it) that cannot fit, before allocating."""
    check_allocation(arrays * side * side * 8, f"{op}: a {side}x{side} kernel", f"{argument} {value}",
                     hint=f"choose a smaller {argument}")


def _grid(size: int):
    """Column (x, to the right) and row (y, downwards) offsets from the centre of a size x size kernel."""
    offsets = numpy.arange(size, dtype=numpy.float64) - size // 2
    return numpy.meshgrid(offsets, offsets)  # x varies along columns, y along rows


def identity(size: int = 3) -> numpy.ndarray:
    """``size`` x ``size`` zeros with a 1 in the centre: filtering returns the image unchanged.

    Examples:
        >>> identity()
        array([[0., 0., 0.],
               [0., 1., 0.],
               [0., 0., 0.]])
    """
    size = _odd_size("identity", size)
    _fits("identity", "size", size, size)
    kernel = numpy.zeros((size, size))
    kernel[size // 2, size // 2] = 1.0
    return kernel


def shift(dx: int, dy: int = 0) -> numpy.ndarray:
    """Move the image content ``dx`` pixels right and ``dy`` pixels down (negative: left, up).

    Under correlation, ``out[y, x] = image[y - dy, x - dx]``; the pixels that enter are the
    boundary's (zeros by default). The kernel is (2m + 1) square, m = max(|dx|, |dy|), with
    one 1 at ``(m - dy, m - dx)``. The lecture's kernel with the 1 right of the centre is
    ``shift(-1, 0)``: it shifts the image left by one pixel.

    Examples:
        >>> shift(-1, 0)
        array([[0., 0., 0.],
               [0., 0., 1.],
               [0., 0., 0.]])
    """
    for name, value in (("dx", dx), ("dy", dy)):
        if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)):
            raise invalid("shift", name, "an integer number of pixels", value)
    reach = max(abs(dx), abs(dy), 1)
    _fits("shift", "dx" if abs(dx) >= abs(dy) else "dy", dx if abs(dx) >= abs(dy) else dy, 2 * reach + 1)
    kernel = numpy.zeros((2 * reach + 1, 2 * reach + 1))
    kernel[reach - dy, reach - dx] = 1.0
    return kernel


def box(n: int = 3) -> numpy.ndarray:
    """The n x n mean filter (all weights 1 / n^2): blur.

    An even ``n`` is allowed; its centre is cell ``n // 2`` (see ``correlate``).

    Examples:
        >>> box(2)
        array([[0.25, 0.25],
               [0.25, 0.25]])
    """
    if isinstance(n, bool) or not isinstance(n, (int, numpy.integer)) or n < 1:
        raise invalid("box", "n", "a positive integer", n)
    _fits("box", "n", n, n)
    return numpy.full((n, n), 1.0 / (n * n))


def gaussian(sigma: float, size: int | None = None) -> numpy.ndarray:
    """A normalised 2-D Gaussian, ``exp(-(x^2 + y^2) / (2 sigma^2))`` divided by its sum.

    Args:
        sigma: standard deviation in pixels, positive.
        size: odd side length; default ``2 * ceil(3 * sigma) + 1`` (three sigmas each side,
            as scipy.ndimage.gaussian_filter with ``truncate=3``).

    Examples:
        >>> gaussian(1.0).shape, float(gaussian(1.0).sum())
        ((7, 7), 1.0)
    """
    sigma = _positive("gaussian", "sigma", sigma)
    argument, value = ("sigma", sigma) if size is None else ("size", size)
    size = 2 * math.ceil(3 * sigma) + 1 if size is None else _odd_size("gaussian", size)
    _fits("gaussian", argument, value, size, arrays=2)
    offsets = numpy.arange(size, dtype=numpy.float64) - size // 2
    profile = numpy.exp(-(offsets**2) / (2 * sigma**2))  # separable: the 2-D kernel is an outer product
    kernel = numpy.outer(profile, profile)
    return kernel / kernel.sum()


def sharpen() -> numpy.ndarray:
    """The lecture's sharpening filter, ``2 * identity(3) - box(3)``: the image plus its detail.

    Accentuates differences with the local average; the weights sum to 1.

    Examples:
        >>> (sharpen() * 9).round(6)
        array([[-1., -1., -1.],
               [-1., 17., -1.],
               [-1., -1., -1.]])
    """
    return 2.0 * identity(3) - box(3)


def sobel_x() -> numpy.ndarray:
    """Sobel derivative along x (columns): responds to vertical edges, positive for dark-to-bright.

    Examples:
        >>> sobel_x()
        array([[-1.,  0.,  1.],
               [-2.,  0.,  2.],
               [-1.,  0.,  1.]])
    """
    return numpy.outer([1.0, 2.0, 1.0], [-1.0, 0.0, 1.0])


def sobel_y() -> numpy.ndarray:
    """Sobel derivative along y (rows, downwards): responds to horizontal edges.

    Examples:
        >>> sobel_y()
        array([[-1., -2., -1.],
               [ 0.,  0.,  0.],
               [ 1.,  2.,  1.]])
    """
    return sobel_x().T.copy()


def prewitt_x() -> numpy.ndarray:
    """Prewitt derivative along x: as ``sobel_x`` with equal weights across the rows.

    Examples:
        >>> prewitt_x()
        array([[-1.,  0.,  1.],
               [-1.,  0.,  1.],
               [-1.,  0.,  1.]])
    """
    return numpy.outer([1.0, 1.0, 1.0], [-1.0, 0.0, 1.0])


def prewitt_y() -> numpy.ndarray:
    """Prewitt derivative along y (rows, downwards).

    Examples:
        >>> prewitt_y()
        array([[-1., -1., -1.],
               [ 0.,  0.,  0.],
               [ 1.,  1.,  1.]])
    """
    return prewitt_x().T.copy()


def laplacian() -> numpy.ndarray:
    """The 4-neighbour discrete Laplacian (sum of second differences along x and y); sums to 0.

    Examples:
        >>> laplacian()
        array([[ 0.,  1.,  0.],
               [ 1., -4.,  1.],
               [ 0.,  1.,  0.]])
    """
    return numpy.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def emboss() -> numpy.ndarray:
    """A diagonal derivative (top-left to bottom-right) that reads as relief; sums to 0.

    Flat regions give 0, so display it offset to mid-grey (``convstack filter`` adds 128).

    Examples:
        >>> emboss()
        array([[-2., -1.,  0.],
               [-1.,  0.,  1.],
               [ 0.,  1.,  2.]])
    """
    return numpy.array([[-2.0, -1.0, 0.0], [-1.0, 0.0, 1.0], [0.0, 1.0, 2.0]])


def gabor(
    theta: float,
    sigma: float,
    wavelength: float,
    phase: float = 0.0,
    gamma: float = 1.0,
    size: int | None = None,
    zero_mean: bool = False,
) -> numpy.ndarray:
    """The real part of a Gabor function: a cosine grating under a Gaussian envelope.

    ``g(x, y) = exp(-(x'^2 + gamma^2 y'^2) / (2 sigma^2)) * cos(2 pi x' / wavelength + phase)``
    with ``x' = x cos(theta) + y sin(theta)``, ``y' = -x sin(theta) + y cos(theta)``,
    x to the right and y downwards. ``theta = 0`` gives vertical stripes (it responds to
    vertical edges and gratings); the peak weight is 1 at the centre when ``phase = 0``.

    Args:
        theta: orientation of the grating's normal, in radians.
        sigma: envelope standard deviation in pixels, positive.
        wavelength: period of the cosine in pixels, positive.
        phase: phase offset in radians (0: even/symmetric, pi/2: odd).
        gamma: spatial aspect ratio (envelope along y' is sigma / gamma), positive.
        size: odd side length; default ``2 * ceil(3 * sigma * max(1, 1 / gamma)) + 1``.
        zero_mean: subtract the mean so that flat regions give exactly 0.

    Examples:
        >>> k = gabor(0.0, 2.0, 4.0)
        >>> k.shape, float(k[6, 6]), float(k[6, 8]) < 0
        ((13, 13), 1.0, True)
    """
    sigma = _positive("gabor", "sigma", sigma)
    wavelength = _positive("gabor", "wavelength", wavelength)
    gamma = _positive("gabor", "gamma", gamma)
    for name, value in (("theta", theta), ("phase", phase)):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float, numpy.integer, numpy.floating))
            or not (math.isfinite(value))
        ):
            raise invalid("gabor", name, "a finite number of radians", value)
    argument, value = ("sigma", sigma) if size is None else ("size", size)
    size = 2 * math.ceil(3 * sigma * max(1.0, 1.0 / gamma)) + 1 if size is None else _odd_size("gabor", size)
    _fits("gabor", argument, value, size, arrays=6)  # the grids, the rotated coordinates, the envelope, the kernel
    x, y = _grid(size)
    along = x * math.cos(theta) + y * math.sin(theta)  # x'
    across = -x * math.sin(theta) + y * math.cos(theta)  # y'
    envelope = numpy.exp(-(along**2 + gamma**2 * across**2) / (2 * sigma**2))
    kernel = envelope * numpy.cos(2 * math.pi * along / wavelength + phase)
    return kernel - kernel.mean() if zero_mean else kernel


# ----------------------------------------------------------------------------- command-line specs
# name -> (function, ((argument, type), ...), number of required arguments)
_SPECS = {
    "identity": (identity, (("size", int),), 0),
    "shift": (shift, (("dx", int), ("dy", int)), 2),
    "box": (box, (("n", int),), 0),
    "gaussian": (gaussian, (("sigma", float), ("size", int)), 1),
    "sharpen": (sharpen, (), 0),
    "sobel_x": (sobel_x, (), 0),
    "sobel_y": (sobel_y, (), 0),
    "prewitt_x": (prewitt_x, (), 0),
    "prewitt_y": (prewitt_y, (), 0),
    "laplacian": (laplacian, (), 0),
    "emboss": (emboss, (), 0),
    "gabor": (
        gabor,
        (("theta", float), ("sigma", float), ("wavelength", float), ("phase", float), ("gamma", float)),
        3,
    ),
}
KERNEL_NAMES = tuple(_SPECS)


def _usage(name: str) -> str:
    """``gaussian:sigma[,size]``, ``box[:n]``, ``sharpen``: the form a spec for ``name`` takes."""
    _, arguments, required = _SPECS[name]
    names = [argument for argument, _ in arguments]
    text = name + (":" + ",".join(names[:required]) if required else "")
    for position, argument in enumerate(names[required:]):
        text += f"[{',' if required or position else ':'}{argument}]"
    return text


def get_kernel(spec: str) -> numpy.ndarray:
    """The kernel named by a command-line ``spec``: ``NAME`` or ``NAME:ARG,ARG,...``.

    Specs: ``identity[:size]``, ``shift:dx,dy``, ``box[:n]``, ``gaussian:sigma[,size]``,
    ``sharpen``, ``sobel_x``, ``sobel_y``, ``prewitt_x``, ``prewitt_y``, ``laplacian``,
    ``emboss``, ``gabor:theta,sigma,wavelength[,phase[,gamma]]`` (angles in radians).

    Raises:
        ValueError: for an unknown name or arguments of the wrong number or type, naming
            the spec and the expected form.

    Examples:
        >>> get_kernel("box:2")
        array([[0.25, 0.25],
               [0.25, 0.25]])
    """
    if not isinstance(spec, str):
        raise ValueError(f"kernel spec: expected a string such as 'gaussian:2', received {spec!r}")
    name, _, text = spec.strip().partition(":")
    if name not in _SPECS:
        raise ValueError(f"unknown kernel {name!r} in {spec!r}: expected one of {', '.join(KERNEL_NAMES)}")
    function, arguments, required = _SPECS[name]
    values = [v.strip() for v in text.split(",")] if text.strip() else []
    if not required <= len(values) <= len(arguments):
        raise ValueError(f"kernel {spec!r}: expected {_usage(name)}, received {len(values)} argument(s)")
    parsed = []
    for (argument, kind), value in zip(arguments, values):
        try:
            parsed.append(kind(value))
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise ValueError(
                f"kernel {spec!r}: expected {noun} for `{argument}` ({_usage(name)}), received {value!r}"
            ) from None
    return function(*parsed)
