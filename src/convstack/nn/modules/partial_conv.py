"""Partial connectivity between channels (Goodfellow et al., Deep Learning fig. 9.15; LeNet-5's C3).

``PartialConv2d`` is a ``Conv2d`` in which output channel o reads input channel c only where
``connections[o, c]`` is true. It is a dense convolution whose weight is multiplied by the
0/1 connection mask in every forward pass, so the masked weights receive zero gradient and,
starting at zero, stay zero under any optimiser.
"""

from __future__ import annotations

import math

import numpy

from convstack.nn import functional as F
from convstack.nn.functional._utils import invalid
from convstack.nn.modules.conv import Conv2d
from convstack.nn.modules.module import Module
from convstack.tensor import Tensor

# LeCun, Bottou, Bengio & Haffner (1998), "Gradient-based learning applied to document recognition",
# Proc. IEEE 86(11), Table I: the S2 maps (of 6) that each C3 map (of 16) reads. Maps 0-5 read
# every contiguous subset of three, 6-11 every contiguous subset of four, 12-14 some discontinuous
# subsets of four, and 15 reads all six.
_LENET5_C3_INPUTS = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


def lenet5_c3_table() -> numpy.ndarray:
    """LeNet-5's C3 connection table (LeCun et al. 1998, Table I) as a (16, 6) boolean (out x in) array.

    60 connections; with 5x5 kernels and a bias per map, C3 has (60 * 25) + 16 = 1,516 parameters.

    Examples:
        >>> table = lenet5_c3_table()
        >>> table.shape, int(table.sum()), table[0].nonzero()[0].tolist()
        ((16, 6), 60, [0, 1, 2])
    """
    table = numpy.zeros((16, 6), dtype=bool)
    for out_map, inputs in enumerate(_LENET5_C3_INPUTS):
        table[out_map, list(inputs)] = True
    return table


def _connection_table(connections, in_channels, out_channels) -> numpy.ndarray:
    op = "PartialConv2d"
    try:
        table = numpy.asarray(connections.data if isinstance(connections, Tensor) else connections)
    except (TypeError, ValueError) as error:
        raise invalid(op, "connections", "a boolean (out_channels, in_channels) table", connections) from error
    expected = f"a boolean table of shape (out_channels, in_channels) = ({out_channels}, {in_channels})"
    if table.shape != (out_channels, in_channels) or table.dtype.kind not in "biuf":
        raise invalid(op, "connections", expected, f"{table.dtype} array of shape {table.shape}")
    if table.dtype != bool and not numpy.isin(table, (0, 1)).all():
        raise invalid(op, "connections", "entries that are True/False or 1/0", table.tolist())
    return table.astype(bool)


class PartialConv2d(Conv2d):
    """A ``Conv2d`` with a fixed channel connection table (LeNet-5's C3, Goodfellow fig. 9.15).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, bias, padding_mode: as ``Conv2d``
            (no ``groups``: the table generalises them).
        connections: (out_channels, in_channels) booleans; ``connections[o, c]`` says whether output
            channel o reads input channel c. ``lenet5_c3_table()`` gives LeCun et al.'s.

    The ``weight`` keeps ``Conv2d``'s dense shape (state dicts read as a ``Conv2d``'s); its masked
    entries are zero and stay zero. ``connection_mask`` is a non-persistent (O, C, 1, 1) buffer.
    ``effective_parameter_count()`` counts the parameters that can be non-zero.

    Shape:
        As ``Conv2d``.

    Examples:
        >>> import convstack as cs
        >>> c3 = cs.nn.PartialConv2d(6, 16, 5, lenet5_c3_table())
        >>> c3(cs.randn(1, 6, 14, 14)).shape, c3.effective_parameter_count()
        ((1, 16, 10, 10), 1516)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, connections, stride=1, padding=0,
                 dilation=1, bias: bool = True, padding_mode: str = "zeros", dtype=None):
        Module.__init__(self)
        valid_channels = all(isinstance(c, int) and not isinstance(c, bool) and c > 0
                             for c in (in_channels, out_channels))
        table = _connection_table(connections, in_channels, out_channels) if valid_channels else None
        self.connections = table
        mask = None if table is None else table.astype(numpy.float64)[:, :, None, None]  # cast below
        self.register_buffer("connection_mask", mask, persistent=False)
        self._build(in_channels, out_channels, kernel_size, stride, padding, 0, 1, bias, dilation, padding_mode,
                    dtype)
        self.connection_mask.data = self.connection_mask.data.astype(self.weight.dtype)

    def reset_parameters(self, generator=None) -> None:
        """``Conv2d``'s default initialisation, then the unconnected weights set to zero."""
        super().reset_parameters(generator)
        self.weight.data *= self.connection_mask.data
        self.weight._bump_version("PartialConv2d.reset_parameters")

    def effective_parameter_count(self) -> int:
        """Weights that are connected plus the biases: ``sum(connections) * prod(kernel_size) + out_channels``."""
        bias = 0 if self.bias is None else self.out_channels
        return int(self.connections.sum()) * math.prod(self.kernel_size) + bias

    def forward(self, input):
        return F.conv2d(self._pad(input), self.weight * self.connection_mask, self.bias, self.stride,
                        self._conv_padding, self.dilation, 1)

    def get_config(self) -> dict:
        config = super().get_config()
        del config["groups"]
        config["connections"] = self.connections.tolist()
        return config

    def extra_repr(self) -> str:
        return super().extra_repr() + f", connections={int(self.connections.sum())}/{self.connections.size}"
