"""ResNets for CIFAR-10 (He, Zhang, Ren & Sun 2016, "Deep residual learning for image
recognition", section 4.2): a 3x3 convolution with 16 maps, then three stages of n basic
blocks with 16, 32 and 64 maps (the first block of stages 2 and 3 strides 2), global average
pooling and a fully connected layer: 6n + 2 weighted layers (n = 3, 5, 9: ResNet-20/32/56).

Shortcuts are option A by default, the paper's choice for CIFAR: identity everywhere, and
where the shape changes the input subsampled by 2 and zero-padded with the missing maps, so
the shortcuts add no parameter. Option B (a 1x1 projection with batch norm where the shape
changes, as the ImageNet ResNets) is available with ``shortcut="B"``.

Parameters for 10 classes: ResNet-20 269,722 (B: 272,474); ResNet-32 464,154;
ResNet-56 853,018 (the paper's "0.27M", "0.46M", "0.85M").
"""

from __future__ import annotations

import convstack.nn.functional as F
from convstack import nn
from convstack.nn import fusion
from convstack.nn.functional._utils import invalid


class ZeroPadShortcut(nn.Module):
    """Option A shortcut: ``x[:, :, ::stride, ::stride]`` with ``extra`` zero maps appended."""

    def __init__(self, stride: int, extra: int):
        super().__init__()
        self.stride = stride
        self.extra = extra

    def forward(self, x):
        x = x[:, :, :: self.stride, :: self.stride]  # (N, C, H / stride, W / stride)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))  # (N, C + extra, H / stride, W / stride)

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra={self.extra}"


class CifarBasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm, added to the shortcut, then ReLU (names as torchvision's)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: str = "A"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride == 1 and in_planes == planes:
            self.downsample = None
        elif shortcut == "A":
            self.downsample = ZeroPadShortcut(stride, planes - in_planes)
        else:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = fusion.conv_bn(self.conv1, self.bn1, x, self.relu)  # relu(bn1(conv1(x))), one pass in inference
        return self.relu(fusion.conv_bn(self.conv2, self.bn2, out) + identity)


class CifarResNet(nn.Module):
    """The 6n + 2 layer CIFAR ResNet; see ``resnet20``."""

    def __init__(self, n: int, num_classes: int = 10, in_channels: int = 3, input_size: int = 32,
                 shortcut: str = "A", width: int = 16):
        super().__init__()
        op = f"resnet{6 * n + 2}"
        for argument, value in (("num_classes", num_classes), ("in_channels", in_channels),
                                ("input_size", input_size), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise invalid(op, argument, "a positive integer", value)
        if shortcut not in ("A", "B"):
            raise invalid(op, "shortcut", "'A' (zero-padded identity) or 'B' (1x1 projection)", shortcut)
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        stages, in_planes = [], width
        for stage, planes in enumerate((width, width * 2, width * 4)):
            stride = 1 if stage == 0 else 2
            blocks = [CifarBasicBlock(in_planes, planes, stride, shortcut)]
            blocks += [CifarBasicBlock(planes, planes, 1, shortcut) for _ in range(1, n)]
            stages.append(nn.Sequential(*blocks))
            in_planes = planes
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 4, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):  # He et al. 2015, as the paper
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = fusion.conv_bn(self.conv1, self.bn1, x, self.relu)  # (N, 16, H, W)
        x = self.layer3(self.layer2(self.layer1(x)))  # (N, 64, H / 4, W / 4)
        return self.fc(self.avgpool(x).flatten(1))  # (N, num_classes)


_DOC = """ResNet-{depth} for CIFAR (He et al. 2016, section 4.2: n = {n}, 6n + 2 = {depth} layers).

    {count:,} parameters for 10 classes with shortcut option A.

    Args:
        num_classes: outputs of the last layer.
        in_channels: image channels.
        input_size: image side (32 for CIFAR; any side >= 1 works, e.g. 28 for Fashion-MNIST,
            thanks to the global average pool).
        shortcut: ``"A"`` (default, the paper's for CIFAR: zero-padded identity, no parameters)
            or ``"B"`` (1x1 projection + batch norm where the shape changes).
        width: maps of the first stage (16 in the paper; stages use width x 1, 2, 4).

    Shape:
        input (N, in_channels, H, W) -> output (N, num_classes); the stages see H, H/2, H/4.
"""


def _builder(name: str, n: int, count: int):
    def build(num_classes: int = 10, in_channels: int = 3, input_size: int = 32, shortcut: str = "A",
              width: int = 16) -> CifarResNet:
        return CifarResNet(n, num_classes=num_classes, in_channels=in_channels, input_size=input_size,
                           shortcut=shortcut, width=width)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = _DOC.format(depth=6 * n + 2, n=n, count=count)
    return build


resnet20 = _builder("resnet20", 3, 269_722)
resnet32 = _builder("resnet32", 5, 464_154)
resnet56 = _builder("resnet56", 9, 853_018)
