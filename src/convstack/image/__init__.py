"""Classical image filtering on convstack's own convolution (lecture 4: convolution as filtering).

- ``correlate`` / ``convolve``: 1-D signals, gray images, volumes and channel-last colour
  images, modes 'same' / 'full' / 'valid', five boundaries, matching scipy.ndimage.
- ``kernels``: identity, shift, box, gaussian, sharpen, Sobel, Prewitt, Laplacian, emboss,
  Gabor, and ``get_kernel('gaussian:2')`` for the command line.
- ``point``: point processing (invert, brightness, contrast, gamma, threshold).
- ``to_matrix``: the (doubly block) Toeplitz matrix that a correlation multiplies by.
- ``io``: read and write PNG/JPEG through Pillow (optional dependency).
"""

from convstack.image import kernels, point
from convstack.image.filtering import BOUNDARIES, MODES, convolve, correlate
from convstack.image.kernels import get_kernel
from convstack.image.point import brightness, contrast, gamma, invert, threshold
from convstack.image.toeplitz import to_matrix

__all__ = [
    "BOUNDARIES",
    "MODES",
    "brightness",
    "contrast",
    "convolve",
    "correlate",
    "gamma",
    "get_kernel",
    "invert",
    "kernels",
    "point",
    "threshold",
    "to_matrix",
]
