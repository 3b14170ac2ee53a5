"""1x1(x1) convolution as a direct GEMM over channels, any stride and padding.

A kernel of ones has no windows: the output at each position mixes the channels of
that one input position. With stride s the positions are every s-th of the padded
input: subsample once (a copy of 1 / s^d of the input), then the stride-1 product
``conv_gemm`` runs on the (N, G, Cg, L) layout needs no column matrix at all. The
input gradient goes back into those positions of a zero array; the weight gradient is
grad @ subsampled input^T.
"""

from __future__ import annotations

from convstack.backend import get_array_module
from convstack.nn.kernels.geometry import ConvGeometry
from convstack.nn.kernels.reference import conv_gemm
from convstack.nn.kernels.reference.windows import pad_spatial


def applies(geometry: ConvGeometry) -> bool:
    return all(k == 1 for k in geometry.kernel)


def _positions(geometry: ConvGeometry):
    """Index of the padded input's positions that the output reads, per dimension."""
    return tuple(slice(0, (n - 1) * s + 1, s) for n, s in zip(geometry.out_sizes, geometry.stride))


def _subsampled(x, geometry: ConvGeometry):
    """The (N, C, *O) input positions the output reads (``x`` itself when stride 1 and no padding)."""
    xp = get_array_module(x)
    padded = pad_spatial(x, geometry.pads)
    if geometry.unit_stride:
        return padded
    return xp.ascontiguousarray(padded[(Ellipsis,) + _positions(geometry)])


def forward(x, weight, bias, geometry: ConvGeometry):
    ones = (1,) * len(geometry.kernel)
    out, _ = conv_gemm.forward(_subsampled(x, geometry), weight, ones, ones, geometry.groups, bias)
    return out


def backward_data(grad, weight, geometry: ConvGeometry):
    xp = get_array_module(grad, weight)
    ones = (1,) * len(geometry.kernel)
    sampled_shape = geometry.input_shape[:2] + geometry.out_sizes
    sampled = conv_gemm.backward_data(grad, weight, sampled_shape, ones, ones, geometry.groups)  # (N, C, *O)
    if geometry.unit_stride and geometry.padded_sizes == geometry.input_shape[2:]:
        return sampled
    padded = xp.zeros(geometry.input_shape[:2] + geometry.padded_sizes, dtype=grad.dtype)
    padded[(Ellipsis,) + _positions(geometry)] = sampled
    crop = tuple(slice(b, b + n) for (b, _), n in zip(geometry.pads, geometry.input_shape[2:]))
    return xp.ascontiguousarray(padded[(Ellipsis,) + crop])


def backward_weight(grad, x, geometry: ConvGeometry):
    ones = (1,) * len(geometry.kernel)
    return conv_gemm.backward_weight(grad, _subsampled(x, geometry), geometry.weight_shape, ones, geometry.groups)
