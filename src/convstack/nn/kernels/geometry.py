"""The shape of one convolution: everything an algorithm's choice and its chunks depend on."""

from __future__ import annotations

import math
from typing import NamedTuple


class ConvGeometry(NamedTuple):
    """A convolution of an (N, C, *S) input with an (O, C / groups, *K) weight; hashable (the choice cache's key).

    ``pads`` holds a (before, after) pair per spatial dimension; ``dtype`` is the dtype's name.
    """

    input_shape: tuple
    weight_shape: tuple
    stride: tuple
    pads: tuple
    dilation: tuple
    groups: int
    dtype: str

    @classmethod
    def of(cls, x, weight, stride, pads, dilation, groups):
        return cls(tuple(x.shape), tuple(weight.shape), tuple(stride), tuple(map(tuple, pads)), tuple(dilation),
                   groups, x.dtype.name)

    @property
    def batch(self) -> int:
        return self.input_shape[0]

    @property
    def in_channels(self) -> int:
        return self.input_shape[1]

    @property
    def out_channels(self) -> int:
        return self.weight_shape[0]

    @property
    def kernel(self) -> tuple:
        return self.weight_shape[2:]

    @property
    def padded_sizes(self) -> tuple:
        return tuple(size + b + a for size, (b, a) in zip(self.input_shape[2:], self.pads))

    @property
    def out_sizes(self) -> tuple:
        """``floor((S + before + after - dilation * (K - 1) - 1) / stride) + 1`` per dimension."""
        return tuple(
            (size - d * (k - 1) - 1) // s + 1
            for size, k, s, d in zip(self.padded_sizes, self.kernel, self.stride, self.dilation)
        )

    @property
    def itemsize(self) -> int:
        return 8 if self.dtype == "float64" else 4

    @property
    def unit_stride(self) -> bool:
        return all(s == 1 for s in self.stride)

    @property
    def unit_dilation(self) -> bool:
        return all(d == 1 for d in self.dilation)

    @property
    def depthwise(self) -> bool:
        """Each input channel has its own filters (C_in / groups == 1), as in MobileNet."""
        return self.groups == self.in_channels and self.groups > 1

    def flops(self) -> int:
        """Multiply-adds of the direct algorithm, times two."""
        return 2 * math.prod(self.weight_shape) * self.batch * math.prod(self.out_sizes)
