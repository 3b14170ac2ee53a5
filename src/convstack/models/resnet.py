"""ResNet for ImageNet (He, Zhang, Ren & Sun 2016, "Deep residual learning for image
recognition", Table 1): ResNet-18/34 with basic blocks (two 3x3 convolutions), ResNet-50/101
with bottleneck blocks (1x1 reduce, 3x3, 1x1 expand by 4).

torchvision's layout and names, so its state dicts load with ``strict=True``: ``conv1``,
``bn1``, ``layer1.0.conv1``, ``layer1.0.bn1``, ..., ``layer2.0.downsample.0`` (1x1 projection,
shortcut option B) and ``downsample.1`` (its batch norm), ``fc``. As torchvision (v1.5), a
bottleneck block strides in its 3x3 convolution, not its first 1x1.

Parameters for 1000 classes at 3x224x224: ResNet-18 11,689,512; ResNet-34 21,797,672;
ResNet-50 25,557,032; ResNet-101 44,549,160.
"""

from __future__ import annotations

from convstack import nn
from convstack.nn import fusion
from convstack.nn.functional._utils import invalid

#: Below this side the 7x7/2 stem and the 3x3/2 max pool shrink the image too much to be useful.
SMALL_INPUT = 64


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm, added to the (projected) input, then ReLU."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = fusion.conv_bn(self.conv1, self.bn1, x, self.relu)  # relu(bn1(conv1(x))), one pass in inference
        out = fusion.conv_bn(self.conv2, self.bn2, out)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand to ``4 * planes``, added to the (projected) input."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = fusion.conv_bn(self.conv1, self.bn1, x, self.relu)
        out = fusion.conv_bn(self.conv2, self.bn2, out, self.relu)
        out = fusion.conv_bn(self.conv3, self.bn3, out)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A ResNet of ``block`` s, ``layers[i]`` of them in stage ``i``; see ``resnet18``."""

    def __init__(self, block: type, layers: tuple, num_classes: int = 1000, in_channels: int = 3,
                 input_size: int = 224, width: int = 64):
        super().__init__()
        for argument, value in (("num_classes", num_classes), ("in_channels", in_channels),
                                ("input_size", input_size), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise invalid("resnet", argument, "a positive integer", value)
        self.in_planes = width
        if input_size < SMALL_INPUT:
            # Small images (CIFAR, Fashion-MNIST): a 3x3 stride-1 stem and no max pool, so a 28x28
            # image reaches layer4 as 4x4 instead of 1x1. The names stay torchvision's.
            self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, width, layers[0], stride=1)
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)
        # torchvision's initialisation: He et al. 2015 (fan-out) for convolutions, BN weight 1, bias 0.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _make_layer(self, block: type, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.in_planes != planes * block.expansion:
            # Shortcut option B: a 1x1 projection where the shape changes, identity elsewhere.
            downsample = nn.Sequential(
                nn.Conv2d(self.in_planes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.in_planes, planes, stride, downsample)]
        self.in_planes = planes * block.expansion
        layers += [block(self.in_planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(fusion.conv_bn(self.conv1, self.bn1, x, self.relu))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))  # (N, num_classes)


_DOC = """ResNet-{depth} (He et al. 2016, Table 1: {blocks} blocks {layers}); torchvision's names.

    {count:,} parameters for 1000 classes at 3x224x224.

    Args:
        num_classes: outputs of the last layer.
        in_channels: image channels.
        input_size: image side. From 64 up the paper's stem (7x7/2 convolution, 3x3/2 max
            pool); below 64 a 3x3 stride-1 stem without max pool, so 28x28 images reach the
            last stage as 4x4. The adaptive average pool accepts any size after that.
        width: maps of the first stage (64 in the paper; stages use width x 1, 2, 4, 8).

    Shape:
        input (N, in_channels, H, W) -> output (N, num_classes).
"""


def _builder(name: str, block: type, layers: tuple, depth: int, count: int):
    def build(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224, width: int = 64) -> ResNet:
        return ResNet(block, layers, num_classes=num_classes, in_channels=in_channels, input_size=input_size,
                      width=width)

    build.__name__ = build.__qualname__ = name
    kind = "basic" if block is BasicBlock else "bottleneck"
    build.__doc__ = _DOC.format(depth=depth, blocks=kind, layers=layers, count=count)
    return build


resnet18 = _builder("resnet18", BasicBlock, (2, 2, 2, 2), 18, 11_689_512)
resnet34 = _builder("resnet34", BasicBlock, (3, 4, 6, 3), 34, 21_797_672)
resnet50 = _builder("resnet50", Bottleneck, (3, 4, 6, 3), 50, 25_557_032)
resnet101 = _builder("resnet101", Bottleneck, (3, 4, 23, 3), 101, 44_549_160)
