"""Channel-rearranging layers: ``PixelShuffle``, ``PixelUnshuffle`` and ``ChannelShuffle``."""

from __future__ import annotations

from convstack.nn import functional as F
from convstack.nn.modules._args import ArgumentCheck, Configurable
from convstack.nn.modules.module import Module


class PixelShuffle(Configurable, Module):
    """(*, C r^2, H, W) -> (*, C, H r, W r): the sub-pixel convolution's upsampling (Shi et al. 2016).

    Examples:
        >>> import convstack as cs
        >>> cs.nn.PixelShuffle(3)(cs.randn(1, 9, 4, 4)).shape
        (1, 1, 12, 12)
    """

    _config_keys = ("upscale_factor",)

    def __init__(self, upscale_factor: int):
        super().__init__()
        check = ArgumentCheck("PixelShuffle")
        self.upscale_factor = check.positive_int("upscale_factor", upscale_factor)
        check.done()

    def forward(self, input):
        return F.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Configurable, Module):
    """(*, C, H r, W r) -> (*, C r^2, H, W), the inverse of ``PixelShuffle``."""

    _config_keys = ("downscale_factor",)

    def __init__(self, downscale_factor: int):
        super().__init__()
        check = ArgumentCheck("PixelUnshuffle")
        self.downscale_factor = check.positive_int("downscale_factor", downscale_factor)
        check.done()

    def forward(self, input):
        return F.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"


class ChannelShuffle(Configurable, Module):
    """Interleave the channels of ``groups`` groups (ShuffleNet, Zhang et al. 2018); input (N, C, *)."""

    _config_keys = ("groups",)

    def __init__(self, groups: int):
        super().__init__()
        check = ArgumentCheck("ChannelShuffle")
        self.groups = check.positive_int("groups", groups)
        check.done()

    def forward(self, input):
        return F.channel_shuffle(input, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
