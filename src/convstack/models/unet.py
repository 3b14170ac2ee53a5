"""U-Net (Ronneberger, Fischer & Brox 2015, "U-Net: convolutional networks for biomedical
image segmentation"): a contracting path of double 3x3 convolutions and 2x2 max pools, an
expanding path of 2x2 transposed convolutions (halving the maps) whose output is concatenated
with the contracting path's feature map at the same scale, then double 3x3 convolutions, and a
1x1 convolution to per-pixel class scores.

Difference from the paper: the 3x3 convolutions use padding 1 ("same"), so the output has the
input's size and no cropping is needed; the paper's unpadded ("valid") convolutions map a
572x572 tile to a 388x388 output, and it crops the skip connections to fit. Where a side is
not divisible by ``2 ** depth``, the upsampled map is zero-padded to its skip's size.
Optional batch norm after each convolution (not in the paper).

Names: ``down.{i}`` (double convolutions of the contracting path, ``down.0`` on the input),
``up.{i}`` (transposed convolutions), ``decode.{i}`` (double convolutions after each
concatenation), ``head`` (the 1x1 classifier). At depth 4 and width 64 (the paper's),
31,030,658 parameters for 1 input channel and 2 classes.
"""

from __future__ import annotations

import convstack as cs
import convstack.nn.functional as F
from convstack import nn
from convstack.nn.functional._utils import invalid


def double_conv(in_channels: int, out_channels: int, batch_norm: bool = False) -> nn.Sequential:
    """(3x3 convolution, padding 1 [-> batch norm] -> ReLU) twice."""
    layers = []
    for channels in (in_channels, out_channels):
        layers.append(nn.Conv2d(channels, out_channels, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """U-Net with ``depth`` poolings and ``width * 2**i`` maps at level ``i``; see ``unet``."""

    def __init__(self, num_classes: int = 2, in_channels: int = 1, input_size: int = 572, depth: int = 4,
                 width: int = 64, batch_norm: bool = False):
        super().__init__()
        for argument, value in (("num_classes", num_classes), ("in_channels", in_channels),
                                ("input_size", input_size), ("depth", depth), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise invalid("unet", argument, "a positive integer", value)
        if input_size < 2 ** depth:
            raise invalid("unet", "input_size", f"at least 2 ** depth = {2 ** depth} (depth {depth})", input_size)
        widths = [width * 2 ** level for level in range(depth + 1)]
        self.depth = depth
        self.down = nn.ModuleList(
            double_conv(in_channels if level == 0 else widths[level - 1], widths[level], batch_norm)
            for level in range(depth + 1)
        )
        self.pool = nn.MaxPool2d(2, 2)
        # up[i] takes level depth - i to depth - i - 1, halving the maps ("up-convolution").
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[level], widths[level - 1], 2, stride=2) for level in range(depth, 0, -1)
        )
        self.decode = nn.ModuleList(
            double_conv(2 * widths[level - 1], widths[level - 1], batch_norm) for level in range(depth, 0, -1)
        )
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x):
        skips = []
        for level, block in enumerate(self.down):
            if level > 0:
                x = self.pool(x)
            x = block(x)  # (N, width * 2**level, H / 2**level, W / 2**level)
            skips.append(x)
        x = skips.pop()
        for up, decode in zip(self.up, self.decode):
            skip = skips.pop()
            x = up(x)
            missing_h, missing_w = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
            if missing_h or missing_w:  # odd sides: pad the upsampled map to its skip's size
                x = F.pad(x, (missing_w // 2, missing_w - missing_w // 2, missing_h // 2, missing_h - missing_h // 2))
            x = decode(cs.cat([skip, x], dim=1))  # (N, 2 * maps, h, w) -> (N, maps, h, w)
        return self.head(x)  # (N, num_classes, H, W)


def unet(num_classes: int = 2, in_channels: int = 1, input_size: int = 572, depth: int = 4, width: int = 64,
         batch_norm: bool = False) -> UNet:
    """U-Net (Ronneberger et al. 2015) with "same" convolutions: per-pixel logits of the input's size.

    See the module docstring for the difference from the paper (padded convolutions).

    Args:
        num_classes: output maps (classes per pixel; 2 in the paper).
        in_channels: image channels.
        input_size: image side, at least ``2 ** depth``; used only to check that.
        depth: number of 2x2 poolings (4 in the paper: five levels).
        width: maps at the first level (64 in the paper); level ``i`` has ``width * 2**i``.
        batch_norm: batch norm after every 3x3 convolution (not in the paper).

    Shape:
        input (N, in_channels, H, W) -> output (N, num_classes, H, W), with H, W >= 2 ** depth.

    Examples:
        >>> import convstack as cs
        >>> model = unet(num_classes=3, in_channels=1, input_size=28, depth=2, width=4)
        >>> model(cs.randn(2, 1, 28, 28)).shape
        (2, 3, 28, 28)
    """
    return UNet(num_classes=num_classes, in_channels=in_channels, input_size=input_size, depth=depth, width=width,
                batch_norm=batch_norm)
