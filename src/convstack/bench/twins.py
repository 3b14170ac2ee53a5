"""PyTorch twins of the benchmarked convstack models, written by hand (no torchvision).

Same architecture and the same state-dict names as ``convstack.models`` (LeNet-5, CIFAR
ResNet-20 with option-A shortcuts, VGG-11), so that ``copy_weights`` starts both from the
same numbers. Imported only when PyTorch is installed.
"""

from __future__ import annotations

import numpy
import torch
from torch import nn
from torch.nn import functional as F


class LeNet5(nn.Module):  # convstack.models.lenet5
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class ZeroPadShortcut(nn.Module):  # convstack.models.resnet_cifar.ZeroPadShortcut (option A)
    def __init__(self, stride: int, extra: int):
        super().__init__()
        self.stride, self.extra = stride, extra

    def forward(self, x):
        return F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, 0, self.extra))


class CifarBasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None if stride == 1 and in_planes == planes else ZeroPadShortcut(stride, planes - in_planes)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class CifarResNet(nn.Module):  # convstack.models.resnet20 (n = 3)
    def __init__(self, n: int = 3, num_classes: int = 10, width: int = 16):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        in_planes = width
        for stage, planes in enumerate((width, width * 2, width * 4)):
            stride = 1 if stage == 0 else 2
            blocks = [CifarBasicBlock(in_planes, planes, stride)]
            blocks += [CifarBasicBlock(planes, planes) for _ in range(1, n)]
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
            in_planes = planes
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 4, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class VGG11(nn.Module):  # convstack.models.vgg11 (configuration A, no batch norm), for inputs >= 32x32
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers, channels = [], 3
        for item in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=True)]
                channels = item
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(True),
            nn.Dropout(0.5), nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def copy_weights(source, twin) -> None:
    """Copy a convstack model's parameters and buffers into its twin, by name; every name must match."""
    state = {name: torch.from_numpy(numpy.array(value.data)) for name, value in source.state_dict().items()}
    own = twin.state_dict()
    # PyTorch's batch norm counts its batches in a buffer convstack may not keep.
    missing = [name for name in own if name not in state and not name.endswith("num_batches_tracked")]
    unexpected = [name for name in state if name not in own]
    if missing or unexpected:
        raise ValueError(f"copy_weights: the twin does not match: missing {missing}, unexpected {unexpected}")
    twin.load_state_dict(state, strict=False)
