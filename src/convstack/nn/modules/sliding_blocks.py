"""``Unfold`` (im2col) and ``Fold`` (col2im): layers over ``F.unfold`` / ``F.fold``.

Arguments are checked at construction and printed as written, as PyTorch prints them.
"""

from __future__ import annotations

from convstack.nn import functional as F
from convstack.nn.modules._args import ArgumentCheck, Configurable
from convstack.nn.modules.module import Module


def _check_blocks(check: ArgumentCheck, kernel_size, dilation, padding, stride) -> None:
    check.ints("kernel_size", kernel_size, 2)
    check.ints("dilation", dilation, 2)
    check.ints("padding", padding, 2, minimum=0)
    check.ints("stride", stride, 2)


class Unfold(Configurable, Module):
    """Extract sliding blocks of (N, C, H, W) images into columns (N, C * kH * kW, L).

    Args:
        kernel_size: block size; dilation: spacing of a block's elements; padding: implicit
        zeros on both sides; stride: step between blocks (each an int or a pair).

    Shape:
        Input (N, C, H, W) or (C, H, W); output (N, C * kH * kW, L) or (C * kH * kW, L),
        ``L = prod_d floor((S_d + 2 padding_d - dilation_d (kernel_d - 1) - 1) / stride_d + 1)``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.Unfold(kernel_size=(2, 3))(cs.randn(2, 5, 3, 4)).shape
        (2, 30, 4)
    """

    _config_keys = ("kernel_size", "dilation", "padding", "stride")

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        check = ArgumentCheck("Unfold")
        _check_blocks(check, kernel_size, dilation, padding, stride)
        check.done()
        self.kernel_size, self.dilation, self.padding, self.stride = kernel_size, dilation, padding, stride

    def forward(self, input):
        return F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding}, "
                f"stride={self.stride}")


class Fold(Configurable, Module):
    """Sum columns of sliding blocks (N, C * kH * kW, L) back into images (N, C, H, W), overlaps adding up.

    Args:
        output_size: the image size (H, W); the other arguments as for ``Unfold``.

    Shape:
        Input (N, C * kH * kW, L) or (C * kH * kW, L); output (N, C, H, W) or (C, H, W).

    Examples:
        >>> import convstack as cs
        >>> cs.nn.Fold(output_size=(4, 5), kernel_size=2)(cs.randn(1, 12, 12)).shape
        (1, 3, 4, 5)
    """

    _config_keys = ("output_size", "kernel_size", "dilation", "padding", "stride")

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        check = ArgumentCheck("Fold")
        check.ints("output_size", output_size, 2)
        _check_blocks(check, kernel_size, dilation, padding, stride)
        check.done()
        self.output_size = output_size
        self.kernel_size, self.dilation, self.padding, self.stride = kernel_size, dilation, padding, stride

    def forward(self, input):
        return F.fold(input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")
