"""The deterministic image operations behind the random transforms (``torchvision.transforms.v2.functional``).

Each takes one image (..., C, H, W) or (..., H, W), float in [0, 1] or uint8, and returns the
same kind; Tensors in give Tensors out.

    >>> from convstack.data import functional as TF
    >>> TF.rotate(numpy.eye(3, dtype=numpy.float32)[None], 90.0)[0]
    array([[0., 0., 1.],
           [0., 1., 0.],
           [1., 0., 0.]], dtype=float32)
"""

from convstack.data.affine import affine, rotate
from convstack.data.blur import gaussian_blur
from convstack.data.color import adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation
from convstack.data.crop import resized_crop
from convstack.data.tone import adjust_sharpness, autocontrast, equalize, invert, posterize, solarize

__all__ = [
    "affine", "rotate", "resized_crop", "gaussian_blur", "adjust_brightness", "adjust_contrast",
    "adjust_saturation", "adjust_hue", "adjust_sharpness", "posterize", "solarize", "autocontrast",
    "equalize", "invert",
]
