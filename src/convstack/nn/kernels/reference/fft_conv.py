"""FFT convolution, any number of spatial dimensions, stride 1 and dilation 1.

By the convolution theorem, a cross-correlation is a product of spectra:

    out[n, o] = irfftn( sum_c X[n, c] * conj(W[o, c]) )     X = rfftn(padded x), W = rfftn(weight)

computed at a transform size s >= the padded input size per dimension, so that the
circular correlation equals the linear one on the outputs kept (the first
S + padding - K + 1 values). The sum over channels is one batched complex GEMM per
frequency bin, (F, G, N, Cg) @ (F, G, Cg, Og). The cost is that of the transforms plus
those products: it does not grow with the kernel size, which is where FFT can win over
im2col (whose columns grow with prod(K)); the measurements in
``docs/convolution_algorithms.md`` say where that happens on a CPU.

The input gradient is the same forward applied to the gradient with the flipped,
channel-swapped kernel (see ``chunked.backward_data_correlate``); the weight gradient
is the correlation of the padded input with the gradient, sum_n X[n, c] * conj(G[n, o]),
whose first K values per dimension are kept.
"""

from __future__ import annotations

from convstack.backend import get_array_module
from convstack.nn.kernels.geometry import ConvGeometry
from convstack.nn.kernels.reference.chunked import pad_into


def applies(geometry: ConvGeometry) -> bool:
    return geometry.unit_stride and geometry.unit_dilation


def good_size(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n: lengths the FFT handles fastest."""
    best = 1 << max(0, (n - 1).bit_length())
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            size = power35
            while size < n:
                size *= 2
            best = min(best, size)
            power35 *= 3
        power5 *= 5
    return best


def _spectrum(xp, array, sizes):
    """rfftn over the trailing len(sizes) axes, bins moved to the front: (F..., lead...)."""
    spatial = len(sizes)
    spectrum = xp.fft.rfftn(array, s=sizes, axes=tuple(range(-spatial, 0)))
    lead = array.ndim - spatial
    return spectrum.transpose(tuple(range(lead, array.ndim)) + tuple(range(lead)))


def forward(x, weight, bias, geometry: ConvGeometry):
    """Cross-correlate ``x`` (N, C, *S), unpadded, with ``weight`` (O, Cg, *K), stride 1: (N, O, *O)."""
    xp = get_array_module(x, weight)
    batch, groups, out_channels = geometry.batch, geometry.groups, geometry.out_channels
    cg = weight.shape[1]
    spatial = len(geometry.kernel)
    sizes = tuple(good_size(n) for n in geometry.padded_sizes)
    padded = pad_into(xp, "fft.padded", x, geometry.pads)
    spectrum_x = _spectrum(xp, padded, sizes)  # (*F, N, C)
    bins = spectrum_x.shape[:spatial]
    spectrum_x = spectrum_x.reshape(bins + (batch, groups, cg)).swapaxes(-3, -2)  # (*F, G, N, Cg)
    spectrum_w = _spectrum(xp, weight, sizes).conj()  # (*F, O, Cg)
    spectrum_w = spectrum_w.reshape(bins + (groups, out_channels // groups, cg)).swapaxes(-1, -2)  # (*F, G, Cg, Og)
    product = xp.matmul(spectrum_x, spectrum_w)  # (*F, G, N, Og)
    product = product.swapaxes(-3, -2).reshape(bins + (batch, out_channels))  # (*F, N, O)
    product = product.transpose(tuple(range(spatial, spatial + 2)) + tuple(range(spatial)))  # (N, O, *F)
    full = xp.fft.irfftn(product, s=sizes, axes=tuple(range(-spatial, 0)))  # (N, O, *sizes)
    out = full[(Ellipsis,) + tuple(slice(0, n) for n in geometry.out_sizes)]
    if bias is None:
        return xp.ascontiguousarray(out, dtype=x.dtype)
    result = xp.empty(out.shape, dtype=x.dtype)
    xp.add(out, bias.reshape((-1,) + (1,) * spatial), out=result)
    return result


def backward_weight(grad, x, geometry: ConvGeometry):
    """Weight gradient (O, Cg, *K): the first K lags of the correlation of the padded input with ``grad``."""
    xp = get_array_module(grad, x)
    batch, groups, out_channels = geometry.batch, geometry.groups, geometry.out_channels
    cg = geometry.weight_shape[1]
    spatial = len(geometry.kernel)
    sizes = tuple(good_size(n) for n in geometry.padded_sizes)
    padded = pad_into(xp, "fft.padded", x, geometry.pads)
    spectrum_x = _spectrum(xp, padded, sizes)  # (*F, N, C)
    bins = spectrum_x.shape[:spatial]
    spectrum_x = spectrum_x.reshape(bins + (batch, groups, cg)).swapaxes(-3, -2)  # (*F, G, N, Cg)
    spectrum_g = _spectrum(xp, grad, sizes).conj()  # (*F, N, O)
    spectrum_g = spectrum_g.reshape(bins + (batch, groups, out_channels // groups)).transpose(
        tuple(range(spatial)) + (spatial + 1, spatial + 2, spatial)
    )  # (*F, G, Og, N)
    product = xp.matmul(spectrum_g, spectrum_x).reshape(bins + (out_channels, cg))  # (*F, O, Cg)
    product = product.transpose((spatial, spatial + 1) + tuple(range(spatial)))  # (O, Cg, *F)
    full = xp.fft.irfftn(product, s=sizes, axes=tuple(range(-spatial, 0)))  # (O, Cg, *sizes)
    kept = full[(Ellipsis,) + tuple(slice(0, k) for k in geometry.kernel)]
    return xp.ascontiguousarray(kept, dtype=x.dtype)

