"""GoogLeNet, Inception v1 (Szegedy et al. 2015, "Going deeper with convolutions", Table 1):
nine Inception modules, each four parallel branches concatenated along the maps (1x1; 1x1
reduction -> 3x3; 1x1 reduction -> "5x5"; 3x3 max pool -> 1x1 projection).

torchvision's version and names, for weight exchange: every convolution is a ``BasicConv2d``
(convolution without bias -> ``BatchNorm2d(eps=0.001)`` -> ReLU; the paper predates batch
norm), and branch 3 uses a 3x3 convolution where the paper has 5x5 (a known quirk of the
torchvision port, kept so that its state dicts load with ``strict=True``). The two auxiliary
classifiers (after inception4a and inception4d) are optional and off by default. torchvision's
``transform_input`` (re-scaling ImageNet-normalised input for its ported weights) is not
reproduced: feed inputs normalised the way the loaded weights expect.

6,624,904 parameters for 1000 classes at 3x224x224 without auxiliary heads
(13,004,888 with them).
"""

from __future__ import annotations

import convstack as cs
import convstack.nn.functional as F
from convstack import nn
from convstack.nn.functional._utils import invalid

#: Below this side the 7x7/2 stem and the first 3x3/2 pool shrink the image too much.
SMALL_INPUT = 64

#: (1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool projection) per Inception module (Table 1).
INCEPTION = {
    "3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64), "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64), "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128), "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}


class BasicConv2d(nn.Module):
    """Convolution (no bias) -> batch norm (eps 0.001) -> ReLU, as torchvision's."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four branches on the same input, concatenated: (N, C, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)."""

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int,
                 pool_proj: int):
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, 1), BasicConv2d(ch3x3red, ch3x3, 3, padding=1))
        # torchvision's 3x3 where the paper has 5x5 (see the module docstring).
        self.branch3 = nn.Sequential(BasicConv2d(in_channels, ch5x5red, 1), BasicConv2d(ch5x5red, ch5x5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     BasicConv2d(in_channels, pool_proj, 1))

    def forward(self, x):
        return cs.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: 4x4 average pool -> 1x1 conv 128 -> fc 1024 -> dropout 0.7 -> fc classes."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7):
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, 1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = self.conv(F.adaptive_avg_pool2d(x, (4, 4)))  # (N, 128, 4, 4)
        return self.fc2(self.dropout(F.relu(self.fc1(x.flatten(1)))))


class GoogLeNet(nn.Module):
    """GoogLeNet with torchvision's module names; see ``googlenet``."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, input_size: int = 224,
                 aux_logits: bool = False, dropout: float = 0.2, dropout_aux: float = 0.7):
        super().__init__()
        for argument, value in (("num_classes", num_classes), ("in_channels", in_channels),
                                ("input_size", input_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise invalid("googlenet", argument, "a positive integer", value)
        self.aux_logits = aux_logits
        if input_size < SMALL_INPUT:
            # Small images: a 3x3 stride-1 stem and no first max pool (28x28 reaches inception5 as 4x4).
            self.conv1 = BasicConv2d(in_channels, 64, 3, stride=1, padding=1)
            self.maxpool1 = nn.Identity()
        else:
            self.conv1 = BasicConv2d(in_channels, 64, 7, stride=2, padding=3)
            self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, 1)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(*INCEPTION["3a"])
        self.inception3b = Inception(*INCEPTION["3b"])
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(*INCEPTION["4a"])
        self.inception4b = Inception(*INCEPTION["4b"])
        self.inception4c = Inception(*INCEPTION["4c"])
        self.inception4d = Inception(*INCEPTION["4d"])
        self.inception4e = Inception(*INCEPTION["4e"])
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(*INCEPTION["5a"])
        self.inception5b = Inception(*INCEPTION["5b"])
        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, dropout_aux)
            self.aux2 = InceptionAux(528, num_classes, dropout_aux)
        else:
            self.aux1 = None
            self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)
        # torchvision's initialisation: truncated normal, std 0.01, for convolutions and linear layers.
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(module.weight, mean=0.0, std=0.01, a=-2, b=2)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x):
        """Logits (N, num_classes); in training with ``aux_logits``, ``(logits, aux2, aux1)`` as torchvision."""
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))  # (N, 192, H / 8, W / 8) with the paper's stem
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))  # (N, 1024, H / 32, W / 32)
        logits = self.fc(self.dropout(self.avgpool(x).flatten(1)))
        if aux1 is not None:
            return logits, aux2, aux1
        return logits


def googlenet(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224, aux_logits: bool = False,
              dropout: float = 0.2, dropout_aux: float = 0.7) -> GoogLeNet:
    """GoogLeNet / Inception v1 (Szegedy et al. 2015) as torchvision builds it.

    Differences from the paper, kept for weight exchange with torchvision: batch norm after
    every convolution (``BasicConv2d``) and a 3x3 convolution in the "5x5" branch.
    6,624,904 parameters for 1000 classes at 3x224x224 without auxiliary heads.

    Args:
        num_classes: outputs of the classifier (and of the auxiliary heads).
        in_channels: image channels.
        input_size: image side. From 64 up the paper's stem (7x7/2 convolution, 3x3/2 max
            pool); below 64 a 3x3 stride-1 stem and no first max pool, so that 28x28 images
            reach the last Inception modules as 4x4.
        aux_logits: add the two auxiliary classifiers (after inception4a and inception4d); in
            training mode the model then returns ``(logits, aux2, aux1)``, in eval mode the logits.
        dropout: dropout before the final fully connected layer.
        dropout_aux: dropout in the auxiliary heads.

    Shape:
        input (N, in_channels, H, W) -> output (N, num_classes).
    """
    return GoogLeNet(num_classes=num_classes, in_channels=in_channels, input_size=input_size, aux_logits=aux_logits,
                     dropout=dropout, dropout_aux=dropout_aux)
