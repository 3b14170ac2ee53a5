"""Zoo models against PyTorch twins written here (no torchvision on this machine): the same
state-dict names (which are torchvision's), weights copied across by name, outputs equal in
eval mode and gradients equal after one training-mode step (batch norm on batch statistics).
"""

import numpy as np
import pytest

import convstack as cs
from convstack import models, nn
from convstack.models.googlenet import INCEPTION

torch = pytest.importorskip("torch")
tnn = torch.nn


# ------------------------------------------------------------------------------ the PyTorch twins
class TAlexNet(tnn.Module):
    def __init__(self, classes=1000, hidden=4096, dropout=0.5, lrn=False):
        super().__init__()
        relu = lambda: tnn.ReLU(inplace=True)  # noqa: E731
        if lrn:
            norm = lambda: tnn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)  # noqa: E731
            self.features = tnn.Sequential(
                tnn.Conv2d(3, 96, 11, 4, 2), relu(), norm(), tnn.MaxPool2d(3, 2),
                tnn.Conv2d(96, 256, 5, padding=2, groups=2), relu(), norm(), tnn.MaxPool2d(3, 2),
                tnn.Conv2d(256, 384, 3, padding=1), relu(), tnn.Conv2d(384, 384, 3, padding=1, groups=2), relu(),
                tnn.Conv2d(384, 256, 3, padding=1, groups=2), relu(), tnn.MaxPool2d(3, 2))
        else:  # torchvision.models.alexnet
            self.features = tnn.Sequential(
                tnn.Conv2d(3, 64, 11, 4, 2), relu(), tnn.MaxPool2d(3, 2),
                tnn.Conv2d(64, 192, 5, padding=2), relu(), tnn.MaxPool2d(3, 2),
                tnn.Conv2d(192, 384, 3, padding=1), relu(), tnn.Conv2d(384, 256, 3, padding=1), relu(),
                tnn.Conv2d(256, 256, 3, padding=1), relu(), tnn.MaxPool2d(3, 2))
        self.avgpool = tnn.AdaptiveAvgPool2d((6, 6))
        self.classifier = tnn.Sequential(
            tnn.Dropout(dropout), tnn.Linear(9216, hidden), relu(), tnn.Dropout(dropout), tnn.Linear(hidden, hidden),
            relu(), tnn.Linear(hidden, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class TVGG(tnn.Module):  # torchvision.models.vgg11_bn
    def __init__(self, classes=1000, hidden=4096, dropout=0.5):
        super().__init__()
        layers, c = [], 3
        for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
            if v == "M":
                layers.append(tnn.MaxPool2d(2, 2))
            else:
                layers += [tnn.Conv2d(c, v, 3, padding=1), tnn.BatchNorm2d(v), tnn.ReLU(inplace=True)]
                c = v
        self.features = tnn.Sequential(*layers)
        self.avgpool = tnn.AdaptiveAvgPool2d((7, 7))
        self.classifier = tnn.Sequential(
            tnn.Linear(25088, hidden), tnn.ReLU(True), tnn.Dropout(dropout), tnn.Linear(hidden, hidden), tnn.ReLU(True),
            tnn.Dropout(dropout), tnn.Linear(hidden, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class TBasicBlock(tnn.Module):  # torchvision.models.resnet.BasicBlock
    def __init__(self, inp, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = tnn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.relu = tnn.ReLU(inplace=True)
        self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + identity)


class TBottleneck(tnn.Module):  # torchvision.models.resnet.Bottleneck (stride in the 3x3, "v1.5")
    def __init__(self, inp, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = tnn.Conv2d(inp, planes, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.conv2 = tnn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.conv3 = tnn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = tnn.BatchNorm2d(planes * 4)
        self.relu = tnn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class TResNet(tnn.Module):  # torchvision.models.ResNet, with the first stage's width as an option
    def __init__(self, block=TBasicBlock, layers=(2, 2, 2, 2), classes=1000, width=64):
        super().__init__()
        expansion = 4 if block is TBottleneck else 1
        self.conv1 = tnn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = tnn.BatchNorm2d(width)
        self.relu = tnn.ReLU(inplace=True)
        self.maxpool = tnn.MaxPool2d(3, 2, 1)
        inp = width
        for i, blocks in enumerate(layers):
            planes, stride = width * 2 ** i, 1 if i == 0 else 2
            down = None
            if stride != 1 or inp != planes * expansion:
                down = tnn.Sequential(tnn.Conv2d(inp, planes * expansion, 1, stride, bias=False),
                                      tnn.BatchNorm2d(planes * expansion))
            stage = [block(inp, planes, stride, down)] + [block(planes * expansion, planes) for _ in range(1, blocks)]
            setattr(self, f"layer{i + 1}", tnn.Sequential(*stage))
            inp = planes * expansion
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.fc = tnn.Linear(inp, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class TBasicConv2d(tnn.Module):  # torchvision.models.googlenet.BasicConv2d
    def __init__(self, inp, out, k, stride=1, padding=0):
        super().__init__()
        self.conv = tnn.Conv2d(inp, out, k, stride, padding, bias=False)
        self.bn = tnn.BatchNorm2d(out, eps=0.001)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class TInception(tnn.Module):
    def __init__(self, inp, c1, c3r, c3, c5r, c5, pp):
        super().__init__()
        self.branch1 = TBasicConv2d(inp, c1, 1)
        self.branch2 = tnn.Sequential(TBasicConv2d(inp, c3r, 1), TBasicConv2d(c3r, c3, 3, padding=1))
        self.branch3 = tnn.Sequential(TBasicConv2d(inp, c5r, 1), TBasicConv2d(c5r, c5, 3, padding=1))
        self.branch4 = tnn.Sequential(tnn.MaxPool2d(3, 1, 1, ceil_mode=True), TBasicConv2d(inp, pp, 1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class TInceptionAux(tnn.Module):
    def __init__(self, inp, classes, dropout):
        super().__init__()
        self.conv = TBasicConv2d(inp, 128, 1)
        self.fc1 = tnn.Linear(2048, 1024)
        self.fc2 = tnn.Linear(1024, classes)
        self.dropout = tnn.Dropout(dropout)

    def forward(self, x):
        x = torch.flatten(self.conv(tnn.functional.adaptive_avg_pool2d(x, (4, 4))), 1)
        return self.fc2(self.dropout(torch.relu(self.fc1(x))))


class TGoogLeNet(tnn.Module):  # torchvision.models.googlenet, transform_input=False
    def __init__(self, classes=1000, aux_logits=False, dropout=0.2, dropout_aux=0.7):
        super().__init__()
        self.conv1 = TBasicConv2d(3, 64, 7, 2, 3)
        self.maxpool1 = tnn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = TBasicConv2d(64, 64, 1)
        self.conv3 = TBasicConv2d(64, 192, 3, padding=1)
        self.maxpool2 = tnn.MaxPool2d(3, 2, ceil_mode=True)
        for name, spec in INCEPTION.items():
            if name == "4a":
                self.maxpool3 = tnn.MaxPool2d(3, 2, ceil_mode=True)
            if name == "5a":
                self.maxpool4 = tnn.MaxPool2d(2, 2, ceil_mode=True)
            setattr(self, f"inception{name}", TInception(*spec))
        self.aux1 = TInceptionAux(512, classes, dropout_aux) if aux_logits else None
        self.aux2 = TInceptionAux(528, classes, dropout_aux) if aux_logits else None
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.dropout = tnn.Dropout(dropout)
        self.fc = tnn.Linear(1024, classes)

    def forward(self, x):
        x = self.maxpool2(self.conv3(self.conv2(self.maxpool1(self.conv1(x)))))
        x = self.inception4a(self.maxpool3(self.inception3b(self.inception3a(x))))
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.inception5b(self.inception5a(self.maxpool4(self.inception4e(x))))
        logits = self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
        return (logits, aux2, aux1) if aux1 is not None else logits


class TUNet(tnn.Module):
    def __init__(self, classes, inp, depth, width):
        super().__init__()

        def double(a, b):
            return tnn.Sequential(tnn.Conv2d(a, b, 3, padding=1), tnn.ReLU(True), tnn.Conv2d(b, b, 3, padding=1),
                                  tnn.ReLU(True))

        w = [width * 2 ** i for i in range(depth + 1)]
        self.down = tnn.ModuleList(double(inp if i == 0 else w[i - 1], w[i]) for i in range(depth + 1))
        self.up = tnn.ModuleList(tnn.ConvTranspose2d(w[i], w[i - 1], 2, 2) for i in range(depth, 0, -1))
        self.decode = tnn.ModuleList(double(2 * w[i - 1], w[i - 1]) for i in range(depth, 0, -1))
        self.head = tnn.Conv2d(width, classes, 1)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            x = block(tnn.functional.max_pool2d(x, 2) if i else x)
            skips.append(x)
        x = skips.pop()
        for up, decode in zip(self.up, self.decode):
            skip, x = skips.pop(), up(x)
            dh, dw = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
            x = tnn.functional.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
            x = decode(torch.cat([skip, x], 1))
        return self.head(x)


# ------------------------------------------------------------------------------ the comparison
def randomise_batch_norm(model, rng):
    """Non-trivial BN parameters and running statistics, so eval mode tests them."""
    for module in model.modules():
        if isinstance(module, nn.modules.normalization._BatchNorm):
            c = module.num_features
            module.weight.data[...] = rng.uniform(0.5, 1.5, c)
            module.bias.data[...] = rng.normal(0, 0.2, c)
            module.running_mean.data[...] = rng.normal(0, 0.2, c)
            module.running_var.data[...] = rng.uniform(0.5, 2.0, c)


def loss_of(out, labels, lib):
    """Cross-entropy (plus 0.3 of each auxiliary head's, as the GoogLeNet paper weights them)."""
    ce = (lambda o: nn.functional.cross_entropy(o, labels)) if lib is cs else (
        lambda o: tnn.functional.cross_entropy(o, labels))
    if isinstance(out, tuple):
        return ce(out[0]) + 0.3 * (ce(out[1]) + ce(out[2]))
    if out.ndim == 4:  # per-pixel logits: labels (N, H, W)
        return ce(out)
    return ce(out)


def compare_with_twin(ours, theirs, x, labels, tolerance=1e-4):
    """Copy ours into theirs by name; compare float32 eval outputs, then float64 training-mode gradients.

    Returns the largest output difference, the largest output, and the largest gradient difference
    relative to its layer's largest gradient.
    """
    ours_state = ours.state_dict()
    assert list(ours_state) == list(theirs.state_dict())  # names and order are torchvision's
    theirs.load_state_dict({k: torch.tensor(np.array(v.numpy())) for k, v in ours_state.items()}, strict=True)
    ours.load_state_dict(theirs.state_dict(), strict=True)  # and back: a torchvision state dict loads as is

    ours.eval(), theirs.eval()
    with cs.no_grad():
        out_ours = ours(cs.tensor(x)).numpy()
    with torch.no_grad():
        out_theirs = theirs(torch.tensor(x)).numpy()
    forward_diff = float(np.abs(out_ours - out_theirs).max())
    assert forward_diff <= tolerance * max(1.0, float(np.abs(out_theirs).max())), forward_diff

    # The training step runs in float64: in float32, batch norm over few values per channel (VGG's last
    # stage sees 2 images x 2x2 pixels) amplifies rounding in the input gradient to about 1% on either
    # side, which would let a real discrepancy of that size hide; in float64 they agree to ~1e-14.
    ours.double(), theirs.double()
    x = x.astype(np.float64)
    ours.train(), theirs.train()
    x_ours, x_theirs = cs.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    loss_ours = loss_of(ours(x_ours), cs.tensor(labels), cs)
    loss_theirs = loss_of(theirs(x_theirs), torch.tensor(labels), torch)
    loss_ours.backward()
    loss_theirs.backward()
    assert loss_ours.item() == pytest.approx(loss_theirs.item(), rel=1e-10)
    theirs_params = dict(theirs.named_parameters())
    pairs = [("input", x_ours.grad.numpy(), x_theirs.grad.numpy())]
    pairs += [(name, p.grad.numpy(), theirs_params[name].grad.numpy()) for name, p in ours.named_parameters()]
    # Each gradient within 1e-8 of its own largest entry, with a floor of 1e-10 of the largest
    # gradient anywhere: a convolution's bias just before batch norm has a gradient that is zero
    # in exact arithmetic, so both sides hold only rounding noise there.
    floor = 1e-10 * max(float(np.abs(g).max()) for _, _, g in pairs)
    grad_diff = 0.0
    for name, g_ours, g_theirs in pairs:
        scale = float(np.abs(g_theirs).max())
        diff = float(np.abs(g_ours - g_theirs).max())
        assert diff <= 1e-8 * scale + floor, (name, diff, scale)
        if scale > 1e3 * floor:
            grad_diff = max(grad_diff, diff / scale)
    # Batch norm's running statistics moved the same way in the training step.
    theirs_buffers = dict(theirs.named_buffers())
    for name, buffer in ours.named_buffers():
        np.testing.assert_allclose(buffer.numpy(), theirs_buffers[name].numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
    return forward_diff, float(np.abs(out_theirs).max()), grad_diff


def inputs(shape, classes, rng, dense=False):
    x = rng.standard_normal(shape).astype(np.float32)
    labels = rng.integers(0, classes, (shape[0], *shape[2:]) if dense else shape[0])
    return x, labels


def report(name, diffs):
    print(f"{name}: max |output difference| {diffs[0]:.2e} (max |output| {diffs[1]:.2e}), "
          f"max relative gradient difference {diffs[2]:.2e}")


def test_resnet18_matches_its_twin(rng):
    ours = models.resnet18(num_classes=10, input_size=64)  # the paper's 7x7/2 stem and max pool
    randomise_batch_norm(ours, rng)
    report("resnet18", compare_with_twin(ours, TResNet(classes=10), *inputs((2, 3, 64, 64), 10, rng)))


def test_resnet50_bottlenecks_match_their_twin(rng):
    ours = models.resnet50(num_classes=10, input_size=64, width=8)  # a narrow ResNet-50: same names
    randomise_batch_norm(ours, rng)
    twin = TResNet(TBottleneck, (3, 4, 6, 3), classes=10, width=8)
    report("resnet50 (width 8)", compare_with_twin(ours, twin, *inputs((2, 3, 64, 64), 10, rng)))


def test_vgg11_bn_matches_its_twin(rng):
    # A 256-wide classifier: its width changes no name, and the 25088x4096 layer costs seconds.
    ours = models.vgg11_bn(num_classes=10, input_size=32, hidden=256, dropout=0.0)
    randomise_batch_norm(ours, rng)
    report("vgg11_bn", compare_with_twin(ours, TVGG(10, 256, 0.0), *inputs((2, 3, 32, 32), 10, rng)))


def test_googlenet_with_auxiliary_heads_matches_its_twin(rng):
    ours = models.googlenet(num_classes=10, input_size=64, aux_logits=True, dropout=0.0, dropout_aux=0.0)
    randomise_batch_norm(ours, rng)
    twin = TGoogLeNet(10, aux_logits=True, dropout=0.0, dropout_aux=0.0)
    report("googlenet", compare_with_twin(ours, twin, *inputs((2, 3, 64, 64), 10, rng)))


@pytest.mark.parametrize("lrn", [False, True])
def test_alexnet_matches_its_twin(rng, lrn):
    ours = models.alexnet(num_classes=10, input_size=64, lrn=lrn, hidden=256, dropout=0.0)
    twin = TAlexNet(10, 256, 0.0, lrn=lrn)
    report(f"alexnet(lrn={lrn})", compare_with_twin(ours, twin, *inputs((2, 3, 64, 64), 10, rng)))


def test_unet_matches_its_twin(rng):
    ours = models.unet(num_classes=3, in_channels=1, input_size=36, depth=3, width=8)  # 36 -> 18 -> 9 -> 4: pads
    twin = TUNet(3, 1, 3, 8)
    report("unet", compare_with_twin(ours, twin, *inputs((2, 1, 36, 36), 3, rng, dense=True)))


@pytest.mark.parametrize("name, twin", [
    ("resnet18", TResNet), ("resnet50", lambda: TResNet(TBottleneck, (3, 4, 6, 3))),
    ("googlenet", lambda: TGoogLeNet(aux_logits=True)), ("alexnet", TAlexNet),
    ("vgg11_bn", TVGG),
])
def test_full_width_names_and_shapes_equal_torchvisions(name, twin):
    with torch.device("meta"):  # shapes without memory or initialisation
        theirs = {k: tuple(v.shape) for k, v in twin().state_dict().items()}
    options = {"aux_logits": True} if name == "googlenet" else {}
    ours = {k: tuple(v.shape) for k, v in models.get_model(name, num_classes=1000, in_channels=3, input_size=224,
                                                           **options).state_dict().items()}
    assert list(ours.items()) == list(theirs.items())
