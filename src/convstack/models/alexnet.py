"""AlexNet (Krizhevsky, Sutskever & Hinton 2012, "ImageNet classification with deep
convolutional neural networks").

By default torchvision's single-tower configuration (64-192-384-256-256 maps, no local
response normalisation, adaptive 6x6 average pool before the classifier), with
torchvision's module indices so its state dicts load with ``strict=True``:

    features.0  conv 11x11/4, 64, pad 2   -> ReLU -> max pool 3/2
    features.3  conv 5x5, 192, pad 2      -> ReLU -> max pool 3/2
    features.6  conv 3x3, 384             -> ReLU
    features.8  conv 3x3, 256             -> ReLU
    features.10 conv 3x3, 256             -> ReLU -> max pool 3/2
    avgpool     adaptive average pool to 6x6
    classifier  dropout -> fc 9216->4096 -> ReLU -> dropout -> fc 4096->4096 -> ReLU -> fc 4096->classes

61,100,840 parameters for 1000 classes at 3x224x224.
"""

from __future__ import annotations

from convstack import nn
from convstack.nn.functional._utils import invalid

#: Below this side the 11x11/4 stem and three 3/2 pools leave nothing (torchvision's minimum is 63).
SMALL_INPUT = 63


class AlexNet(nn.Module):
    """AlexNet; see the module docstring for the layout and ``alexnet`` for the options."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, input_size: int = 224, lrn: bool = False,
                 dropout: float = 0.5, hidden: int = 4096):
        super().__init__()
        for argument, value in (("num_classes", num_classes), ("in_channels", in_channels),
                                ("input_size", input_size), ("hidden", hidden)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise invalid("alexnet", argument, "a positive integer", value)
        small = input_size < SMALL_INPUT
        # Small images: a 3x3 stride-1 stem instead of 11x11 stride 4 (same index, same names).
        stem = dict(kernel_size=3, stride=1, padding=1) if small else dict(kernel_size=11, stride=4, padding=2)
        if lrn:
            # The 2012 paper: 96-256-384-384-256 maps, LRN after the first two ReLUs, and the two-GPU
            # connectivity as groups=2 on conv2, conv4 and conv5 (conv3 sees both towers).
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, 96, **stem), nn.ReLU(inplace=True),
                nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0), nn.MaxPool2d(3, 2),
                nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(inplace=True),
                nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0), nn.MaxPool2d(3, 2),
                nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(inplace=True),
                nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2),
            )
        else:
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, 64, **stem), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
                nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
                nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2),
            )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * 6 * 6, hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        features = self.avgpool(self.features(x))  # (N, 256, 6, 6)
        return self.classifier(features.flatten(1))  # (N, num_classes)


def alexnet(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224, lrn: bool = False,
            dropout: float = 0.5, hidden: int = 4096) -> AlexNet:
    """AlexNet (Krizhevsky, Sutskever & Hinton 2012), torchvision's single-tower layout by default.

    Args:
        num_classes: outputs of the last layer.
        in_channels: image channels.
        input_size: image side. Below 63 (where the 11x11/4 stem and three pools would leave
            no pixel) the stem is a 3x3 stride-1 convolution with padding 1 instead; at 28x28 the
            feature map is then 256x2x2, which the adaptive pool spreads to 6x6.
        lrn: the 2012 paper's variant instead: 96-256-384-384-256 maps, local response
            normalisation (size 5, alpha 1e-4, beta 0.75, k 2) after the first two ReLUs, and the
            two-GPU connectivity as ``groups=2`` on conv2, conv4 and conv5: 60,965,224 parameters
            for 1000 classes (the paper's "60 million").
        dropout: dropout probability before the first two fully connected layers.
        hidden: width of the two hidden fully connected layers (4096 in the paper; smaller for
            quick experiments and tests).

    Shape:
        input (N, in_channels, H, W) with H, W >= 63 (any size >= 1 with the small stem)
        -> output (N, num_classes).

    Examples:
        >>> import convstack as cs
        >>> model = alexnet(num_classes=10, in_channels=1, input_size=28, hidden=64)
        >>> model(cs.randn(2, 1, 28, 28)).shape
        (2, 10)
    """
    return AlexNet(num_classes=num_classes, in_channels=in_channels, input_size=input_size, lrn=lrn,
                   dropout=dropout, hidden=hidden)
