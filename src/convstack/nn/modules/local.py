"""Unshared convolution layers (Goodfellow et al., Deep Learning §9.5): locally connected and tiled.

``LocallyConnected1d/2d`` learn one kernel per output position; ``TiledConv1d/2d`` learn
``t`` kernel sets cycled across the output. Both store the weight as
``(*positions_or_tile, out_channels, in_channels, *kernel_size)``: ``weight[i, j]`` is an
ordinary ``Conv2d`` weight, used at output position (i, j) (locally connected) or at every
position (i', j') with ``i' mod t_h = i, j' mod t_w = j`` (tiled). The bias is
``(*positions_or_tile, out_channels)``.
"""

from __future__ import annotations

import math

import numpy

from convstack.nn import functional as F
from convstack.nn import init
from convstack.nn.modules._args import ArgumentCheck, Configurable
from convstack.nn.modules.module import Module
from convstack.nn.modules.parameter import Parameter, empty_parameter


class _UnsharedConvNd(Configurable, Module):
    """Checks the shared arguments, owns ``weight`` (*lead, O, C, *K) and ``bias`` (*lead, O)."""

    _dims: int

    def _build(self, check, in_channels, out_channels, kernel_size, stride, padding, bias, dtype):
        n = self._dims
        self.in_channels = check.positive_int("in_channels", in_channels)
        self.out_channels = check.positive_int("out_channels", out_channels)
        self.kernel_size = check.ints("kernel_size", kernel_size, n)
        self.stride = check.ints("stride", stride, n)
        self.padding = check.ints("padding", padding, n, minimum=0)
        check.boolean("bias", bias)
        return check.float_dtype(dtype)

    def _make_parameters(self, lead, bias, dtype) -> None:
        shape = tuple(lead) + (self.out_channels, self.in_channels) + self.kernel_size
        sizes = f"in_channels {self.in_channels}, out_channels {self.out_channels}, kernel_size {self.kernel_size}"
        self.weight = empty_parameter(shape, dtype, type(self).__name__, sizes)
        self.bias = Parameter(numpy.empty(tuple(lead) + (self.out_channels,), dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self, generator=None) -> None:
        """PyTorch's convolution default per kernel: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C_in * prod(K).

        (``kaiming_uniform_(a=sqrt(5))`` gives this bound; the fan-in is that of one kernel,
        not of the whole unshared weight.)
        """
        bound = 1.0 / math.sqrt(self.in_channels * math.prod(self.kernel_size))
        init.uniform_(self.weight, -bound, bound, generator)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound, generator)

    def _repr_tail(self) -> str:
        n = self._dims
        s = f", kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.bias is None:
            s += ", bias=False"
        return s


class _LocallyConnectedNd(_UnsharedConvNd):
    def __init__(self, in_channels: int, out_channels: int, input_size, kernel_size, stride=1, padding=0,
                 bias: bool = True, dtype=None):
        super().__init__()
        n, check = self._dims, ArgumentCheck(type(self).__name__)
        self.input_size = check.ints("input_size", input_size, n)
        dtype = self._build(check, in_channels, out_channels, kernel_size, stride, padding, bias, dtype)
        if self.input_size and self.kernel_size and self.stride and self.padding is not None:
            # floor((in + 2 * padding - kernel) / stride) + 1 per dimension, fixed at construction
            self.output_size = tuple((i + 2 * p - k) // s + 1 for i, p, k, s in
                                     zip(self.input_size, self.padding, self.kernel_size, self.stride))
            padded = tuple(i + 2 * p for i, p in zip(self.input_size, self.padding))
            if any(k > n for k, n in zip(self.kernel_size, padded)):
                check.fail("kernel_size", f"at most the padded input size {padded}", kernel_size)
        check.done()
        self._make_parameters(self.output_size, bias, dtype)

    def _check_input(self, input) -> None:
        if tuple(input.shape[-self._dims :]) != self.input_size or input.ndim not in (self._dims + 1, self._dims + 2):
            raise ValueError(f"{type(self).__name__}: expected an input of spatial size {self.input_size} "
                             f"(input_size), received shape {tuple(input.shape)}")

    def get_config(self) -> dict:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels, "input_size": self.input_size,
                "kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding,
                "bias": self.bias is not None, "dtype": str(self.weight.dtype)}

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, input_size={self.input_size}, "
                f"output_size={self.output_size}" + self._repr_tail())


class LocallyConnected1d(_LocallyConnectedNd):
    """Locally connected layer over ``(N, C_in, L)``: a convolution with a separate kernel per output position.

    Args:
        in_channels, out_channels: channels of the input and output.
        input_size: L, fixed (the number of kernels depends on it).
        kernel_size, stride, padding: an int or a 1-tuple, as ``Conv1d``.
        bias: learn a bias per output position and channel.

    Shape:
        ``(N, C_in, L) -> (N, C_out, L_out)``, ``L_out = floor((L + 2 * padding - kernel_size) / stride) + 1``.
        ``weight``: ``(L_out, C_out, C_in, kernel_size)``; ``bias``: ``(L_out, C_out)``.

    Examples:
        >>> import convstack as cs
        >>> layer = cs.nn.LocallyConnected1d(2, 4, 10, 3)
        >>> layer(cs.randn(5, 2, 10)).shape, layer.weight.shape
        ((5, 4, 8), (8, 4, 2, 3))
    """

    _dims = 1

    def forward(self, input):
        self._check_input(input)
        return F.locally_connected1d(input, self.weight, self.bias, self.stride, self.padding)


class LocallyConnected2d(_LocallyConnectedNd):
    """Locally connected layer over ``(N, C_in, H, W)`` images (unshared convolution); args as ``LocallyConnected1d``.

    Shape:
        ``(N, C_in, H, W) -> (N, C_out, H_out, W_out)``, each ``out = floor((in + 2 * padding - k) / stride) + 1``.
        ``weight``: ``(H_out, W_out, C_out, C_in, kH, kW)``; ``bias``: ``(H_out, W_out, C_out)``.

    Examples:
        >>> import convstack as cs
        >>> layer = cs.nn.LocallyConnected2d(3, 8, (6, 6), 3, stride=1)
        >>> layer(cs.randn(2, 3, 6, 6)).shape, layer.weight.shape
        ((2, 8, 4, 4), (4, 4, 8, 3, 3, 3))
    """

    _dims = 2

    def forward(self, input):
        self._check_input(input)
        return F.locally_connected2d(input, self.weight, self.bias, self.stride, self.padding)


class _TiledConvNd(_UnsharedConvNd):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, tile_size, stride=1, padding=0,
                 bias: bool = True, dtype=None):
        super().__init__()
        check = ArgumentCheck(type(self).__name__)
        dtype = self._build(check, in_channels, out_channels, kernel_size, stride, padding, bias, dtype)
        self.tile_size = check.ints("tile_size", tile_size, self._dims)
        check.done()
        self._make_parameters(self.tile_size, bias, dtype)

    def get_config(self) -> dict:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels, "kernel_size": self.kernel_size,
                "tile_size": self.tile_size, "stride": self.stride, "padding": self.padding,
                "bias": self.bias is not None, "dtype": str(self.weight.dtype)}

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, tile_size={self.tile_size}" + self._repr_tail()


class TiledConv1d(_TiledConvNd):
    """Tiled convolution over ``(N, C_in, L)``: ``tile_size`` kernels cycled along the output (position i uses i mod t).

    Shape:
        ``(N, C_in, L) -> (N, C_out, L_out)`` as ``Conv1d``;
        ``weight``: ``(t, C_out, C_in, k)``; ``bias``: ``(t, C_out)``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.TiledConv1d(2, 4, 3, tile_size=2, padding=1)(cs.randn(1, 2, 7)).shape
        (1, 4, 7)
    """

    _dims = 1

    def forward(self, input):
        return F.tiled_conv1d(input, self.weight, self.bias, self.stride, self.padding)


class TiledConv2d(_TiledConvNd):
    """Tiled convolution (Goodfellow et al. §9.5; Le et al. 2010) over ``(N, C_in, H, W)``.

    Output position (i, j) uses kernel set ``(i mod t_h, j mod t_w)``: a tile of 1 is ``Conv2d``,
    a tile equal to the output size is ``LocallyConnected2d``; in between, a layer learns
    ``t_h * t_w`` times more kernels than a convolution at no extra compute.

    Args:
        in_channels, out_channels, kernel_size, stride, padding: as ``Conv2d``.
        tile_size: t or (t_h, t_w), the number of kernel sets along each dimension.
        bias: learn a bias per kernel set and output channel.

    Shape:
        ``(N, C_in, H, W) -> (N, C_out, H_out, W_out)`` as ``Conv2d``;
        ``weight``: ``(t_h, t_w, C_out, C_in, kH, kW)``; ``bias``: ``(t_h, t_w, C_out)``.

    Examples:
        >>> import convstack as cs
        >>> layer = cs.nn.TiledConv2d(3, 8, 3, tile_size=2, padding=1)
        >>> layer(cs.randn(2, 3, 6, 6)).shape, layer.weight.shape
        ((2, 8, 6, 6), (2, 2, 8, 3, 3, 3))
    """

    _dims = 2

    def forward(self, input):
        return F.tiled_conv2d(input, self.weight, self.bias, self.stride, self.padding)
