"""A small 3-D CNN for volumes (voxel grids, CT/MRI crops, video clips as time x height x
width), in the spirit of VoxNet (Maturana & Scherer 2015, "VoxNet: a 3D convolutional neural
network for real-time object recognition") and of Ji, Xu, Yang & Yu 2013 ("3D convolutional
neural networks for human action recognition"):

    input (N, C, D, H, W)
    -> [conv 3x3x3, padding 1 -> BatchNorm3d -> ReLU -> max pool 2x2x2] for each width but the last
    -> conv 3x3x3, padding 1 -> BatchNorm3d -> ReLU
    -> global average pool (N, widths[-1]) -> fc -> (N, num_classes)
"""

from __future__ import annotations

from convstack import nn
from convstack.nn.functional._utils import invalid


class CNN3d(nn.Module):
    """3-D convolutions (``features``), global average pool, ``fc``; see ``cnn3d``."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 32,
                 widths: tuple = (16, 32, 64)):
        super().__init__()
        for argument, value in (("num_classes", num_classes), ("in_channels", in_channels),
                                ("input_size", input_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise invalid("cnn3d", argument, "a positive integer", value)
        widths = tuple(widths)
        if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise invalid("cnn3d", "widths", "a non-empty tuple of positive integers", widths)
        pools = len(widths) - 1
        if input_size < 2 ** pools:
            raise invalid("cnn3d", "input_size", f"at least 2 ** (len(widths) - 1) = {2 ** pools}", input_size)
        layers, channels = [], in_channels
        for stage, width in enumerate(widths):
            layers += [nn.Conv3d(channels, width, 3, padding=1, bias=False), nn.BatchNorm3d(width),
                       nn.ReLU(inplace=True)]
            if stage < pools:
                layers.append(nn.MaxPool3d(2))
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x):
        x = self.pool(self.features(x))  # (N, widths[-1], 1, 1, 1)
        return self.fc(x.flatten(1))  # (N, num_classes)


def cnn3d(num_classes: int = 10, in_channels: int = 1, input_size: int = 32, widths: tuple = (16, 32, 64)) -> CNN3d:
    """A small 3-D CNN classifier for volumes (after VoxNet, Maturana & Scherer 2015).

    Args:
        num_classes: outputs of the classifier.
        in_channels: channels per voxel (1 for occupancy or density grids).
        input_size: volume side D = H = W, at least ``2 ** (len(widths) - 1)`` (each stage but
            the last halves it); any larger size works thanks to the global average pool.
        widths: maps of each 3x3x3 convolution stage.

    Shape:
        input (N, in_channels, D, H, W) -> output (N, num_classes).

    Examples:
        >>> import convstack as cs
        >>> model = cnn3d(num_classes=2, in_channels=1, input_size=8, widths=(4, 8))
        >>> model(cs.randn(2, 1, 8, 8, 8)).shape
        (2, 2)
    """
    return CNN3d(num_classes=num_classes, in_channels=in_channels, input_size=input_size, widths=widths)
