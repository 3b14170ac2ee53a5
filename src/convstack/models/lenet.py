"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied to
document recognition"), in the modern form the lectures teach: ReLU and max pooling.

    input 1x28x28
    -> conv 5x5, 6 maps, padding 2 -> ReLU -> max pool 2x2   (6x14x14)
    -> conv 5x5, 16 maps           -> ReLU -> max pool 2x2   (16x5x5)
    -> fc 400->120 -> ReLU -> fc 120->84 -> ReLU -> fc 84->10

61,706 parameters for 10 classes at 1x28x28.
"""

from __future__ import annotations

from convstack import nn


class LeNet5(nn.Module):
    """LeNet-5 for ``in_channels`` x ``input_size`` x ``input_size`` images.

    Args:
        num_classes: size of the output layer.
        in_channels: image channels (1 for Fashion-MNIST).
        input_size: image height and width; the first convolution keeps it (padding 2),
            so the flattened features are 16 x s x s with s = ((input_size // 2) - 4) // 2.

    Shape:
        input (N, in_channels, input_size, input_size) -> output (N, num_classes)
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28):
        super().__init__()
        side = (input_size // 2 - 4) // 2
        if side < 1:
            raise ValueError(
                f"lenet5: invalid value for argument `input_size`: expected at least 12, received {input_size}"
            )
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * side * side, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def lenet5(num_classes: int = 10, in_channels: int = 1, input_size: int = 28, original: bool = False):
    """LeNet-5 (LeCun et al. 1998) with ReLU and max pooling; see ``LeNet5``.

    With ``original=True``, the 1998 paper's network instead (C3 connection table, scaled tanh,
    trainable subsampling, linear output in place of the RBF layer); see
    ``convstack.models.lenet_original.lenet5_original``.
    """
    if original:
        from convstack.models.lenet_original import lenet5_original

        return lenet5_original(num_classes=num_classes, in_channels=in_channels, input_size=input_size)
    return LeNet5(num_classes=num_classes, in_channels=in_channels, input_size=input_size)
