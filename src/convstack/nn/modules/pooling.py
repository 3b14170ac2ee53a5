"""Pooling layers: max and average pooling in 1, 2 and 3 spatial dimensions (adaptive pooling: ``adaptive_pooling``).

Arguments are normalised into tuples once, in the constructor; ``repr`` prints
them as PyTorch does (``MaxPool2d(kernel_size=2, stride=2, ...)``).
"""

from __future__ import annotations

from convstack.nn import functional as F
from convstack.nn.functional.pooling import default_stride
from convstack.nn.modules._args import ArgumentCheck, Configurable, as_written
from convstack.nn.modules.module import Module, check_spatial_input


def _check_window(check: ArgumentCheck, n: int, kernel_size, stride, padding, dilation=1):
    """Normalised (kernel_size, stride, padding, dilation); ``stride=None`` (or ``()``) means ``kernel_size``."""
    kernel = check.ints("kernel_size", kernel_size, n)
    stride = kernel if default_stride(stride) else check.ints("stride", stride, n)
    padding_tuple = check.ints("padding", padding, n, minimum=0)
    dilation = check.ints("dilation", dilation, n)
    if kernel and padding_tuple and dilation:
        # Padding beyond half the window would make windows that see only padding.
        if any(2 * p > d * (k - 1) + 1 for p, k, d in zip(padding_tuple, kernel, dilation)):
            check.fail("padding", f"at most half the (dilated) kernel size {kernel}", padding)
    return kernel, stride, padding_tuple, dilation


class _MaxPoolNd(Configurable, Module):
    _spatial_dims: int

    def _check_input(self, input) -> None:
        """Rank N+2 (or N+1 unbatched), run by ``Module.__call__``."""
        check_spatial_input(input, self._spatial_dims)

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__()
        check = ArgumentCheck(type(self).__name__)
        self.kernel_size, self.stride, self.padding, self.dilation = _check_window(
            check, self._spatial_dims, kernel_size, stride, padding, dilation
        )
        self.return_indices = check.boolean("return_indices", return_indices)
        self.ceil_mode = check.boolean("ceil_mode", ceil_mode)
        check.done()
        written = (kernel_size, kernel_size if stride is None else stride, padding, dilation)
        self._written = dict(zip(("kernel_size", "stride", "padding", "dilation"), map(as_written, written)))

    def get_config(self) -> dict:
        return {**self._written, "return_indices": self.return_indices, "ceil_mode": self.ceil_mode}

    def extra_repr(self) -> str:
        written = ", ".join(f"{name}={value}" for name, value in self._written.items())
        return f"{written}, ceil_mode={self.ceil_mode}"


class MaxPool1d(_MaxPoolNd):
    """Max over sliding windows of ``(N, C, L)``.

    Args:
        kernel_size: window size; stride: step (default ``kernel_size``); padding: implicit
        ``-inf`` padding on both sides (at most half the window); dilation: spacing of window
        elements; return_indices: also return the flat argmax positions (for ``MaxUnpool``);
        ceil_mode: round the output size up instead of down.

    Shape:
        ``L_out = floor((L_in + 2 * padding - dilation * (kernel_size - 1) - 1) / stride + 1)``
        (ceil with ``ceil_mode``).

    Examples:
        >>> import convstack as cs
        >>> cs.nn.MaxPool1d(2)(cs.randn(1, 3, 8)).shape
        (1, 3, 4)
    """

    _spatial_dims = 1

    def forward(self, input):
        return F.max_pool1d(input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)


class MaxPool2d(_MaxPoolNd):
    """Max over sliding windows of ``(N, C, H, W)``; args and output size per dim as ``MaxPool1d``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.MaxPool2d(2)(cs.randn(1, 6, 28, 28)).shape
        (1, 6, 14, 14)
    """

    _spatial_dims = 2

    def forward(self, input):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)


class MaxPool3d(_MaxPoolNd):
    """Max over sliding windows of ``(N, C, D, H, W)``; args and output size per dim as ``MaxPool1d``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.MaxPool3d(2)(cs.randn(1, 2, 4, 4, 4)).shape
        (1, 2, 2, 2, 2)
    """

    _spatial_dims = 3

    def forward(self, input):
        return F.max_pool3d(input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)


class _AvgPoolNd(Configurable, Module):
    _spatial_dims: int

    def _check_input(self, input) -> None:
        """Rank N+2 (or N+1 unbatched), run by ``Module.__call__``."""
        check_spatial_input(input, self._spatial_dims)

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None):
        super().__init__()
        check = ArgumentCheck(type(self).__name__)
        self.kernel_size, self.stride, self.padding, _ = _check_window(
            check, self._spatial_dims, kernel_size, stride, padding
        )
        self.ceil_mode = check.boolean("ceil_mode", ceil_mode)
        self.count_include_pad = check.boolean("count_include_pad", count_include_pad)
        self.divisor_override = None if divisor_override is None else check.positive_int(
            "divisor_override", divisor_override
        )
        check.done()
        written = (kernel_size, kernel_size if stride is None else stride, padding)
        self._written = dict(zip(("kernel_size", "stride", "padding"), map(as_written, written)))

    def get_config(self) -> dict:
        config = {**self._written, "ceil_mode": self.ceil_mode, "count_include_pad": self.count_include_pad}
        if self._spatial_dims > 1:  # AvgPool1d has no divisor_override, as in PyTorch
            config["divisor_override"] = self.divisor_override
        return config

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in self._written.items())


class AvgPool1d(_AvgPoolNd):
    """Mean over sliding windows of ``(N, C, L)``.

    ``count_include_pad``: whether zero padding counts in each window's divisor.

    Shape:
        ``L_out = floor((L_in + 2 * padding - kernel_size) / stride + 1)`` (ceil with ``ceil_mode``).

    Examples:
        >>> import convstack as cs
        >>> cs.nn.AvgPool1d(3, stride=2)(cs.randn(1, 2, 9)).shape
        (1, 2, 4)
    """

    _spatial_dims = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)

    def forward(self, input):
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)

    def extra_repr(self) -> str:
        # PyTorch prints AvgPool1d's arguments as the 1-tuples it stores.
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(_AvgPoolNd):
    """Mean over sliding windows of ``(N, C, H, W)``; output size per dim as ``AvgPool1d``.

    ``divisor_override``: divide each window's sum by this instead of the window size.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.AvgPool2d(2)(cs.randn(1, 3, 8, 8)).shape
        (1, 3, 4, 4)
    """

    _spatial_dims = 2

    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)


class AvgPool3d(_AvgPoolNd):
    """Mean over sliding windows of ``(N, C, D, H, W)``; output size per dim as ``AvgPool1d``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.AvgPool3d(2)(cs.randn(1, 1, 4, 4, 4)).shape
        (1, 1, 2, 2, 2)
    """

    _spatial_dims = 3

    def forward(self, input):
        return F.avg_pool3d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)
