"""VGG (Simonyan & Zisserman 2015, "Very deep convolutional networks for large-scale image
recognition"), configurations A (VGG-11), B (VGG-13), D (VGG-16) and E (VGG-19), with and
without batch normalisation (Ioffe & Szegedy 2015) after every convolution.

torchvision's layout and names, so its state dicts load with ``strict=True``:

    features    3x3 convolutions (padding 1) [-> BatchNorm2d] -> ReLU, and 2x2/2 max pools
    avgpool     adaptive average pool to 7x7
    classifier  fc 25088->4096 -> ReLU -> dropout -> fc 4096->4096 -> ReLU -> dropout -> fc 4096->classes

Parameters for 1000 classes at 3x224x224: VGG-11 132,863,336; VGG-13 133,047,848;
VGG-16 138,357,544; VGG-19 143,667,240 (with batch norm: 132,868,840; 133,053,736;
138,365,992; 143,678,248).
"""

from __future__ import annotations

from convstack import nn
from convstack.nn.functional._utils import invalid

#: Maps per convolution, "M" a 2x2 max pool (Table 1 of the paper).
CONFIGS = {
    "A": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "B": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "E": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}


class VGG(nn.Module):
    """VGG with ``features``, ``avgpool`` and ``classifier`` as in torchvision; see ``vgg16``."""

    def __init__(self, config: str = "D", batch_norm: bool = False, num_classes: int = 1000, in_channels: int = 3,
                 input_size: int = 224, dropout: float = 0.5, hidden: int = 4096):
        super().__init__()
        op = f"vgg ({config})"
        if config not in CONFIGS:
            raise invalid(op, "config", f"one of {', '.join(CONFIGS)}", config)
        for argument, value in (("num_classes", num_classes), ("in_channels", in_channels),
                                ("input_size", input_size), ("hidden", hidden)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise invalid(op, argument, "a positive integer", value)
        layers, channels, side = [], in_channels, input_size
        for item in CONFIGS[config]:
            if item == "M":
                # A pool that would leave no pixel (the fifth one at 28x28) becomes an identity,
                # which keeps torchvision's indices for every layer after it.
                layers.append(nn.MaxPool2d(2, 2) if side >= 2 else nn.Identity())
                side = side // 2 if side >= 2 else side
                continue
            layers.append(nn.Conv2d(channels, item, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(item))
            layers.append(nn.ReLU(inplace=True))
            channels = item
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        # torchvision's initialisation of the convolutions (He et al. 2015, fan-out) and of batch
        # norm; the fully connected layers keep the default (re-drawing 120M weights costs seconds).
        for module in self.features:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x):
        features = self.avgpool(self.features(x))  # (N, 512, 7, 7)
        return self.classifier(features.flatten(1))  # (N, num_classes)


_DOC = """VGG-{depth}{bn} (Simonyan & Zisserman 2015, configuration {config}){bn_cite}; torchvision's layout.

    {count:,} parameters for 1000 classes at 3x224x224.

    Args:
        num_classes: outputs of the last layer.
        in_channels: image channels.
        input_size: image side. Any side works: the adaptive 7x7 pool feeds the classifier,
            and a max pool that would take the side below 1 is replaced by an identity
            (at 28x28 the fifth: 28 -> 14 -> 7 -> 3 -> 1).
        dropout: dropout probability in the classifier.
        hidden: width of the two hidden fully connected layers (4096 in the paper).

    Shape:
        input (N, in_channels, H, W) -> output (N, num_classes).
"""


def _builder(name: str, config: str, batch_norm: bool, depth: int, count: int):
    def build(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224, dropout: float = 0.5,
              hidden: int = 4096) -> VGG:
        return VGG(config, batch_norm, num_classes=num_classes, in_channels=in_channels, input_size=input_size,
                   dropout=dropout, hidden=hidden)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = _DOC.format(depth=depth, config=config, count=count, bn=" with batch norm" if batch_norm else "",
                                bn_cite=" and Ioffe & Szegedy 2015" if batch_norm else "")
    return build


vgg11 = _builder("vgg11", "A", False, 11, 132_863_336)
vgg13 = _builder("vgg13", "B", False, 13, 133_047_848)
vgg16 = _builder("vgg16", "D", False, 16, 138_357_544)
vgg19 = _builder("vgg19", "E", False, 19, 143_667_240)
vgg11_bn = _builder("vgg11_bn", "A", True, 11, 132_868_840)
vgg13_bn = _builder("vgg13_bn", "B", True, 13, 133_053_736)
vgg16_bn = _builder("vgg16_bn", "D", True, 16, 138_365_992)
vgg19_bn = _builder("vgg19_bn", "E", True, 19, 143_678_248)
