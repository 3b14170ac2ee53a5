"""The classic CNNs of the ONNX model zoo, layer for layer, at small widths: each function writes one
architecture into a ``ZooGraph`` and returns the graph's outputs. Channel counts are the papers'
divided by ``DIVISOR`` (at least 2); input sizes are the smallest that keep every layer's output
at least 1x1 (see ``MODELS``).
"""

from __future__ import annotations

from tests.io.onnx_zoo_graphs import ZooGraph

DIVISOR = 16


def w(channels: int, divisor: int = DIVISOR) -> int:
    return max(2, channels // divisor)


def alexnet(g: ZooGraph, lrn_first: bool = True) -> list:
    """AlexNet as bvlc_alexnet (LRN then pool); CaffeNet (``lrn_first=False``) pools first."""
    x = g.input
    for out, kernel, stride, pad, group in ((96, 11, 4, 0, 1), (256, 5, 1, 2, 2)):
        x = g.relu(g.conv(x, w(out), kernel, stride, pad, group))
        x = g.max_pool(g.lrn(x), 3, 2) if lrn_first else g.lrn(g.max_pool(x, 3, 2))
    for out, group in ((384, 1), (384, 2), (256, 2)):
        x = g.relu(g.conv(x, w(out), 3, 1, 1, group))
    x = g.max_pool(x, 3, 2)
    x = g.flatten(x)
    for _ in range(2):
        x = g.dropout(g.relu(g.gemm(x, w(4096, 64))))
    logits = g.gemm(x, g.classes)
    return [logits, g.softmax(logits)]


def caffenet(g: ZooGraph) -> list:
    return alexnet(g, lrn_first=False)


def zfnet512(g: ZooGraph) -> list:
    """Zeiler & Fergus 2014 with the wider middle layers (512, 1024, 512 maps) of their table 6."""
    x = g.lrn(g.max_pool(g.relu(g.conv(g.input, w(96), 7, 2, 1)), 3, 2, 1))
    x = g.lrn(g.max_pool(g.relu(g.conv(x, w(256), 5, 2)), 3, 2, 1))
    for out in (512, 1024, 512):
        x = g.relu(g.conv(x, w(out), 3, 1, 1))
    x = g.flatten(g.max_pool(x, 3, 2, 1))
    for _ in range(2):
        x = g.dropout(g.relu(g.gemm(x, w(4096, 64))))
    logits = g.gemm(x, g.classes)
    return [logits, g.softmax(logits)]


def vgg(g: ZooGraph, depths=(2, 2, 3, 3, 3), batch_norm: bool = False) -> list:
    x = g.input
    for out, depth in zip((64, 128, 256, 512, 512), depths):
        for _ in range(depth):
            x = g.conv(x, w(out), 3, 1, 1)
            x = g.relu(g.bn(x) if batch_norm else x)
        x = g.max_pool(x, 2, 2)
    x = g.flatten(x)
    for _ in range(2):
        x = g.dropout(g.relu(g.gemm(x, w(4096, 64))))
    logits = g.gemm(x, g.classes)
    return [logits, g.softmax(logits)]


def vgg16(g):
    return vgg(g)


def vgg16_bn(g):
    return vgg(g, batch_norm=True)


def vgg19(g):
    return vgg(g, (2, 2, 4, 4, 4))


def resnet50(g: ZooGraph) -> list:
    """ResNet-50: bottlenecks [3, 4, 6, 3]; the stride on the first 1x1 (v1, Caffe2 and MXNet) or on the
    3x3 (v1.5, torchvision)."""
    x = g.max_pool(g.conv_bn_relu(g.input, w(64), 7, 2, 3), 3, 2, 1)
    for stage, (width, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            first, middle = (1, stride) if g.style == "torch" else (stride, 1)
            y = g.conv_bn_relu(x, w(width), 1, first)
            y = g.conv_bn_relu(y, w(width), 3, middle, 1)
            y = g.conv_bn_relu(y, w(width) * 4, 1, relu=None)
            shortcut = x if block else g.conv_bn_relu(x, w(width) * 4, 1, stride, relu=None)
            x = g.relu(g.add(y, shortcut))
    return g.classifier(g.global_avg(x))


def densenet121(g: ZooGraph, growth: int = 4) -> list:
    """DenseNet-121: dense blocks of [6, 12, 24, 16] BN-ReLU-conv1x1(4k)-BN-ReLU-conv3x3(k) layers, joined by
    BN-ReLU-conv1x1-avgpool transitions halving the channels; growth k."""
    x = g.max_pool(g.relu(g.bn(g.conv(g.pad(g.input, 3), 2 * growth, 7, 2, bias=False))), 3, 2, 1)
    for index, layers in enumerate((6, 12, 24, 16)):
        for _ in range(layers):
            y = g.conv(g.relu(g.bn(x)), 4 * growth, 1, bias=False)
            y = g.conv(g.relu(g.bn(y)), growth, 3, 1, 1, bias=False)
            x = g.concat([x, y])
        if index < 3:
            x = g.avg_pool(g.conv(g.relu(g.bn(x)), g.shapes[x][0] // 2, 1, bias=False), 2, 2)
    return g.classifier(g.global_avg(g.relu(g.bn(x))))


GOOGLENET_MODULES = [  # 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection; None: a max pool before
    (64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), None,
    (192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
    (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128), None,
    (256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128),
]


def googlenet(g: ZooGraph) -> list:
    """GoogLeNet (Inception v1) as bvlc_googlenet: LRNs in the stem, ceil-mode pools, nine inception modules."""
    x = g.lrn(g.max_pool(g.relu(g.conv(g.input, w(64, 8), 7, 2, 3)), 3, 2, ceil=True))
    x = g.relu(g.conv(g.relu(g.conv(x, w(64, 8), 1)), w(192, 8), 3, 1, 1))
    x = g.max_pool(g.lrn(x), 3, 2, ceil=True)
    for module in GOOGLENET_MODULES:
        if module is None:
            x = g.max_pool(x, 3, 2, ceil=True)
            continue
        ones, reduce3, threes, reduce5, fives, projection = (w(c, 8) for c in module)
        branches = [g.relu(g.conv(x, ones, 1)),
                    g.relu(g.conv(g.relu(g.conv(x, reduce3, 1)), threes, 3, 1, 1)),
                    g.relu(g.conv(g.relu(g.conv(x, reduce5, 1)), fives, 5, 1, 2)),
                    g.relu(g.conv(g.max_pool(x, 3, 1, 1), projection, 1))]
        x = g.concat(branches)
    x = g.dropout(g.avg_pool(x, g.shapes[x][1], 1), 0.4)
    return g.classifier(x)


INCEPTION_V2_MODULES = [  # 1x1, 3x3 reduce, 3x3, double 3x3 reduce, double 3x3, pool kind, projection, stride
    (64, 64, 64, 64, 96, "avg", 32, 1), (64, 64, 96, 64, 96, "avg", 64, 1), (0, 128, 160, 64, 96, "max", 0, 2),
    (224, 64, 96, 96, 128, "avg", 128, 1), (192, 96, 128, 96, 128, "avg", 128, 1),
    (160, 128, 160, 128, 160, "avg", 128, 1), (96, 128, 192, 160, 192, "avg", 128, 1),
    (0, 128, 192, 192, 256, "max", 0, 2), (352, 192, 320, 160, 224, "avg", 128, 1),
    (352, 192, 320, 192, 224, "max", 128, 1),
]


def inception_v2(g: ZooGraph) -> list:
    """BN-Inception (Ioffe & Szegedy 2015): every convolution batch-normalised, 5x5 branches as two 3x3,
    average-pool projections, and stride-2 modules (3c, 4e) that concatenate a pass-through max pool."""
    x = g.max_pool(g.conv_bn_relu(g.input, w(64), 7, 2, 3), 3, 2, ceil=True)
    x = g.conv_bn_relu(g.conv_bn_relu(x, w(64), 1), w(192), 3, 1, 1)
    x = g.max_pool(x, 3, 2, ceil=True)
    for ones, reduce3, threes, reduce_d, double, pool, projection, stride in INCEPTION_V2_MODULES:
        branches = [g.conv_bn_relu(x, w(ones), 1)] if ones else []
        branches.append(g.conv_bn_relu(g.conv_bn_relu(x, w(reduce3), 1), w(threes), 3, stride, 1))
        y = g.conv_bn_relu(g.conv_bn_relu(x, w(reduce_d), 1), w(double), 3, 1, 1)
        branches.append(g.conv_bn_relu(y, w(double), 3, stride, 1))
        if stride == 2:
            branches.append(g.max_pool(x, 3, 2, ceil=True))
        else:
            pooled = g.avg_pool(x, 3, 1, 1) if pool == "avg" else g.max_pool(x, 3, 1, 1)
            branches.append(g.conv_bn_relu(pooled, w(projection), 1))
        x = g.concat(branches)
    return g.classifier(g.avg_pool(x, g.shapes[x][1], 1))


def _fire(g: ZooGraph, x, squeeze: int, expand: int) -> str:
    s = g.relu(g.conv(x, w(squeeze, 8), 1))
    return g.concat([g.relu(g.conv(s, w(expand, 8), 1)), g.relu(g.conv(s, w(expand, 8), 3, 1, 1))])


def squeezenet(g: ZooGraph, version: str) -> list:
    """SqueezeNet 1.0 (7x7 stem, pools after fire 4 and 8) and 1.1 (3x3 stem, pools after fire 3 and 5)."""
    fires = [(16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256)]
    pools_after = (2, 6) if version == "1.0" else (1, 3)
    if version == "1.0":
        x = g.max_pool(g.relu(g.conv(g.input, w(96, 8), 7, 2)), 3, 2, ceil=True)
    else:
        x = g.max_pool(g.relu(g.conv(g.input, w(64, 8), 3, 2)), 3, 2, ceil=True)
    for index, (squeeze, expand) in enumerate(fires):
        x = _fire(g, x, squeeze, expand)
        if index in pools_after:
            x = g.max_pool(x, 3, 2, ceil=True)
    x = g.relu(g.conv(g.dropout(x), g.classes, 1))
    x = g.avg_pool(x, g.shapes[x][1], 1) if version == "1.0" else g.global_avg(x)
    logits = g.flatten(x)
    return [logits, g.softmax(logits)]


def squeezenet1_0(g):
    return squeezenet(g, "1.0")


def squeezenet1_1(g):
    return squeezenet(g, "1.1")


def shufflenet(g: ZooGraph, groups: int = 3) -> list:
    """ShuffleNet v1 (Zhang et al. 2017), g = 3: units of grouped 1x1 -> channel shuffle -> depthwise 3x3 ->
    grouped 1x1; stride-2 units concatenate a 3x3 average pool of their input, the others add it."""
    x = g.max_pool(g.conv(g.input, 12, 3, 2, 1, bias=False), 3, 2, 1)
    for stage, (out, units) in enumerate(zip((48, 96, 192), (4, 8, 4))):
        for unit in range(units):
            stride = 2 if unit == 0 else 1
            branch_out = out - g.shapes[x][0] if stride == 2 else out
            first_groups = 1 if stage == 0 and unit == 0 else groups
            y = g.conv_bn_relu(x, out // 4, 1, group=first_groups)
            y = g.channel_shuffle(y, groups)
            y = g.conv_bn_relu(y, out // 4, 3, stride, 1, group=out // 4, relu=None)
            y = g.conv_bn_relu(y, branch_out, 1, group=groups, relu=None)
            x = g.relu(g.concat([g.avg_pool(x, 3, 2, 1), y]) if stride == 2 else g.add(x, y))
    return g.classifier(g.global_avg(x))


def shufflenet_v2(g: ZooGraph) -> list:
    """ShuffleNet v2 (Ma et al. 2018), as torchvision's: stride-1 units split the channels in two, transform one
    half and concatenate it back; stride-2 units transform both copies; a shuffle of 2 groups after each."""
    x = g.max_pool(g.conv_bn_relu(g.input, 8, 3, 2, 1), 3, 2, 1)
    for out, units in zip((16, 32, 64), (4, 8, 4)):
        half = out // 2
        for unit in range(units):
            if unit == 0:
                left = g.conv_bn_relu(g.conv_bn_relu(x, g.shapes[x][0], 3, 2, 1, group=g.shapes[x][0], relu=None),
                                      half, 1)
                right = x
                stride = 2
            else:
                left, right = g.split(x, [half, half])
                stride = 1
            y = g.conv_bn_relu(right, half, 1)
            y = g.conv_bn_relu(y, half, 3, stride, 1, group=half, relu=None)
            x = g.channel_shuffle(g.concat([left, g.conv_bn_relu(y, half, 1)]), 2)
    return g.classifier(g.global_avg(g.conv_bn_relu(x, 128, 1)), softmax=False)


MOBILENET_V2_BLOCKS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                       (6, 320, 1, 1)]  # expansion t, channels c, repeats n, first stride s


def mobilenet_v2(g: ZooGraph) -> list:
    """MobileNetV2 (Sandler et al. 2018): inverted residuals (1x1 expand, depthwise 3x3, linear 1x1), ReLU6
    as Clip, a residual addition wherever the shape allows."""
    x = g.conv_bn_relu(g.input, w(32, 8), 3, 2, 1, relu="relu6")
    for expansion, channels, repeats, first_stride in MOBILENET_V2_BLOCKS:
        for index in range(repeats):
            stride = first_stride if index == 0 else 1
            hidden = g.shapes[x][0] * expansion
            y = g.conv_bn_relu(x, hidden, 1, relu="relu6") if expansion != 1 else x
            y = g.conv_bn_relu(y, hidden, 3, stride, 1, group=hidden, relu="relu6")
            y = g.conv_bn_relu(y, w(channels, 8), 1, relu=None)
            x = g.add(x, y) if stride == 1 and g.shapes[x][0] == w(channels, 8) else y
    x = g.global_avg(g.conv_bn_relu(x, w(1280, 8), 1, relu="relu6"))
    if g.style != "torch":
        return g.classifier(x)
    return [g.gemm(g.dropout(g.flatten(x), 0.2), g.classes)]


# name -> (architecture, exporter style, input size, opsets tested by default; the others from 7 to 21 are opt-in)
MODELS = {
    "alexnet": (alexnet, "caffe2", 67, (7, 12)),
    "caffenet": (caffenet, "caffe2", 67, (8, 14)),
    "zfnet512": (zfnet512, "caffe2", 64, (9, 16)),
    "vgg16": (vgg16, "mxnet", 32, (7, 17)),
    "vgg16_bn": (vgg16_bn, "mxnet", 32, (8,)),
    "vgg19": (vgg19, "caffe2", 32, (9, 18)),
    "resnet50": (resnet50, "caffe2", 32, (7, 10)),
    "resnet50_v1.5": (resnet50, "torch", 32, (11, 20)),
    "densenet121": (densenet121, "caffe2", 32, (8, 13)),
    "googlenet": (googlenet, "caffe2", 64, (7, 11)),
    "inception_v2": (inception_v2, "caffe2", 64, (9, 15)),
    "squeezenet1.0": (squeezenet1_0, "caffe2", 64, (8, 18)),
    "squeezenet1.1": (squeezenet1_1, "torch", 64, (10, 19)),
    "shufflenet": (shufflenet, "caffe2", 32, (9, 12)),
    "shufflenet_v2": (shufflenet_v2, "torch", 32, (13, 21)),
    "mobilenetv2": (mobilenet_v2, "mxnet", 32, (7, 12)),
    "mobilenetv2_torch": (mobilenet_v2, "torch", 32, (14, 16)),
}
