"""The All Convolutional Net, model All-CNN-C (Springenberg, Dosovitskiy, Brox & Riedmiller
2015, "Striving for simplicity: the all convolutional net", Tables 1 and 2): no pooling layer
(stride-2 3x3 convolutions take its place), no fully connected layer (1x1 convolutions and a
global average over the map give the class scores):

    input (N, C, 32, 32) -> dropout 0.2
    -> conv 3x3 96 -> conv 3x3 96 -> conv 3x3/2 96 -> dropout 0.5              (96 x 16 x 16)
    -> conv 3x3 192 -> conv 3x3 192 -> conv 3x3/2 192 -> dropout 0.5           (192 x 8 x 8)
    -> conv 3x3 192 (no padding) -> conv 1x1 192 -> conv 1x1 classes           (classes x 6 x 6)
    -> global average -> (N, classes)

Every convolution but the last is followed by a ReLU; the 3x3 convolutions other than the
seventh are padded by 1. 1,369,738 parameters for 10 classes (the paper's "1.3 M").
"""

from __future__ import annotations

from convstack import nn
from convstack.nn.functional._utils import invalid


class AllConvNet(nn.Module):
    """All-CNN-C: ``features`` (convolutions and dropout) then ``pool`` (global average); see ``all_conv_net``."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, input_size: int = 32, widths: tuple = (96, 192),
                 input_dropout: float = 0.2, dropout: float = 0.5):
        super().__init__()
        for argument, value in (("num_classes", num_classes), ("in_channels", in_channels),
                                ("input_size", input_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise invalid("all_conv_net", argument, "a positive integer", value)
        widths = tuple(widths)
        if len(widths) != 2 or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise invalid("all_conv_net", "widths", "a tuple of 2 positive integers", widths)
        # Two stride-2 convolutions take s to ceil(ceil(s / 2) / 2); the unpadded 3x3 needs 3 left.
        if (input_size + 3) // 4 < 3:
            raise invalid("all_conv_net", "input_size", "at least 9 (3 pixels after two stride-2 convolutions)",
                          input_size)
        first, second = widths
        relu = nn.ReLU
        self.features = nn.Sequential(
            nn.Dropout(input_dropout),
            nn.Conv2d(in_channels, first, 3, padding=1), relu(inplace=True),
            nn.Conv2d(first, first, 3, padding=1), relu(inplace=True),
            nn.Conv2d(first, first, 3, stride=2, padding=1), relu(inplace=True),
            nn.Dropout(dropout),
            nn.Conv2d(first, second, 3, padding=1), relu(inplace=True),
            nn.Conv2d(second, second, 3, padding=1), relu(inplace=True),
            nn.Conv2d(second, second, 3, stride=2, padding=1), relu(inplace=True),
            nn.Dropout(dropout),
            nn.Conv2d(second, second, 3), relu(inplace=True),
            nn.Conv2d(second, second, 1), relu(inplace=True),
            nn.Conv2d(second, num_classes, 1),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.pool(self.features(x)).flatten(1)  # (N, classes, 1, 1) -> (N, classes)


def all_conv_net(num_classes: int = 10, in_channels: int = 3, input_size: int = 32, widths: tuple = (96, 192),
                 input_dropout: float = 0.2, dropout: float = 0.5) -> AllConvNet:
    """All-CNN-C (Springenberg et al. 2015): strided convolutions instead of pooling, global averaging.

    Args:
        num_classes: class scores (maps of the last 1x1 convolution).
        in_channels: image channels.
        input_size: image side, at least 9; 32 for CIFAR gives the paper's 6x6 score maps,
            28 for Fashion-MNIST gives 5x5.
        widths: maps of the two halves (96 and 192 in the paper).
        input_dropout: dropout on the input image (0.2 in the paper).
        dropout: dropout after each stride-2 convolution (0.5 in the paper).

    Shape:
        input (N, in_channels, H, W) -> output (N, num_classes).

    Examples:
        >>> import convstack as cs
        >>> model = all_conv_net(num_classes=10, in_channels=1, input_size=28, widths=(8, 16))
        >>> model(cs.randn(2, 1, 28, 28)).shape
        (2, 10)
    """
    return AllConvNet(num_classes=num_classes, in_channels=in_channels, input_size=input_size, widths=widths,
                      input_dropout=input_dropout, dropout=dropout)
