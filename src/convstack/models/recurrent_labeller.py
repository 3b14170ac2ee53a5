"""A recurrent convolutional network for pixel labelling (Goodfellow, Bengio & Courville 2016,
"Deep Learning", section 9.6 and figure 9.17; after Pinheiro & Collobert 2014, "Recurrent
convolutional neural networks for scene labeling").

The same three convolutions are applied for a fixed number of steps, each step refining the
previous step's label map:

    H(1) = relu(U * X)                          Y(1) = softmax(V * H(1))
    H(t) = relu(U * X + W * Y(t-1))             Y(t) = softmax(V * H(t))    t = 2 .. steps

U (image -> hidden maps), V (hidden -> class scores) and W (label map -> hidden) are
convolutions with "same" padding, shared across steps; the softmax is over the classes at
each pixel. The model returns the last step's logits ``V * H(steps)``, ready for per-pixel
cross-entropy; ``forward_steps`` returns every step's, to put a loss on each.
"""

from __future__ import annotations

import convstack.nn.functional as F
from convstack import nn
from convstack.nn.functional._utils import invalid


class RecurrentLabeller(nn.Module):
    """Figure 9.17's recurrent labeller with convolutions ``U``, ``V``, ``W``; see ``recurrent_labeller``."""

    def __init__(self, num_classes: int = 2, in_channels: int = 3, input_size: int = 32, hidden: int = 32,
                 steps: int = 3, kernel_size: int = 3):
        super().__init__()
        for argument, value in (("num_classes", num_classes), ("in_channels", in_channels),
                                ("input_size", input_size), ("hidden", hidden), ("steps", steps)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise invalid("recurrent_labeller", argument, "a positive integer", value)
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise invalid("recurrent_labeller", "kernel_size", "an odd positive integer (same padding)", kernel_size)
        padding = kernel_size // 2
        self.steps = steps
        self.U = nn.Conv2d(in_channels, hidden, kernel_size, padding=padding)
        self.V = nn.Conv2d(hidden, num_classes, kernel_size, padding=padding)
        # No bias on W: U already adds one to the same sum.
        self.W = nn.Conv2d(num_classes, hidden, kernel_size, padding=padding, bias=False)

    def forward_steps(self, x) -> list:
        """Every step's logits, ``[V * H(1), ..., V * H(steps)]``, each (N, num_classes, H, W)."""
        drive = self.U(x)  # (N, hidden, H, W): U * X, the same at every step
        logits = []
        for step in range(self.steps):
            pre = drive if step == 0 else drive + self.W(F.softmax(logits[-1], dim=1))
            logits.append(self.V(F.relu(pre)))
        return logits

    def forward(self, x):
        return self.forward_steps(x)[-1]  # (N, num_classes, H, W)


def recurrent_labeller(num_classes: int = 2, in_channels: int = 3, input_size: int = 32, hidden: int = 32,
                       steps: int = 3, kernel_size: int = 3) -> RecurrentLabeller:
    """Goodfellow et al.'s figure 9.17 recurrent convolutional labeller: per-pixel logits.

    Args:
        num_classes: classes per pixel.
        in_channels: image channels.
        input_size: image side; convolutions keep the size, so any side works (only checked).
        hidden: maps of the hidden representation H.
        steps: how many times U, V, W are applied (1: a plain two-layer convolutional labeller).
        kernel_size: odd kernel size of U, V and W.

    Shape:
        input (N, in_channels, H, W) -> output (N, num_classes, H, W).

    Examples:
        >>> import convstack as cs
        >>> model = recurrent_labeller(num_classes=3, in_channels=1, input_size=16, hidden=8, steps=2)
        >>> model(cs.randn(2, 1, 16, 16)).shape, len(model.forward_steps(cs.randn(2, 1, 16, 16)))
        ((2, 3, 16, 16), 2)
    """
    return RecurrentLabeller(num_classes=num_classes, in_channels=in_channels, input_size=input_size, hidden=hidden,
                             steps=steps, kernel_size=kernel_size)
