"""Normalisation layers with per-sample statistics: ``LayerNorm``, ``GroupNorm``, ``InstanceNorm1d/2d/3d``.

None of them depends on the batch: the same sample gives the same output in a batch of one
or of many, in training and in eval mode (unless an instance-norm layer tracks running
statistics, as PyTorch's can). Parameter and buffer names are PyTorch's, so state dicts
exchange unchanged.
"""

from __future__ import annotations

import numbers
import warnings

import numpy

from convstack.nn import functional as F
from convstack.nn.modules._args import ArgumentCheck, Configurable
from convstack.nn.modules.module import Module
from convstack.nn.modules.normalization import _NormBase
from convstack.nn.modules.parameter import Parameter


class LayerNorm(Configurable, Module):
    """Layer normalisation (Ba et al. 2016) over the trailing ``normalized_shape`` dimensions of each sample.

    ``y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias``, the statistics over the last
    ``len(normalized_shape)`` dimensions; ``weight`` and ``bias`` have shape ``normalized_shape``
    (one per element, not per channel).

    Args:
        normalized_shape: an int or a tuple of ints, the trailing sizes.
        eps: added to the variance under the square root.
        elementwise_affine: learn ``weight`` (ones) and ``bias`` (zeros).
        bias: with ``elementwise_affine``, also learn ``bias``.
        dtype: of the parameters (default float32).

    Shape:
        Input (*, *normalized_shape), output the same.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.LayerNorm([8, 5, 5])(cs.randn(4, 8, 5, 5)).shape
        (4, 8, 5, 5)
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 dtype=None):
        super().__init__()
        check = ArgumentCheck("LayerNorm")
        shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else normalized_shape
        try:
            shape = tuple(shape)
        except TypeError:
            shape = ()
        if not shape or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1
                                for s in shape):
            check.fail("normalized_shape", "a positive integer or a non-empty tuple of positive integers",
                       normalized_shape)
        self.normalized_shape = tuple(int(s) for s in shape) if not check.errors else None
        self.eps = check.number("eps", eps, 0.0, expected="a non-negative number")
        self.elementwise_affine = check.boolean("elementwise_affine", elementwise_affine)
        check.boolean("bias", bias)
        dtype = check.float_dtype(dtype)
        check.done()
        if elementwise_affine:
            self.weight = Parameter(numpy.ones(self.normalized_shape, dtype=dtype))
        else:
            self.register_parameter("weight", None)
        if elementwise_affine and bias:
            self.bias = Parameter(numpy.zeros(self.normalized_shape, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self._dtype = dtype

    def reset_parameters(self) -> None:
        if self.weight is not None:
            self.weight.data[...] = 1
        if self.bias is not None:
            self.bias.data[...] = 0

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def get_config(self) -> dict:
        return {"normalized_shape": self.normalized_shape, "eps": self.eps,
                "elementwise_affine": self.elementwise_affine, "bias": self.bias is not None,
                "dtype": str(self._dtype)}

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class GroupNorm(Configurable, Module):
    """Group normalisation (Wu & He 2018): channels in ``num_groups`` groups, each standardised per sample.

    Independent of the batch size, so it suits small batches where batch norm's statistics
    are noisy (detection, segmentation). ``num_groups=1`` normalises (C, *) like layer norm
    with per-channel affine parameters; ``num_groups=C`` is instance norm.

    Args:
        num_groups: number of groups, a divisor of ``num_channels``.
        num_channels: C.
        eps: added to the variance under the square root.
        affine: learn per-channel ``weight`` (ones) and ``bias`` (zeros).
        dtype: of the parameters (default float32).
        bias: (keyword only) with ``affine``, also learn ``bias``.

    Shape:
        Input (N, C, *), output the same.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.GroupNorm(4, 16)(cs.randn(2, 16, 8, 8)).shape
        (2, 16, 8, 8)
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, dtype=None, *,
                 bias: bool = True):
        super().__init__()
        check = ArgumentCheck("GroupNorm")
        self.num_groups = check.positive_int("num_groups", num_groups)
        self.num_channels = check.positive_int("num_channels", num_channels)
        if self.num_groups and self.num_channels and self.num_channels % self.num_groups:
            check.fail("num_groups", f"a divisor of num_channels ({num_channels})", num_groups)
        self.eps = check.number("eps", eps, 0.0, expected="a non-negative number")
        self.affine = check.boolean("affine", affine)
        check.boolean("bias", bias)
        dtype = check.float_dtype(dtype)
        check.done()
        if affine:
            self.weight = Parameter(numpy.ones(num_channels, dtype=dtype))
        else:
            self.register_parameter("weight", None)
        if affine and bias:
            self.bias = Parameter(numpy.zeros(num_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self._dtype = dtype

    def reset_parameters(self) -> None:
        if self.weight is not None:
            self.weight.data[...] = 1
        if self.bias is not None:
            self.bias.data[...] = 0

    def _check_input(self, input) -> None:
        if input.ndim < 2 or input.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm: expected an input (N, {self.num_channels}, *) with num_channels="
                             f"{self.num_channels} channels, received shape {tuple(input.shape)}")

    def forward(self, input):
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def get_config(self) -> dict:
        return {"num_groups": self.num_groups, "num_channels": self.num_channels, "eps": self.eps,
                "affine": self.affine, "dtype": str(self._dtype), "bias": self.bias is not None}

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, " \
               f"bias={self.bias is not None}"


class _InstanceNorm(_NormBase):
    """Each (sample, channel) plane standardised with its own statistics (Ulyanov et al. 2016).

    With ``track_running_stats`` the layer also keeps running statistics (the batch average
    of the planes' means and unbiased variances) and normalises with them in eval mode, as
    PyTorch's does; ``momentum=None`` there means no update (not a cumulative average).
    """

    _spatial_dims: int

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = False,
                 track_running_stats: bool = False, dtype=None, *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype, bias=bias)

    def _check_input(self, input) -> None:
        spatial = self._spatial_dims
        if input.ndim not in (spatial + 1, spatial + 2):
            raise ValueError(f"{type(self).__name__}: expected a {spatial + 1}-D (unbatched) or {spatial + 2}-D "
                             f"input, received a {input.ndim}-D input of shape {tuple(input.shape)}")
        channels = input.shape[input.ndim - spatial - 1]
        if channels != self.num_features:
            message = (f"{type(self).__name__}: expected an input with {self.num_features} channels "
                       f"(num_features), received shape {tuple(input.shape)}")
            if self.affine:
                raise ValueError(message)
            warnings.warn(message + "; num_features is not used when affine=False", stacklevel=3)

    def forward(self, input):
        unbatched = input.ndim == self._spatial_dims + 1
        if unbatched:
            input = input.unsqueeze(0)
        out = F.instance_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                              self.training or not self.track_running_stats,
                              0.0 if self.momentum is None else self.momentum, self.eps)
        return out.squeeze(0) if unbatched else out


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of ``(N, C, L)`` sequences (or unbatched ``(C, L)``), per sample and channel.

    Args:
        num_features: C.
        eps: added to the variance under the square root.
        momentum: weight of each batch in the running statistics (when tracked).
        affine: learn per-channel ``weight`` and ``bias`` (default False, as PyTorch).
        track_running_stats: keep running statistics and use them in eval mode (default False).
        dtype: of the parameters and running statistics (default float32).
        bias: (keyword only) with ``affine``, also learn ``bias``.

    Shape:
        Input (N, C, L) or (C, L), output the same.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.InstanceNorm1d(3)(cs.randn(2, 3, 10)).shape
        (2, 3, 10)
    """

    _spatial_dims = 1


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of ``(N, C, H, W)`` images (or ``(C, H, W)``); arguments as ``InstanceNorm1d``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.InstanceNorm2d(3, affine=True)(cs.randn(2, 3, 8, 8)).shape
        (2, 3, 8, 8)
    """

    _spatial_dims = 2


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of ``(N, C, D, H, W)`` volumes (or ``(C, D, H, W)``); arguments as ``InstanceNorm1d``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.InstanceNorm3d(2)(cs.randn(1, 2, 4, 4, 4)).shape
        (1, 2, 4, 4, 4)
    """

    _spatial_dims = 3
