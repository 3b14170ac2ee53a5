"""Depthwise convolution (one input channel per group, as in MobileNet), compiled as direct loops over each plane.

Each output plane (n, c * m + j) is its own input plane (n, c) correlated with that output
channel's own small kernel: no channel is mixed, so there is no GEMM to call (im2col's
per-group products are a few numbers wide). A thread takes whole planes; for each kernel tap
it adds the tap's weight times a shifted window of the input plane to the output plane, the
innermost loop running along a row (SIMD at stride 1).

    forward          out[n, o] = bias[o] + sum over taps w[o, tap] * x[n, o // m] shifted
    backward-data    dx[n, c] = sum over j < m, taps, w[c m + j, tap] * grad[n, c m + j] shifted back
    backward-weight  dw[o, tap] = sum over n and positions grad[n, o] * x[n, o // m] shifted

1-D and 2-D problems run as 3-D with leading spatial sizes of one.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from convstack.nn.kernels.compiled import runtime
from convstack.nn.kernels.compiled.im2col import _as_3d, _settings, _three
from convstack.nn.kernels.compiled.runtime import index
from convstack.nn.kernels.geometry import ConvGeometry


def applies(geometry: ConvGeometry) -> bool:
    return geometry.depthwise and 1 <= len(geometry.kernel) <= 3 and geometry.dtype in ("float32", "float64")


@runtime.jit()
def _range(size_in, size_out, stride, offset):
    """The outputs o with 0 <= o * stride + offset < size_in, as [lo, hi)."""
    lo = min(size_out, max(0, (-offset + stride - 1) // stride))
    hi = max(lo, min(size_out, (size_in - 1 - offset) // stride + 1))
    return lo, hi


@runtime.jit(parallel=True)
def _forward(x, w, bias, out, stride, before, dilation):
    """out (N, O, D, H, W) from x (N, C, ...), w (O, kD, kH, kW), O = C * m."""
    batch, out_channels = out.shape[0], out.shape[1]
    depth, height, width = x.shape[2], x.shape[3], x.shape[4]
    od_, oh_, ow_ = out.shape[2], out.shape[3], out.shape[4]
    multiplier = out_channels // x.shape[1]
    kd_, kh_, kw_ = w.shape[1], w.shape[2], w.shape[3]
    sd, sh, sw = stride
    pd, ph, pw = before
    dd, dh, dw = dilation
    for plane in prange(batch * out_channels):
        n, o = plane // out_channels, plane % out_channels
        c = o // multiplier
        out[n, o] = bias[o]
        for kd in range(kd_):
            d_lo, d_hi = _range(depth, od_, sd, kd * dd - pd)
            for kh in range(kh_):
                h_lo, h_hi = _range(height, oh_, sh, kh * dh - ph)
                for kw in range(kw_):
                    w_lo, w_hi = _range(width, ow_, sw, kw * dw - pw)
                    tap = w[o, kd, kh, kw]
                    shift = kw * dw - pw
                    for od in range(d_lo, d_hi):
                        z = od * sd + kd * dd - pd
                        for oh in range(h_lo, h_hi):
                            y = oh * sh + kh * dh - ph
                            if sw == 1:  # a unit stride the compiler can see: SIMD along the row
                                for ow in range(w_lo, w_hi):
                                    out[n, o, od, oh, index(ow)] += tap * x[n, c, z, y, index(ow + shift)]
                            else:
                                for ow in range(w_lo, w_hi):
                                    out[n, o, od, oh, index(ow)] += tap * x[n, c, z, y, index(ow * sw + shift)]


@runtime.jit(parallel=True)
def _backward_data(grad, w, dx, stride, before, dilation):
    """dx (N, C, D, H, W) from grad (N, O, ...), w (O, kD, kH, kW): each input plane gathers its m output planes."""
    batch, channels = dx.shape[0], dx.shape[1]
    depth, height, width = dx.shape[2], dx.shape[3], dx.shape[4]
    od_, oh_, ow_ = grad.shape[2], grad.shape[3], grad.shape[4]
    multiplier = grad.shape[1] // channels
    kd_, kh_, kw_ = w.shape[1], w.shape[2], w.shape[3]
    sd, sh, sw = stride
    pd, ph, pw = before
    dd, dh, dw = dilation
    for plane in prange(batch * channels):
        n, c = plane // channels, plane % channels
        dx[n, c] = 0
        for j in range(multiplier):
            o = c * multiplier + j
            for kd in range(kd_):
                d_lo, d_hi = _range(depth, od_, sd, kd * dd - pd)
                for kh in range(kh_):
                    h_lo, h_hi = _range(height, oh_, sh, kh * dh - ph)
                    for kw in range(kw_):
                        w_lo, w_hi = _range(width, ow_, sw, kw * dw - pw)
                        tap = w[o, kd, kh, kw]
                        shift = kw * dw - pw
                        for od in range(d_lo, d_hi):
                            z = od * sd + kd * dd - pd
                            for oh in range(h_lo, h_hi):
                                y = oh * sh + kh * dh - ph
                                if sw == 1:
                                    for ow in range(w_lo, w_hi):
                                        dx[n, c, z, y, index(ow + shift)] += tap * grad[n, o, od, oh, index(ow)]
                                else:
                                    for ow in range(w_lo, w_hi):
                                        dx[n, c, z, y, index(ow * sw + shift)] += tap * grad[n, o, od, oh, index(ow)]


@runtime.jit(parallel=True, fastmath=runtime.REASSOCIATE)
def _backward_weight(grad, x, dw_out, stride, before, dilation):
    """dw_out (O, kD, kH, kW) from grad (N, O, ...) and x (N, C, ...): a thread per output channel."""
    batch, out_channels = grad.shape[0], grad.shape[1]
    depth, height, width = x.shape[2], x.shape[3], x.shape[4]
    od_, oh_, ow_ = grad.shape[2], grad.shape[3], grad.shape[4]
    multiplier = out_channels // x.shape[1]
    kd_, kh_, kw_ = dw_out.shape[1], dw_out.shape[2], dw_out.shape[3]
    sd, sh, sw = stride
    pd, ph, pw = before
    dd, dh, dw = dilation
    for o in prange(out_channels):
        c = o // multiplier
        for kd in range(kd_):
            d_lo, d_hi = _range(depth, od_, sd, kd * dd - pd)
            for kh in range(kh_):
                h_lo, h_hi = _range(height, oh_, sh, kh * dh - ph)
                for kw in range(kw_):
                    w_lo, w_hi = _range(width, ow_, sw, kw * dw - pw)
                    shift = kw * dw - pw
                    total = 0.0
                    for n in range(batch):
                        for od in range(d_lo, d_hi):
                            z = od * sd + kd * dd - pd
                            for oh in range(h_lo, h_hi):
                                y = oh * sh + kh * dh - ph
                                row = grad.dtype.type(0)  # a row's sum in the input's precision: SIMD
                                if sw == 1:
                                    for ow in range(w_lo, w_hi):
                                        row += grad[n, o, od, oh, index(ow)] * x[n, c, z, y, index(ow + shift)]
                                else:
                                    for ow in range(w_lo, w_hi):
                                        row += grad[n, o, od, oh, index(ow)] * x[n, c, z, y, index(ow * sw + shift)]
                                total += row
                    dw_out[o, kd, kh, kw] = total


def _weight_3d(weight):
    """(O, 1, *K) viewed as (O, kD, kH, kW)."""
    return weight.reshape((weight.shape[0],) + _three(weight.shape[2:], 1))


def forward(x, weight, bias, geometry: ConvGeometry):
    """Depthwise correlation of ``x`` (N, C, *S) with ``weight`` (C * m, 1, *K), plus ``bias``: (N, C * m, *O)."""
    spatial = len(geometry.kernel)
    stride, before, dilation, out_sizes = _settings(geometry)
    out = np.empty((geometry.batch, geometry.out_channels) + geometry.out_sizes, dtype=x.dtype)
    bias = np.zeros(geometry.out_channels, x.dtype) if bias is None else np.ascontiguousarray(bias)
    with runtime.launch():
        _forward(_as_3d(np.ascontiguousarray(x), spatial), _weight_3d(np.ascontiguousarray(weight)), bias,
                 _as_3d(out, spatial), stride, before, dilation)
    return out


def backward_data(grad, weight, geometry: ConvGeometry):
    """Input gradient (N, C, *S) from ``grad`` (N, C * m, *O)."""
    spatial = len(geometry.kernel)
    stride, before, dilation, _ = _settings(geometry)
    dx = np.empty(geometry.input_shape, dtype=grad.dtype)
    with runtime.launch():
        _backward_data(_as_3d(np.ascontiguousarray(grad), spatial), _weight_3d(np.ascontiguousarray(weight)),
                       _as_3d(dx, spatial), stride, before, dilation)
    return dx


def backward_weight(grad, x, geometry: ConvGeometry):
    """Weight gradient (C * m, 1, *K) from ``grad`` (N, C * m, *O) and the unpadded input ``x`` (N, C, *S)."""
    spatial = len(geometry.kernel)
    stride, before, dilation, _ = _settings(geometry)
    dw = np.empty(geometry.weight_shape, dtype=x.dtype)
    with runtime.launch():
        _backward_weight(_as_3d(np.ascontiguousarray(grad), spatial), _as_3d(np.ascontiguousarray(x), spatial),
                         _weight_3d(dw), stride, before, dilation)
    return dw
