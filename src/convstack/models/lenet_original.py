"""LeNet-5 as published (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning
applied to document recognition", section II.B and appendix A):

    input 1x32x32 (28x28 images are zero-padded by 2, as the paper centres its digits)
    C1 conv 5x5, 6 maps                  -> f   6x28x28      156 parameters
    S2 subsampling 2x2, per-map a, b     -> f   6x14x14       12
    C3 conv 5x5, 16 maps, partial table  -> f   16x10x10   1,516   (Table I: 60 of 96 map pairs)
    S4 subsampling 2x2, per-map a, b     -> f   16x5x5        32
    C5 conv 5x5, 120 maps                -> f   120x1x1   48,120
    F6 fc 120 -> 84                      -> f   84        10,164
    output fc 84 -> classes                     10           850

f is the paper's squashing function, the scaled hyperbolic tangent f(a) = 1.7159 tanh(2a/3)
(appendix A: f(1) = 1, f(-1) = -1). A subsampling unit adds its four inputs, multiplies the
sum by a trainable coefficient and adds a trainable bias (one of each per map).

What differs from the paper, exactly:

* the output layer is a linear layer with bias (850 parameters for 10 classes) producing
  logits for cross-entropy, instead of the 84 -> 10 Euclidean RBF units with fixed weights
  (stylised 7x12 bitmaps of the characters) trained with the paper's MAP criterion;
* training uses whatever optimiser the caller picks, not the stochastic diagonal
  Levenberg-Marquardt method of appendix C;
* the subsampling coefficients start at 1/4 (so that S2 starts as an average) and their biases
  at 0; every other weight and bias is drawn, as appendix A says, uniformly in
  +-2.4 / F_in, F_in being the unit's number of inputs (for C3, only the connected maps count).

60,850 trainable parameters for 10 classes (``effective_parameter_count()``; the paper counts
"60,000": its RBF layer's 840 fixed weights are not trained). ``nn.PartialConv2d`` stores C3's
weight as a dense 16x6x5x5 tensor whose 900 unconnected entries stay zero, so
``sum(p.numel() for p in model.parameters())`` reads 61,750.
"""

from __future__ import annotations

import numpy

import convstack as cs
import convstack.nn.functional as F
from convstack import nn
from convstack.autograd import no_grad
from convstack.nn.functional._utils import invalid

#: The side the paper's input field has.
PAPER_INPUT = 32


class ScaledTanh(nn.Module):
    """LeCun's squashing function ``1.7159 * tanh(2x / 3)`` (1998, appendix A)."""

    def forward(self, x):
        return F.tanh(x * (2.0 / 3.0)) * 1.7159


class Subsampling(nn.Module):
    """LeNet's S layers: the sum of each 2x2 block, times a trainable coefficient, plus a trainable bias, per map.

    Shape:
        input (N, C, H, W) -> output (N, C, floor(H / 2), floor(W / 2)).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.weight = nn.Parameter(cs.full((channels,), 0.25))  # starts as a 2x2 average
        self.bias = nn.Parameter(cs.zeros(channels))

    def forward(self, x):
        total = F.avg_pool2d(x, 2) * 4.0  # (N, C, H / 2, W / 2): the sum of each 2x2 block
        return total * self.weight.reshape(1, -1, 1, 1) + self.bias.reshape(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.channels}"


class LeNet5Original(nn.Module):
    """The 1998 LeNet-5 with layers named after the paper (``C1`` ... ``F6``, ``output``); see ``lenet5_original``."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 32):
        super().__init__()
        for argument, value in (("num_classes", num_classes), ("in_channels", in_channels),
                                ("input_size", input_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise invalid("lenet5_original", argument, "a positive integer", value)
        # Smaller images are zero-padded to the paper's 32x32 field (28 -> 32: 2 on each side).
        padding = max(0, (PAPER_INPUT - input_size + 1) // 2)
        side = input_size + 2 * padding
        side = ((side - 4) // 2 - 4) // 2 - 4  # C1, S2, C3, S4, C5
        self.C1 = nn.Conv2d(in_channels, 6, 5, padding=padding)
        self.S2 = Subsampling(6)
        self.C3 = nn.PartialConv2d(6, 16, 5, nn.lenet5_c3_table())
        self.S4 = Subsampling(16)
        self.C5 = nn.Conv2d(16, 120, 5)
        self.F6 = nn.Linear(120 * side * side, 84)
        self.output = nn.Linear(84, num_classes)
        self.squash = ScaledTanh()
        self._lecun_init()

    def _lecun_init(self) -> None:
        """Weights and biases uniform in +-2.4 / F_in (appendix A); F_in counts connected inputs only."""
        for layer in (self.C1, self.C3, self.C5, self.F6, self.output):
            weight = layer.weight  # (out, in, ...)
            connected = numpy.ones((weight.shape[0], weight.shape[1]))  # (out, in)
            if isinstance(layer, nn.PartialConv2d):
                connected = layer.connections.astype(numpy.float64)
            taps = weight.numel() // (weight.shape[0] * weight.shape[1])  # kernel positions
            bound = 2.4 / (connected.sum(axis=1) * taps)  # (out,): one F_in per output map
            shape = (-1,) + (1,) * (weight.ndim - 1)
            draw = cs.default_generator().uniform(-1.0, 1.0, weight.shape) * connected.reshape(
                connected.shape + (1,) * (weight.ndim - 2)) * bound.reshape(shape)
            with no_grad():
                weight.data[...] = draw.astype(weight.dtype)
                layer.bias.data[...] = (cs.default_generator().uniform(-1.0, 1.0, bound.shape) * bound).astype(
                    layer.bias.dtype)

    def effective_parameter_count(self) -> int:
        """Trainable parameters that can be non-zero: 60,850 for 10 classes (C3 counts its 60 connections only)."""
        return sum(layer.effective_parameter_count() if isinstance(layer, nn.PartialConv2d)
                   else sum(p.numel() for p in layer.parameters())
                   for layer in (self.C1, self.S2, self.C3, self.S4, self.C5, self.F6, self.output))

    def forward(self, x):
        f = self.squash
        x = f(self.S2(f(self.C1(x))))  # (N, 6, 14, 14)
        x = f(self.S4(f(self.C3(x))))  # (N, 16, 5, 5)
        x = f(self.C5(x))  # (N, 120, 1, 1) at 32x32
        x = f(self.F6(x.flatten(1)))  # (N, 84)
        return self.output(x)  # (N, num_classes)


def lenet5_original(num_classes: int = 10, in_channels: int = 1, input_size: int = 32) -> LeNet5Original:
    """LeNet-5 as in LeCun et al. 1998 (C3 connection table, scaled tanh, trainable subsampling).

    See the module docstring for exactly what differs from the paper (a linear output layer in
    place of the RBF layer, LeCun's uniform initialisation, the caller's optimiser).

    Args:
        num_classes: outputs of the last layer.
        in_channels: image channels (1 in the paper).
        input_size: image side; below 32 the image is zero-padded to 32 by C1's padding (28 for
            MNIST/Fashion-MNIST: padding 2), above it C5's maps are larger than 1x1 and F6 takes
            them all.

    Shape:
        input (N, in_channels, input_size, input_size) -> output (N, num_classes).
    """
    return LeNet5Original(num_classes=num_classes, in_channels=in_channels, input_size=input_size)
