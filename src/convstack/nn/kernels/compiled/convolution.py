"""The compiled tier's convolution algorithms, registered ahead of the reference ones they outrun.

    "pointwise"   1x1 kernels at stride 1 without padding: a GEMM per sample straight on the
                  input (``pointwise``), the samples spread over the threads.
    "winograd4"   Winograd F(4x4, 3x3), 2-D 3x3 stride 1 (``winograd``): each thread takes
                  chunks of tile rows from gather to output in its cache, GEMMs included.
                  Replaces the reference F(4, 3) in this tier (3-D and 1-D layers, which it
                  does not compile, stay on the reference's F(4, 3)).

    "depthwise"   depthwise layers (one input channel per group) as direct loops over each
                  plane (``depthwise``); any stride, padding, dilation, multiplier, 1-D to 3-D.
    "gemm"        im2col + GEMM (``im2col``): each thread packs a block of samples' columns from
                  the unpadded input and multiplies them in its cache; any shape. The catch-all,
                  ahead of the reference's winograd2 and correlate (still there to force or
                  measure).
    "flat-planes" stride-1 passes over flat padded planes (``flat_planes``); registered for
                  forcing and measuring (slower than im2col on every benchmark layer).

Their rules come from the measurements in ``docs/convolution_algorithms.md``.
"""

from __future__ import annotations

import math

from convstack.nn.kernels.compiled import depthwise, flat_planes, im2col, pointwise, winograd
from convstack.nn.kernels.reference import algorithms as reference
from convstack.nn.kernels.registry import ConvAlgorithm


class CompiledWinograd(ConvAlgorithm):
    """Winograd F(4x4, 3x3) for 2-D 3x3 stride-1 layers (``compiled/winograd.py``); 3-D and 1-D by the reference's.

    Preferred for layers with at least 8 channels per group on both sides and at least
    ``winograd.MIN_TILES`` output tiles in the batch: with fewer, transforming the weights
    (36 numbers per channel pair) costs more than the products save (VGG 512@7x7 at batch 8,
    32 tiles, ran slower than im2col; 256@14x14, 128 tiles, faster).
    """

    name = "winograd4"

    def __init__(self):
        self.reference = reference.Winograd(4)

    def applies(self, pass_, geometry):
        return self.reference.applies(pass_, geometry)

    def preferred(self, pass_, geometry, context):
        if not winograd.applies(geometry):
            return self.reference.preferred(pass_, geometry, context)
        in_per_group = geometry.in_channels // geometry.groups
        out_per_group = geometry.out_channels // geometry.groups
        tile_count = geometry.batch * math.prod(winograd.tiles(geometry))
        return min(in_per_group, out_per_group) >= 8 and tile_count >= winograd.MIN_TILES

    def forward(self, x, weight, bias, geometry):
        if not winograd.applies(geometry):
            return self.reference.forward(x, weight, bias, geometry)
        return winograd.forward(x, weight, bias, geometry)

    def forward_relu(self, x, weight, bias, geometry):
        """The ReLU applied in the output transform, as each output is written."""
        if not winograd.applies(geometry):
            return super().forward_relu(x, weight, bias, geometry)
        return winograd.forward(x, weight, bias, geometry, relu=True)

    def backward_data(self, grad, weight, geometry):
        return reference.correlation(self.forward, grad, weight, geometry)

    def backward_weight(self, grad, saved, geometry):
        if not winograd.applies(geometry):
            return self.reference.backward_weight(grad, saved, geometry)
        return winograd.backward_weight(grad, saved, geometry)


class Depthwise(ConvAlgorithm):
    """Depthwise layers as direct loops over planes (``compiled/depthwise.py``); preferred wherever it applies."""

    name = "depthwise"

    def applies(self, pass_, geometry):
        return depthwise.applies(geometry)

    def preferred(self, pass_, geometry, context):
        return True

    def forward(self, x, weight, bias, geometry):
        return depthwise.forward(x, weight, bias, geometry)

    def backward_data(self, grad, weight, geometry):
        return depthwise.backward_data(grad, weight, geometry)

    def backward_weight(self, grad, saved, geometry):
        return depthwise.backward_weight(grad, saved, geometry)


class CompiledIm2col(ConvAlgorithm):
    """im2col + GEMM, one sample a thread (``compiled/im2col.py``); 1-D, 2-D and 3-D, any stride, padding, dilation,
    groups. The catch-all."""

    name = "gemm"

    def applies(self, pass_, geometry):
        return im2col.applies(geometry)

    def preferred(self, pass_, geometry, context):
        return True

    def forward(self, x, weight, bias, geometry):
        return im2col.forward(x, weight, bias, geometry)

    def forward_relu(self, x, weight, bias, geometry):
        """The ReLU applied as the products are copied into the output."""
        return im2col.forward(x, weight, bias, geometry, relu=True)

    def backward_data(self, grad, weight, geometry):
        return im2col.backward_data(grad, weight, geometry)

    def backward_weight(self, grad, saved, geometry):
        return im2col.backward_weight(grad, saved, geometry)


class CompiledFlatPlanes(ConvAlgorithm):
    """Stride-1 passes over flat padded planes (``compiled/flat_planes.py``): each column row one contiguous copy.
    Layers with groups run the reference's flat planes."""

    name = "flat-planes"

    def __init__(self):
        self.reference = reference.FlatPlanes()

    def applies(self, pass_, geometry):
        return self.reference.applies(pass_, geometry) or flat_planes.applies(geometry)

    def preferred(self, pass_, geometry, context):
        return False

    def forward(self, x, weight, bias, geometry):
        if not flat_planes.applies(geometry):
            return self.reference.forward(x, weight, bias, geometry)
        return flat_planes.forward(x, weight, bias, geometry)

    def forward_relu(self, x, weight, bias, geometry):
        if not flat_planes.applies(geometry):
            return super().forward_relu(x, weight, bias, geometry)
        return flat_planes.forward(x, weight, bias, geometry, relu=True)

    def backward_data(self, grad, weight, geometry):
        if not flat_planes.applies(geometry):
            return self.reference.backward_data(grad, weight, geometry)
        return flat_planes.backward_data(grad, weight, geometry)

    def backward_weight(self, grad, saved, geometry):
        if not flat_planes.applies(geometry):
            return self.reference.backward_weight(grad, saved, geometry)
        return flat_planes.backward_weight(grad, saved, geometry)


class CompiledPointwise(ConvAlgorithm):
    """1x1(x1) kernels: a GEMM per sample straight on the input (``compiled/pointwise.py``) at stride 1 without
    padding; strided or padded ones by the reference's pointwise. Preferred for every 1x1 kernel."""

    name = "pointwise"

    def __init__(self):
        self.reference = reference.Pointwise()

    def applies(self, pass_, geometry):
        return self.reference.applies(pass_, geometry)

    def preferred(self, pass_, geometry, context):
        return True

    def forward(self, x, weight, bias, geometry):
        if not pointwise.applies(geometry):
            return self.reference.forward(x, weight, bias, geometry)
        return pointwise.forward(x, weight, bias, geometry)

    def forward_relu(self, x, weight, bias, geometry):
        if not pointwise.applies(geometry):
            return super().forward_relu(x, weight, bias, geometry)
        return pointwise.forward(x, weight, bias, geometry, relu=True)

    def backward_data(self, grad, weight, geometry):
        if not pointwise.applies(geometry):
            return self.reference.backward_data(grad, weight, geometry)
        return pointwise.backward_data(grad, weight, geometry)

    def backward_weight(self, grad, saved, geometry):
        if not pointwise.applies(geometry):
            return self.reference.backward_weight(grad, saved, geometry)
        return pointwise.backward_weight(grad, saved, geometry)


def register(tier) -> None:
    """Register the compiled convolution algorithms with ``tier``'s policy (its reference ones are there already)."""
    if not winograd.usable():  # no GEMM to call from the kernels' threads: the reference algorithms run
        return
    policy = tier.convolution
    policy.register(CompiledPointwise(), replace=True)
    policy.register(CompiledWinograd(), replace=True, before="winograd2")
    # im2col, the catch-all, ahead of the reference's winograd2, flat-planes and correlate: still
    # there to force or measure, never chosen by rule in this tier (each measured slower here).
    policy.register(CompiledIm2col(), replace=True, before="winograd2")
    policy.register(Depthwise(), before="gemm")
    policy.register(CompiledFlatPlanes(), replace=True)
    policy.register(policy.unregister("fft"), before="depthwise")
