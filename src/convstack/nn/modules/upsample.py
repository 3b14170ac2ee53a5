"""Resizing layers: ``Upsample`` and the shorthands ``UpsamplingNearest2d``, ``UpsamplingBilinear2d``."""

from __future__ import annotations

import numbers

from convstack.nn import functional as F
from convstack.nn.modules._args import ArgumentCheck, Configurable
from convstack.nn.modules.module import Module

_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")


def _as_written(value, kind):
    """``size`` as ints, ``scale_factor`` as floats (a tuple for sequences), as PyTorch stores them."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return tuple(kind(v) if isinstance(v, numbers.Real) and not isinstance(v, bool) else v for v in value)
    return kind(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else value


class Upsample(Configurable, Module):
    """Resize (N, C, *spatial) inputs with ``F.interpolate``, to ``size`` or by ``scale_factor``.

    Args:
        size: output spatial size (an int or one per spatial dimension).
        scale_factor: multiplier of the spatial size (a number or one per dimension).
        mode: ``'nearest'``, ``'nearest-exact'``, ``'linear'``, ``'bilinear'``, ``'bicubic'``, ``'trilinear'``
            or ``'area'``.
        align_corners: linear and bicubic modes only (see ``F.interpolate``).
        recompute_scale_factor: interpolate from the computed sizes rather than from ``1 / scale_factor``.

    Shape:
        Input (N, C, *S), output (N, C, *S_out) with ``S_out = size`` or ``floor(S * scale_factor)``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.Upsample(scale_factor=2, mode="bilinear")(cs.randn(1, 3, 4, 5)).shape
        (1, 3, 8, 10)
    """

    _config_keys = ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor")

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        check = ArgumentCheck(type(self).__name__)
        if (size is None) == (scale_factor is None):
            check.fail("size", "exactly one of size and scale_factor", f"size={size!r}, scale_factor={scale_factor!r}")
        self.mode = check.choice("mode", mode, _MODES)
        if align_corners is not None:
            check.boolean("align_corners", align_corners)
            if mode not in ("linear", "bilinear", "bicubic", "trilinear"):
                check.fail("align_corners", "None unless mode is 'linear', 'bilinear', 'bicubic' or 'trilinear'",
                           align_corners)
        check.done()
        self.size = _as_written(size, int)
        self.scale_factor = _as_written(scale_factor, float)
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             self.recompute_scale_factor)

    def extra_repr(self) -> str:
        info = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return info + f", mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """``Upsample(size, scale_factor, mode='nearest')`` for (N, C, H, W) images."""

    _config_keys = ("size", "scale_factor")

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """``Upsample(size, scale_factor, mode='bilinear', align_corners=True)`` for (N, C, H, W) images."""

    _config_keys = ("size", "scale_factor")

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
