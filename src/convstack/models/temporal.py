"""A temporal convolutional network for classifying sequences: a stack of 1-D convolutions
over time with dilations 1, 2, 4, ... (the dilated convolutions of WaveNet, van den Oord et
al. 2016, and of the TCN of Bai, Kolter & Koltun 2018, "An empirical evaluation of generic
convolutional and recurrent networks for sequence modeling"), global average pooling over
time and a linear classifier.

    input (N, C, T) -> [conv k=3, dilation 2**i, padding 2**i (same length) [-> BN] -> ReLU] x levels
    -> average over time (N, hidden) -> fc -> (N, num_classes)

The receptive field of the last level is 1 + (k - 1)(2**levels - 1) steps (k = 3, 4 levels: 31).
Unlike the TCN paper, convolutions are not causal (a whole sequence is classified at once) and
the blocks have no residual connections.
"""

from __future__ import annotations

from convstack import nn
from convstack.nn.functional._utils import invalid


class TemporalCNN(nn.Module):
    """Dilated 1-D convolutions (``features``), global average pool, ``fc``; see ``temporal_cnn``."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 128, hidden: int = 32,
                 levels: int = 4, kernel_size: int = 3, batch_norm: bool = False):
        super().__init__()
        for argument, value in (("num_classes", num_classes), ("in_channels", in_channels),
                                ("input_size", input_size), ("hidden", hidden), ("levels", levels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise invalid("temporal_cnn", argument, "a positive integer", value)
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise invalid("temporal_cnn", "kernel_size", "an odd positive integer (same-length padding)", kernel_size)
        layers, channels = [], in_channels
        for level in range(levels):
            dilation = 2 ** level
            # padding = dilation * (k - 1) / 2 keeps the length: T + 2p - dilation * (k - 1) = T.
            layers.append(nn.Conv1d(channels, hidden, kernel_size, padding=dilation * (kernel_size - 1) // 2,
                                    dilation=dilation, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden))
            layers.append(nn.ReLU(inplace=True))
            channels = hidden
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x):
        x = self.pool(self.features(x))  # (N, hidden, 1)
        return self.fc(x.flatten(1))  # (N, num_classes)


def temporal_cnn(num_classes: int = 10, in_channels: int = 1, input_size: int = 128, hidden: int = 32,
                 levels: int = 4, kernel_size: int = 3, batch_norm: bool = False) -> TemporalCNN:
    """A dilated temporal CNN classifier (dilations 1, 2, 4, ...; Bai, Kolter & Koltun 2018).

    Args:
        num_classes: outputs of the classifier.
        in_channels: channels per time step (e.g. 3 for a 3-axis accelerometer).
        input_size: sequence length T; any length works (global average pooling), it is
            only checked to be positive.
        hidden: maps of every convolution.
        levels: number of convolutions; level ``i`` has dilation ``2**i``.
        kernel_size: odd kernel size of every convolution.
        batch_norm: batch norm after every convolution.

    Shape:
        input (N, in_channels, T) -> output (N, num_classes).

    Examples:
        >>> import convstack as cs
        >>> model = temporal_cnn(num_classes=3, in_channels=1, input_size=64)
        >>> model(cs.randn(4, 1, 64)).shape
        (4, 3)
    """
    return TemporalCNN(num_classes=num_classes, in_channels=in_channels, input_size=input_size, hidden=hidden,
                       levels=levels, kernel_size=kernel_size, batch_norm=batch_norm)
