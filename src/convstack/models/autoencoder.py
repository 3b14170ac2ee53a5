"""A convolutional autoencoder (Masci, Meier, Ciresan & Schmidhuber 2011, "Stacked
convolutional auto-encoders for hierarchical feature extraction"; Goodfellow, Bengio &
Courville 2016, chapter 14): an encoder of stride-2 3x3 convolutions that halves the side
at each stage, and a mirror-image decoder of stride-2 transposed convolutions ending in a
sigmoid, so that it reconstructs images with values in [0, 1].

    input (N, C, 28, 28) -> conv 3x3/2, 32 -> ReLU -> conv 3x3/2, 64 -> ReLU   code (N, 64, 7, 7)
    -> convT 3x3/2, 32 -> ReLU -> convT 3x3/2, C -> sigmoid                   (N, C, 28, 28)
"""

from __future__ import annotations

from convstack import nn
from convstack.nn.functional._utils import invalid


class ConvAutoencoder(nn.Module):
    """Encoder (``encoder``) and decoder (``decoder``), both ``Sequential``; see ``conv_autoencoder``."""

    def __init__(self, in_channels: int = 1, input_size: int = 28, widths: tuple = (32, 64)):
        super().__init__()
        for argument, value in (("in_channels", in_channels), ("input_size", input_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise invalid("conv_autoencoder", argument, "a positive integer", value)
        widths = tuple(widths)
        if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise invalid("conv_autoencoder", "widths", "a non-empty tuple of positive integers", widths)
        # Sides along the encoder: s_out = floor((s_in + 2 - 3) / 2) + 1. Each transposed
        # convolution gives (s - 1) * 2 - 2 + 3 + output_padding, so output_padding = 1 for an
        # even side and 0 for an odd one restores the encoder's side exactly.
        sides = [input_size]
        for _ in widths:
            sides.append((sides[-1] - 1) // 2 + 1)
        encoder, channels = [], in_channels
        for width in widths:
            encoder += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            channels = width
        decoder = []
        targets = list(zip([in_channels, *widths[:-1]], sides[:-1]))[::-1]  # (maps, side) to restore
        for stage, (maps, side) in enumerate(targets):
            decoder.append(nn.ConvTranspose2d(channels, maps, 3, stride=2, padding=1, output_padding=1 - side % 2))
            decoder.append(nn.Sigmoid() if stage == len(targets) - 1 else nn.ReLU(inplace=True))
            channels = maps
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)

    def forward(self, x):
        return self.decoder(self.encoder(x))  # (N, C, H, W) in [0, 1]


def conv_autoencoder(num_classes: int | None = None, in_channels: int = 1, input_size: int = 28,
                     widths: tuple = (32, 64)) -> ConvAutoencoder:
    """A convolutional autoencoder (Masci et al. 2011) with a sigmoid output in [0, 1].

    Train it with ``MSELoss`` (or binary cross-entropy) between output and input;
    ``model.encoder(x)`` gives the code.

    Args:
        num_classes: accepted for the command line's uniform call and ignored (an autoencoder
            reconstructs its input; it has no classes).
        in_channels: image channels (the output has as many).
        input_size: image side; the decoder's output padding is chosen so that the output has
            exactly this side (odd sides included).
        widths: maps of each encoder stage (each halves the side, rounding up).

    Shape:
        input (N, in_channels, input_size, input_size) -> output of the same shape;
        code (N, widths[-1], s, s) with s = input_size halved ``len(widths)`` times, rounding up.

    Examples:
        >>> import convstack as cs
        >>> model = conv_autoencoder(in_channels=1, input_size=28)
        >>> model.encoder(cs.randn(2, 1, 28, 28)).shape, model(cs.randn(2, 1, 28, 28)).shape
        ((2, 64, 7, 7), (2, 1, 28, 28))
    """
    return ConvAutoencoder(in_channels=in_channels, input_size=input_size, widths=widths)
