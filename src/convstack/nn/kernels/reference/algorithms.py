"""The NumPy tier's convolution algorithms as registered objects, each with its heuristic rule.

Registered in this order, which is the heuristic's (the first that applies and prefers itself
runs; ``gemm`` prefers every shape, so it is the catch-all):

    "pointwise"    1x1(x1) kernels: a GEMM over channels (``pointwise``).
    "winograd4"    Winograd F(4x4, 3x3); 3x..x3 stride 1 dilation 1 (``winograd``).
    "winograd2"    Winograd F(2x2, 3x3); same shapes.
    "fft"          FFT convolution; stride 1, dilation 1 (``fft_conv``).
    "flat-planes"  stride 1 over flattened padded planes, each kernel tap one contiguous slice
                   (``flat_planes``); its input gradient is its own forward on the gradient
                   (the correlation below) or, where the output has more channels, its col2im.
    "correlate"    input gradient only, stride 1: im2col + GEMM of the padded gradient with
                   the flipped kernel, channels swapped (``chunked.backward_data_correlate``).
    "gemm"         im2col + GEMM in chunks of the batch (``chunked``), any shape; its input
                   gradient is dcols = W^T @ grad scattered back by col2im.

The rules come from the measurements in ``docs/convolution_algorithms.md``; each reads only
the geometry and the ``ChoiceContext`` it is given.
"""

from __future__ import annotations

import math

from convstack.backend import get_array_module
from convstack.nn.kernels import workspace
from convstack.nn.kernels.geometry import ConvGeometry
from convstack.nn.kernels.reference import chunked, fft_conv, flat_planes, pointwise, winograd
from convstack.nn.kernels.registry import BACKWARD_DATA, BACKWARD_WEIGHT, FORWARD, ChoiceContext, ConvAlgorithm


def _op(geometry: ConvGeometry) -> str:
    return f"conv{len(geometry.kernel)}d"


def _per_group(geometry: ConvGeometry) -> tuple:
    """(input channels, output channels) per group."""
    return geometry.in_channels // geometry.groups, geometry.out_channels // geometry.groups


def correlation(forward, grad, weight, geometry: ConvGeometry):
    """The input gradient of a stride-1 convolution as ``forward`` of the padded gradient with the flipped kernel.

    ``forward(x, weight, bias, geometry)`` is any algorithm's forward; the geometry is the
    adjoint's (``chunked.gradient_geometry``).
    """
    pads = chunked.correlate_pads(geometry)
    flipped = chunked.flipped_transposed(weight, geometry.groups)
    return forward(grad, flipped, None, chunked.gradient_geometry(geometry, pads))


def correlates(geometry: ConvGeometry) -> bool:
    """Whether the input gradient can be computed as a correlation (stride 1, no side padded beyond the kernel)."""
    return chunked.correlate_pads(geometry) is not None


class Im2colGemm(ConvAlgorithm):
    """im2col + GEMM (Chellapilla et al. 2006), chunks of the batch through reused buffers; any shape."""

    name = "gemm"

    def preferred(self, pass_, geometry, context):
        return True

    def forward(self, x, weight, bias, geometry):
        return chunked.forward(x, weight, bias, geometry, workspace.limit(), _op(geometry))

    def forward_for_training(self, x, weight, bias, geometry):
        """Keeps the whole batch's columns when they are small (``chunked.KEEP_BYTES``), else the input."""
        out, columns = chunked.forward(x, weight, bias, geometry, workspace.limit(), _op(geometry), keep=True)
        return out, (x if columns is None else columns)

    def backward_data(self, grad, weight, geometry):
        return chunked.backward_data(grad, weight, geometry, workspace.limit(), _op(geometry))

    def backward_weight(self, grad, saved, geometry):
        return chunked.backward_weight(grad, saved, geometry, workspace.limit(), _op(geometry))


class Correlate(ConvAlgorithm):
    """The stride-1 input gradient as an im2col + GEMM forward of the padded gradient with the flipped kernel.

    Preferred unless the layer has more than twice as many output as input channels per
    group: then col2im's columns, which have the fewer input channels, are smaller (LeNet's
    1 -> 6 and 6 -> 16 layers: 2-3x faster by col2im).
    """

    name = "correlate"
    passes = (BACKWARD_DATA,)

    def applies(self, pass_, geometry):
        return pass_ == BACKWARD_DATA and correlates(geometry)

    def preferred(self, pass_, geometry, context):
        in_per_group, out_per_group = _per_group(geometry)
        return out_per_group <= 2 * in_per_group

    def backward_data(self, grad, weight, geometry):
        return chunked.backward_data_correlate(grad, weight, geometry, workspace.limit(), _op(geometry))


class FlatPlanes(ConvAlgorithm):
    """Stride-1 passes over flattened padded planes (``flat_planes``): columns as one contiguous slice per tap.

    Forward in 2-D and 3-D; weight gradient and input gradient in any dimension. Preferred for
    depthwise layers, and for dense layers whose padded planes are at most 1.35x the output
    unless im2col keeps its columns for the weight gradient (``flat_planes.applies_forward``).
    Its input gradient is its own forward on the padded gradient where the layer has at most
    twice as many output as input channels per group, and otherwise its col2im, preferred
    where the output side is thin or the planes add little (``flat_planes.applies_backward_data``).
    """

    name = "flat-planes"

    def applies(self, pass_, geometry):
        if not geometry.unit_stride:
            return False
        if pass_ == FORWARD:
            return len(geometry.kernel) >= 2
        return True

    def preferred(self, pass_, geometry, context):
        in_per_group, out_per_group = _per_group(geometry)
        if pass_ == BACKWARD_DATA:
            if out_per_group <= 2 * in_per_group and correlates(geometry):
                return self.preferred(FORWARD, chunked.gradient_geometry(geometry, chunked.correlate_pads(geometry)),
                                      context)
            return flat_planes.applies_backward_data(geometry)
        if geometry.depthwise:
            return pass_ == BACKWARD_WEIGHT or len(geometry.kernel) >= 2
        if len(geometry.kernel) < 2 or not flat_planes.applies_forward(geometry):
            return False
        return not _keeps_columns(geometry, context.workspace_limit)

    def forward(self, x, weight, bias, geometry):
        return flat_planes.forward(x, weight, bias, geometry, workspace.limit(), _op(geometry))

    def backward_data(self, grad, weight, geometry):
        in_per_group, out_per_group = _per_group(geometry)
        adjoint_has_forward = len(geometry.kernel) >= 2
        if out_per_group <= 2 * in_per_group and correlates(geometry) and adjoint_has_forward:
            return correlation(self.forward, grad, weight, geometry)
        return flat_planes.backward_data(grad, weight, geometry, workspace.limit(), _op(geometry))

    def backward_weight(self, grad, saved, geometry):
        if geometry.depthwise:
            return flat_planes.backward_weight_depthwise(grad, saved, geometry, workspace.limit(), _op(geometry))
        return flat_planes.backward_weight(grad, saved, geometry, workspace.limit(), _op(geometry))


def _keeps_columns(geometry: ConvGeometry, limit: int) -> bool:
    """Whether im2col's training forward keeps the whole batch's columns for the weight gradient."""
    return chunked.keeps_columns(geometry, limit, _op(geometry), get_array_module())


class Pointwise(ConvAlgorithm):
    """1x1(x1) kernels: a GEMM over channels, subsampling first for stride > 1 (``pointwise``)."""

    name = "pointwise"

    def applies(self, pass_, geometry):
        return pointwise.applies(geometry)

    def preferred(self, pass_, geometry, context):
        return True

    def forward(self, x, weight, bias, geometry):
        return pointwise.forward(x, weight, bias, geometry)

    def backward_data(self, grad, weight, geometry):
        return pointwise.backward_data(grad, weight, geometry)

    def backward_weight(self, grad, saved, geometry):
        return pointwise.backward_weight(grad, saved, geometry)


def winograd_pays(geometry: ConvGeometry, context: ChoiceContext) -> bool:
    """Whether Winograd beats im2col for a 3x..x3 layer, with NumPy's transforms on one core.

    At least 8 channels per group on both sides (depthwise and thin grouped layers stay on
    im2col: their per-group GEMMs are a few numbers wide). One BLAS thread: always. With two
    or more, im2col's GEMM runs nearly twice as fast while the transforms do not, so only
    2-D layers with more than 32 channels per group on both sides, and 3-D layers, keep it.
    """
    channels = min(_per_group(geometry))
    if channels < 8:
        return False
    if context.threads < 2:
        return True
    dims = len(geometry.kernel)
    return dims == 3 or (dims == 2 and channels > 32)


def winograd_tile(geometry: ConvGeometry) -> int:
    """4 (F(4, 3)) unless the layer has fewer than 8 output pixels (batch included) per input channel: then 2.

    F(4, 3)'s weight transform is 36 numbers per channel pair against F(2, 3)'s 16, and its
    tiles pad 7x7 and 14x14 maps to 8x8 and 16x16: with many channels and few pixels (VGG's
    256@14x14 and 512@7x7, batch 8) F(2, 3) was as fast or faster.
    """
    pixels = geometry.batch * math.prod(geometry.out_sizes)
    return 2 if pixels < 8 * geometry.weight_shape[1] else 4


class Winograd(ConvAlgorithm):
    """Winograd F(m x m, 3 x 3) (Lavin & Gray 2016) for 3x..x3 stride-1 layers; the input gradient by correlation."""

    def __init__(self, tile: int):
        self.tile = tile
        self.name = f"winograd{tile}"

    def applies(self, pass_, geometry):
        return winograd.applies(geometry) and (pass_ != BACKWARD_DATA or correlates(geometry))

    def preferred(self, pass_, geometry, context):
        return winograd_pays(geometry, context) and winograd_tile(geometry) == self.tile

    def forward(self, x, weight, bias, geometry):
        return winograd.forward(x, weight, bias, geometry, self.tile, workspace.limit())

    def backward_data(self, grad, weight, geometry):
        return correlation(self.forward, grad, weight, geometry)

    def backward_weight(self, grad, saved, geometry):
        return winograd.backward_weight(grad, saved, geometry, self.tile, workspace.limit())


class Fft(ConvAlgorithm):
    """FFT convolution, stride 1, dilation 1 (``fft_conv``); preferred for kernels of 100 taps or more.

    It was 2-3.5x faster than im2col for 11x11 and 15x15 kernels and lost on every benchmark
    layer, whose kernels have 9 to 49 taps.
    """

    name = "fft"

    def applies(self, pass_, geometry):
        return fft_conv.applies(geometry) and (pass_ != BACKWARD_DATA or correlates(geometry))

    def preferred(self, pass_, geometry, context):
        return math.prod(geometry.kernel) >= 100

    def forward(self, x, weight, bias, geometry):
        return fft_conv.forward(x, weight, bias, geometry)

    def backward_data(self, grad, weight, geometry):
        return correlation(self.forward, grad, weight, geometry)

    def backward_weight(self, grad, saved, geometry):
        return fft_conv.backward_weight(grad, saved, geometry)


def algorithms() -> list:
    """Fresh instances of the reference algorithms, in the heuristic's order."""
    return [Pointwise(), Winograd(4), Winograd(2), Fft(), FlatPlanes(), Correlate(), Im2colGemm()]


def register(tier) -> None:
    """Register the reference algorithms with ``tier``'s convolution policy."""
    for algorithm in algorithms():
        tier.convolution.register(algorithm)
