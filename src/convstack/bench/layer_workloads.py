"""Per-layer workloads: convolutions (forward, backward-data, backward-weights), max pooling, batch norm.

Every convolution row runs without bias (the bias is a broadcast add, not a convolution) and
in float32. The three rows of a layer time, in both frameworks alike:

- ``fwd``: the forward pass under ``no_grad`` (nothing saved for a backward);
- ``bwd-data``: ``out.backward(grad)`` where only the input requires a gradient, after an
  untimed forward that builds the graph; the op's backward sees ``needs_input_grad`` (or
  PyTorch's ``output_mask``) asking for the input's gradient only;
- ``bwd-weight``: the same with only the weight requiring a gradient.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy

from convstack.bench.runner import Workload, timed


@dataclass(frozen=True)
class ConvLayer:
    tag: str  # where the layer comes from
    dims: int
    batch: int
    in_channels: int
    out_channels: int
    size: int  # spatial side (length in 1-D)
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1

    @property
    def input_shape(self):
        return (self.batch, self.in_channels) + (self.size,) * self.dims

    @property
    def weight_shape(self):
        return (self.out_channels, self.in_channels // self.groups) + (self.kernel,) * self.dims

    @property
    def output_shape(self):
        side = (self.size + 2 * self.padding - self.kernel) // self.stride + 1
        return (self.batch, self.out_channels) + (side,) * self.dims

    @property
    def label(self) -> str:
        geometry = f"k{self.kernel}" + (f"s{self.stride}" if self.stride != 1 else "") + \
            (f"p{self.padding}" if self.padding else "") + (f"g{self.groups}" if self.groups != 1 else "")
        side = "x".join([str(self.size)] * self.dims)
        return f"conv{self.dims}d {self.tag} {self.in_channels}-{self.out_channels} {geometry} {side} b{self.batch}"


#: The issue's layers (batch 8 where it names none: the 1x1 and depthwise layers, like VGG's).
CONV_LAYERS = (
    ConvLayer("lenet-c1", 2, 64, 1, 6, 28, 5, padding=2),
    ConvLayer("lenet-c2", 2, 64, 6, 16, 14, 5),
    ConvLayer("resnet", 2, 128, 16, 16, 32, 3, padding=1),
    ConvLayer("resnet", 2, 128, 32, 32, 16, 3, padding=1),
    ConvLayer("resnet", 2, 128, 64, 64, 8, 3, padding=1),
    ConvLayer("vgg", 2, 8, 64, 64, 56, 3, padding=1),
    ConvLayer("vgg", 2, 8, 128, 128, 28, 3, padding=1),
    ConvLayer("vgg", 2, 8, 256, 256, 14, 3, padding=1),
    ConvLayer("vgg", 2, 8, 512, 512, 7, 3, padding=1),
    ConvLayer("1x1", 2, 8, 256, 64, 14, 1),
    ConvLayer("stem", 2, 8, 3, 64, 224, 7, stride=2, padding=3),
    ConvLayer("depthwise", 2, 8, 32, 32, 56, 3, padding=1, groups=32),
    ConvLayer("1-d", 1, 8, 64, 64, 1024, 9, padding=4),
    ConvLayer("3-d", 3, 8, 16, 16, 16, 3, padding=1),
)


def random_arrays(seed: int, *shapes, scale=1.0):
    """Float32 standard-normal arrays, the same for a given seed in every framework."""
    generator = numpy.random.default_rng(seed)
    return [(generator.standard_normal(shape, dtype=numpy.float32) * scale).astype(numpy.float32) for shape in shapes]


def _layer_arrays(layer: ConvLayer):
    fan_in = layer.weight_shape[1] * layer.kernel ** layer.dims
    x, grad = random_arrays(1, layer.input_shape, layer.output_shape)
    (weight,) = random_arrays(2, layer.weight_shape, scale=fan_in ** -0.5)
    return x, weight, grad


def backward_rep(forward, backward, clock=time.perf_counter):
    """A rep that runs ``forward()`` untimed and times ``backward(out)``."""

    def rep() -> float:
        out = forward()
        start = clock()
        backward(out)
        return clock() - start

    return rep


# ------------------------------------------------------------------------------ convolutions
def _convstack_conv(layer: ConvLayer, mode: str):
    def setup(context):
        import convstack as cs
        import convstack.nn.functional as F

        conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[layer.dims]
        x, weight, grad = _layer_arrays(layer)
        options = dict(stride=layer.stride, padding=layer.padding, groups=layer.groups)
        if mode == "fwd":
            x_t, w_t = cs.Tensor._make(x), cs.Tensor._make(weight)

            def forward():
                with cs.no_grad():
                    conv(x_t, w_t, None, **options)

            return timed(forward)

        def forward():
            x_t = cs.Tensor._make(x, requires_grad=mode == "bwd-data")
            w_t = cs.Tensor._make(weight, requires_grad=mode == "bwd-weight")
            return conv(x_t, w_t, None, **options)

        return backward_rep(forward, lambda out: out.backward(grad))

    return setup


def _torch_conv(layer: ConvLayer, mode: str):
    def setup(context, torch):
        conv = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d, 3: torch.nn.functional.conv3d}[layer.dims]
        x, weight, grad = (torch.from_numpy(a) for a in _layer_arrays(layer))
        options = dict(stride=layer.stride, padding=layer.padding, groups=layer.groups)
        if mode == "fwd":
            def forward():
                with torch.no_grad():
                    conv(x, weight, None, **options)

            return timed(forward)

        def forward():
            x_t = x.detach().requires_grad_(mode == "bwd-data")
            w_t = weight.detach().requires_grad_(mode == "bwd-weight")
            return conv(x_t, w_t, None, **options)

        return backward_rep(forward, lambda out: out.backward(grad))

    return setup


_MODE_WORDS = {"fwd": "forward (no grad)", "bwd-data": "backward, input gradient only",
               "bwd-weight": "backward, weight gradient only"}


def conv_workloads(layers=CONV_LAYERS):
    workloads = []
    for layer in layers:
        for mode in ("fwd", "bwd-data", "bwd-weight"):
            description = (f"{_MODE_WORDS[mode]}: input {layer.input_shape}, weight {layer.weight_shape}, "
                           f"stride {layer.stride}, padding {layer.padding}, groups {layer.groups}, no bias")
            workloads.append(Workload(f"{layer.label} {mode}", "layer", description,
                                      _convstack_conv(layer, mode), _torch_conv(layer, mode)))
    return workloads


# ------------------------------------------------------------------------------ pooling, batch norm
#: (label, input shape, kernel, stride, padding): the CIFAR-style 2x2 pool and the ResNet stem's 3x3/2.
POOLS = (("maxpool2d 2x2 (128,16,32,32)", (128, 16, 32, 32), 2, 2, 0),
         ("maxpool2d 3x3s2p1 (8,64,112,112)", (8, 64, 112, 112), 3, 2, 1))


def _pool_workload(label, shape, kernel, stride, padding, mode):
    out_side = (shape[-1] + 2 * padding - kernel) // stride + 1
    out_shape = shape[:2] + (out_side, out_side)

    def arrays():
        return random_arrays(3, shape, out_shape)

    def convstack_setup(context):
        import convstack as cs
        import convstack.nn.functional as F

        x, grad = arrays()
        if mode == "fwd":
            x_t = cs.Tensor._make(x)

            def forward():
                with cs.no_grad():
                    F.max_pool2d(x_t, kernel, stride, padding)

            return timed(forward)
        return backward_rep(lambda: F.max_pool2d(cs.Tensor._make(x, requires_grad=True), kernel, stride, padding),
                            lambda out: out.backward(grad))

    def torch_setup(context, torch):
        x, grad = (torch.from_numpy(a) for a in arrays())
        pool = torch.nn.functional.max_pool2d
        if mode == "fwd":
            def forward():
                with torch.no_grad():
                    pool(x, kernel, stride, padding)

            return timed(forward)
        return backward_rep(lambda: pool(x.detach().requires_grad_(True), kernel, stride, padding),
                            lambda out: out.backward(grad))

    words = "forward (no grad)" if mode == "fwd" else "backward only (after an untimed forward)"
    description = f"max pooling {words}: input {shape}, kernel {kernel}, stride {stride}, padding {padding}"
    return Workload(f"{label} {mode}", "layer", description, convstack_setup, torch_setup)


BATCH_NORM_SHAPE = (128, 16, 32, 32)


def _batch_norm_workload():
    channels = BATCH_NORM_SHAPE[1]

    def arrays():
        return random_arrays(4, BATCH_NORM_SHAPE, BATCH_NORM_SHAPE)

    def convstack_setup(context):
        import convstack as cs
        import convstack.nn.functional as F

        x, grad = arrays()
        mean, var = cs.zeros(channels), cs.ones(channels)
        gamma, beta = numpy.ones(channels, numpy.float32), numpy.zeros(channels, numpy.float32)

        def step():
            x_t = cs.Tensor._make(x, requires_grad=True)
            g_t, b_t = cs.Tensor._make(gamma, requires_grad=True), cs.Tensor._make(beta, requires_grad=True)
            F.batch_norm(x_t, mean, var, g_t, b_t, training=True).backward(grad)

        return timed(step)

    def torch_setup(context, torch):
        x, grad = (torch.from_numpy(a) for a in arrays())
        mean, var = torch.zeros(channels), torch.ones(channels)
        gamma, beta = torch.ones(channels), torch.zeros(channels)

        def step():
            x_t, g_t, b_t = (t.detach().requires_grad_(True) for t in (x, gamma, beta))
            torch.nn.functional.batch_norm(x_t, mean, var, g_t, b_t, training=True).backward(grad)

        return timed(step)

    description = (f"batch norm 2d, training mode, forward + backward (input, weight and bias gradients, "
                   f"running statistics updated): input {BATCH_NORM_SHAPE}")
    return Workload("batchnorm2d (128,16,32,32) fwd+bwd", "layer", description, convstack_setup, torch_setup)


def pool_and_norm_workloads():
    workloads = [_pool_workload(*pool, mode) for pool in POOLS for mode in ("fwd", "bwd")]
    return workloads + [_batch_norm_workload()]
