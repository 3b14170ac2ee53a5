"""A fully convolutional network for semantic segmentation in the style of FCN-16s (Long,
Shelhamer & Darrell 2015, "Fully convolutional networks for semantic segmentation"): a
convolutional backbone of stages (two 3x3 convolutions -> ReLU, then a 2x2 max pool), 1x1
convolutions scoring every class at the last two scales, the coarse scores upsampled 2x by a
transposed convolution and added to the finer ones ("skip" fusion), and the sum upsampled back
to the input's size by a second transposed convolution ("backwards strided convolution").
Both upsamplings are initialised to bilinear interpolation, as in the paper, and learned.

The backbone is small and trained from scratch (the paper adapts a pretrained VGG-16).
"""

from __future__ import annotations

import numpy

import convstack.nn.functional as F
from convstack import nn
from convstack.autograd import no_grad
from convstack.nn.functional._utils import invalid


def bilinear_kernel(size: int) -> numpy.ndarray:
    """The ``size x size`` kernel of bilinear upsampling by ``size // 2`` (FCN's ``upsample_filt``)."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    ramp = 1 - numpy.abs(numpy.arange(size) - center) / factor  # (size,)
    return numpy.outer(ramp, ramp)  # (size, size)


def bilinear_upsampling(channels: int, factor: int) -> nn.ConvTranspose2d:
    """A per-channel transposed convolution that starts as bilinear upsampling by ``factor``.

    Kernel ``2 * factor``, stride ``factor``, padding ``factor // 2``: a side ``s`` becomes
    ``(s - 1) * factor - 2 * (factor // 2) + 2 * factor = s * factor`` for even factors.
    """
    layer = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=factor // 2, bias=False)
    kernel = bilinear_kernel(2 * factor)
    weight = numpy.zeros(layer.weight.shape, dtype=numpy.float64)  # (C_in, C_out, k, k)
    weight[numpy.arange(channels), numpy.arange(channels)] = kernel
    with no_grad():
        layer.weight.data[...] = weight.astype(layer.weight.dtype)
    return layer


def _fit(x, height: int, width: int):
    """Crop or edge-pad ``x``'s last two axes to ``height x width`` (sides that pooling floored)."""
    x = x[:, :, :height, :width]
    missing_h, missing_w = height - x.shape[-2], width - x.shape[-1]
    if missing_h or missing_w:
        x = F.pad(x, (0, missing_w, 0, missing_h), mode="replicate")
    return x


class FCN(nn.Module):
    """FCN-16s-style segmentation network; see ``fcn_segmentation``."""

    def __init__(self, num_classes: int = 21, in_channels: int = 3, input_size: int = 224,
                 widths: tuple = (32, 64, 128)):
        super().__init__()
        for argument, value in (("num_classes", num_classes), ("in_channels", in_channels),
                                ("input_size", input_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise invalid("fcn_segmentation", argument, "a positive integer", value)
        widths = tuple(widths)
        if len(widths) < 2 or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise invalid("fcn_segmentation", "widths", "a tuple of at least 2 positive integers", widths)
        if input_size < 2 ** len(widths):
            raise invalid("fcn_segmentation", "input_size", f"at least 2 ** len(widths) = {2 ** len(widths)}",
                          input_size)
        stages, channels = [], in_channels
        for width in widths:
            stages.append(nn.Sequential(
                nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
                nn.MaxPool2d(2, 2),
            ))
            channels = width
        self.stages = nn.ModuleList(stages)
        self.score = nn.Conv2d(widths[-1], num_classes, 1)  # at stride 2**len(widths)
        self.score_skip = nn.Conv2d(widths[-2], num_classes, 1)  # at stride 2**(len(widths) - 1)
        self.up2 = bilinear_upsampling(num_classes, 2)
        self.upsample = bilinear_upsampling(num_classes, 2 ** (len(widths) - 1))

    def forward(self, x):
        height, width = x.shape[-2:]
        for stage in self.stages[:-1]:
            x = stage(x)
        skip = x  # (N, widths[-2], H / 2**(k-1), W / 2**(k-1))
        coarse = self.score(self.stages[-1](x))  # (N, classes, H / 2**k, W / 2**k)
        fine = self.score_skip(skip)
        fused = fine + _fit(self.up2(coarse), fine.shape[-2], fine.shape[-1])
        return _fit(self.upsample(fused), height, width)  # (N, classes, H, W)


def fcn_segmentation(num_classes: int = 21, in_channels: int = 3, input_size: int = 224,
                     widths: tuple = (32, 64, 128)) -> FCN:
    """An FCN-16s-style segmentation network (Long, Shelhamer & Darrell 2015): per-pixel logits.

    Train it with ``cross_entropy(logits, labels)`` where ``labels`` is (N, H, W) of class indices.

    Args:
        num_classes: classes per pixel (21 for PASCAL VOC: 20 objects and background).
        in_channels: image channels.
        input_size: image side, at least ``2 ** len(widths)`` (only checked; any larger size works).
        widths: maps of each backbone stage; each stage halves the side.

    Shape:
        input (N, in_channels, H, W) -> output (N, num_classes, H, W). Where pooling floors an
        odd side, the upsampled scores are cropped or edge-padded back to H x W.

    Examples:
        >>> import convstack as cs
        >>> model = fcn_segmentation(num_classes=3, in_channels=1, input_size=28, widths=(4, 8))
        >>> model(cs.randn(2, 1, 28, 28)).shape
        (2, 3, 28, 28)
    """
    return FCN(num_classes=num_classes, in_channels=in_channels, input_size=input_size, widths=widths)
