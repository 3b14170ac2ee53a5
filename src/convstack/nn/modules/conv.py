"""Convolution layers: one N-d base, ``Conv1d/2d/3d`` and ``ConvTranspose1d/2d/3d`` as thin subclasses."""

from __future__ import annotations

import numpy

from convstack.backend import check_allocation, get_array_module
from convstack.nn import functional as F
from convstack.nn import init
from convstack.nn.modules._args import ArgumentCheck, Configurable
from convstack.nn.modules.module import Module, check_input_dtype, check_spatial_input
from convstack.nn.modules.parameter import Parameter, empty_parameter

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Configurable, Module):
    """Owns ``weight`` and ``bias`` of an N-d (transposed) convolution; subclasses call the functional op.

    ``weight``: ``(out_channels, in_channels / groups, *kernel_size)``, or for the
    transposed layers ``(in_channels, out_channels / groups, *kernel_size)``;
    ``bias``: ``(out_channels,)``. Both start from PyTorch's default initialisation
    (``reset_parameters``).
    """

    _spatial_dims: int
    _transposed = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        dtype=None,
    ):
        Module.__init__(self)
        self._build(in_channels, out_channels, kernel_size, stride, padding, 0, groups, bias, dilation, padding_mode,
                    dtype)

    def _build(self, in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias, dilation,
               padding_mode, dtype) -> None:
        n, op = self._spatial_dims, type(self).__name__
        check = ArgumentCheck(op)
        self.in_channels = check.positive_int("in_channels", in_channels)
        self.out_channels = check.positive_int("out_channels", out_channels)
        self.kernel_size = check.ints("kernel_size", kernel_size, n)
        self.stride = check.ints("stride", stride, n)
        self.dilation = check.ints("dilation", dilation, n)
        if isinstance(padding, str) and not self._transposed:
            self.padding = check.choice("padding", padding, ("valid", "same"))
            if padding == "same" and self.stride is not None and any(s != 1 for s in self.stride):
                check.fail("padding", "an explicit padding for a strided convolution ('same' needs stride 1)", padding)
        else:
            self.padding = check.ints("padding", padding, n, minimum=0)
        self.groups = check.positive_int("groups", groups)
        if self.groups and self.in_channels and self.out_channels:
            if self.in_channels % self.groups or self.out_channels % self.groups:
                check.fail(
                    "groups", f"a divisor of in_channels ({in_channels}) and out_channels ({out_channels})", groups
                )
        check.boolean("bias", bias)
        modes = ("zeros",) if self._transposed else _PADDING_MODES
        self.padding_mode = check.choice("padding_mode", padding_mode, modes)
        self.output_padding = check.ints("output_padding", output_padding, n, minimum=0)
        if self.output_padding and self.stride and self.dilation:
            if any(p >= max(s, d) for p, s, d in zip(self.output_padding, self.stride, self.dilation)):
                check.fail("output_padding", f"values smaller than stride {self.stride} or dilation {self.dilation}",
                           output_padding)
        dtype = check.float_dtype(dtype)
        check.done()

        if self._transposed:
            shape = (in_channels, out_channels // groups, *self.kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *self.kernel_size)
        sizes = f"in_channels {in_channels}, out_channels {out_channels}, kernel_size {self.kernel_size}"
        self.weight = empty_parameter(shape, dtype, type(self).__name__, sizes)
        self.bias = Parameter(numpy.empty(out_channels, dtype=dtype)) if bias else None
        self._setup_padding()
        self.reset_parameters()

    def _setup_padding(self) -> None:
        """Work out, once, what forward pads explicitly (F.pad) and what the conv op pads.

        Non-zero padding modes and an asymmetric 'same' pad with ``F.pad`` first; the
        convolution then pads nothing.
        """
        n = self._spatial_dims
        if self.padding == "valid":
            pairs = [(0, 0)] * n
        elif self.padding == "same":
            totals = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            pairs = [(t // 2, t - t // 2) for t in totals]
        else:
            pairs = [(p, p) for p in self.padding]
        # F.pad takes (last dim left, last dim right, previous dim left, ...).
        self._reversed_padding_repeated_twice = tuple(v for pair in reversed(pairs) for v in pair)
        symmetric = all(left == right for left, right in pairs)
        if self.padding_mode != "zeros":
            self._pad_mode, self._conv_padding = self.padding_mode, (0,) * n
        elif not symmetric:
            self._pad_mode, self._conv_padding = "constant", (0,) * n
        else:
            self._pad_mode, self._conv_padding = None, tuple(left for left, _ in pairs)

    def _pad(self, input):
        if self._pad_mode is None:
            return input
        return F.pad(input, self._reversed_padding_repeated_twice, mode=self._pad_mode)

    def reset_parameters(self, generator=None) -> None:
        """PyTorch's default: ``kaiming_uniform_(weight, a=sqrt(5))``, bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        init.default_reset_(self.weight, self.bias, generator)

    def _check_input(self, input) -> None:
        """Rank N+2 (or N+1 unbatched), ``in_channels`` channels, the weight's dtype, and an output that can fit
        in memory (run by ``Module.__call__``)."""
        check_spatial_input(input, self._spatial_dims, self.in_channels)
        check_input_dtype(input, self.weight.dtype)
        shape = getattr(input, "shape", None)
        if shape is not None:
            check_allocation(self._output_bound(shape) * self.weight.data.itemsize, "the output",
                             f"input shape {tuple(shape)}", xp=get_array_module(self.weight.data))

    def _output_bound(self, shape) -> int:
        """An upper bound on the output's element count for an input of ``shape`` (cheap: no padding details)."""
        n = self._spatial_dims
        pads = self._reversed_padding_repeated_twice
        count = self.out_channels * (shape[0] if len(shape) == n + 2 else 1)
        for axis, size in enumerate(shape[-n:]):
            stride, dilation, kernel = self.stride[axis], self.dilation[axis], self.kernel_size[axis]
            if self._transposed:
                count *= (size - 1) * stride + dilation * (kernel - 1) + stride  # output_padding < stride
            else:
                count *= (size + pads[2 * (n - 1 - axis)] + pads[2 * (n - 1 - axis) + 1]) // stride + 1
        return count

    def get_config(self) -> dict:
        config = {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
        }
        if self._transposed:
            config["output_padding"] = self.output_padding
        config.update(
            groups=self.groups,
            bias=self.bias is not None,
            dilation=self.dilation,
            padding_mode=self.padding_mode,
            dtype=str(self.weight.dtype),
        )
        return config

    def extra_repr(self) -> str:
        n = self._spatial_dims
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _ConvTransposeNd(_ConvNd):
    """Transposed convolution (the adjoint of a convolution), PyTorch's argument order."""

    _transposed = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups: int = 1,
        bias: bool = True,
        dilation=1,
        padding_mode: str = "zeros",
        dtype=None,
    ):
        Module.__init__(self)
        self._build(in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias, dilation,
                    padding_mode, dtype)

    def _output_padding(self, input, output_size) -> tuple:
        """``output_padding``, or the one that makes the output ``output_size`` (spatial, or full shape).

        Without output padding each spatial size is
        ``(in - 1) * stride - 2 * padding + dilation * (kernel - 1) + 1``;
        ``output_size`` may add up to ``max(stride, dilation) - 1`` to it.
        """
        if output_size is None:
            return self.output_padding
        n, op = self._spatial_dims, type(self).__name__
        output_size = tuple(output_size)[-n:] if len(output_size) in (n + 1, n + 2) else tuple(output_size)
        spatial_in = input.shape[-n:]
        padding = []
        for size, i, k, s, p, d in zip(output_size, spatial_in, self.kernel_size, self.stride, self.padding,
                                       self.dilation):
            smallest = (i - 1) * s - 2 * p + d * (k - 1) + 1
            padding.append(size - smallest)
        if len(output_size) != n or any(not 0 <= p < max(s, d) for p, s, d in
                                        zip(padding, self.stride, self.dilation)):
            raise ValueError(
                f"{op}: requested output_size {output_size} is not reachable from input shape {tuple(input.shape)}: "
                f"each spatial size must lie between (in - 1) * stride - 2 * padding + dilation * (kernel - 1) + 1 "
                f"and that plus max(stride, dilation) - 1"
            )
        return tuple(padding)


class Conv1d(_ConvNd):
    """1-D convolution (cross-correlation) over ``(N, C_in, L)`` (sequences, signals).

    Args:
        in_channels, out_channels: channels of the input and output.
        kernel_size, stride, padding, dilation: an int or a 1-tuple; ``padding`` may be 'valid' or 'same'.
        groups: split channels into ``groups`` independent convolutions.
        bias: learn a per-output-channel bias.
        padding_mode: 'zeros', 'reflect', 'replicate' or 'circular'.

    Shape:
        ``(N, C_in, L_in) -> (N, C_out, L_out)``,
        ``L_out = floor((L_in + 2 * padding - dilation * (kernel_size - 1) - 1) / stride + 1)``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.Conv1d(4, 8, 3, padding=1)(cs.randn(2, 4, 16)).shape
        (2, 8, 16)
    """

    _spatial_dims = 1

    def forward(self, input):
        return F.conv1d(self._pad(input), self.weight, self.bias, self.stride, self._conv_padding, self.dilation,
                        self.groups)


class Conv2d(_ConvNd):
    """2-D convolution (cross-correlation) over ``(N, C_in, H, W)`` images.

    Args as ``Conv1d``, with ints or 2-tuples.

    Shape:
        ``(N, C_in, H_in, W_in) -> (N, C_out, H_out, W_out)``, for each spatial size
        ``out = floor((in + 2 * padding - dilation * (kernel_size - 1) - 1) / stride + 1)``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.Conv2d(1, 6, 5, padding=2)(cs.randn(1, 1, 28, 28)).shape
        (1, 6, 28, 28)
    """

    _spatial_dims = 2

    def forward(self, input):
        return F.conv2d(self._pad(input), self.weight, self.bias, self.stride, self._conv_padding, self.dilation,
                        self.groups)


class Conv3d(_ConvNd):
    """3-D convolution (cross-correlation) over ``(N, C_in, D, H, W)`` volumes or clips.

    Args as ``Conv1d``, with ints or 3-tuples.

    Shape:
        ``(N, C_in, D_in, H_in, W_in) -> (N, C_out, D_out, H_out, W_out)``, sizes as ``Conv2d``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.Conv3d(2, 4, 3)(cs.randn(1, 2, 5, 6, 7)).shape
        (1, 4, 3, 4, 5)
    """

    _spatial_dims = 3

    def forward(self, input):
        return F.conv3d(self._pad(input), self.weight, self.bias, self.stride, self._conv_padding, self.dilation,
                        self.groups)


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution (upsampling; the gradient of ``Conv1d`` w.r.t. its input).

    Shape:
        ``(N, C_in, L_in) -> (N, C_out, L_out)``,
        ``L_out = (L_in - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1``.
        ``forward(input, output_size)`` picks ``output_padding`` to reach ``output_size``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.ConvTranspose1d(4, 2, 4, stride=2, padding=1)(cs.randn(1, 4, 8)).shape
        (1, 2, 16)
    """

    _spatial_dims = 1

    def forward(self, input, output_size=None):
        return F.conv_transpose1d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups, self.dilation)


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution over ``(N, C_in, H, W)``; sizes as ``ConvTranspose1d`` per spatial dim.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.ConvTranspose2d(8, 4, 2, stride=2)(cs.randn(1, 8, 7, 7)).shape
        (1, 4, 14, 14)
    """

    _spatial_dims = 2

    def forward(self, input, output_size=None):
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups, self.dilation)


class ConvTranspose3d(_ConvTransposeNd):
    """3-D transposed convolution over ``(N, C_in, D, H, W)``; sizes as ``ConvTranspose1d`` per spatial dim.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.ConvTranspose3d(2, 1, 2, stride=2)(cs.randn(1, 2, 3, 3, 3)).shape
        (1, 1, 6, 6, 6)
    """

    _spatial_dims = 3

    def forward(self, input, output_size=None):
        return F.conv_transpose3d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups, self.dilation)
