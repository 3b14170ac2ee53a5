"""Adaptive pooling layers: average and max pooling to a fixed output size, in 1, 2 and 3 dimensions.

Output position i along a dimension of input size S and output size O pools input positions
``[floor(i * S / O), ceil((i + 1) * S / O))``, as PyTorch; ``repr`` prints ``output_size`` as written.
"""

from __future__ import annotations

from convstack.nn import functional as F
from convstack.nn.modules._args import ArgumentCheck, Configurable, as_written
from convstack.nn.modules.module import Module, check_spatial_input


def _check_output_size(check: ArgumentCheck, n: int, output_size):
    """``output_size`` as an n-tuple of positive ints or None (None keeps that input size)."""
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * n
    if len(sizes) == 1:
        sizes = sizes * n
    valid = len(sizes) == n and all(
        s is None or (isinstance(s, int) and not isinstance(s, bool) and s >= 1) for s in sizes
    )
    if not valid:
        check.fail("output_size", f"a positive integer or a tuple of {n} positive integers or None", output_size)
    return sizes


class _AdaptivePoolNd(Configurable, Module):
    """Pooling to a fixed output size: window ``i`` spans ``[floor(i * in / out), ceil((i + 1) * in / out))``."""

    _spatial_dims: int

    def __init__(self, output_size):
        super().__init__()
        check = ArgumentCheck(type(self).__name__)
        self.output_size = _check_output_size(check, self._spatial_dims, output_size)
        check.done()
        self._written_size = as_written(output_size)

    def _check_input(self, input) -> None:
        """Rank N+2 (or N+1 unbatched), run by ``Module.__call__``."""
        check_spatial_input(input, self._spatial_dims)

    def get_config(self) -> dict:
        return {"output_size": self._written_size}

    def extra_repr(self) -> str:
        return f"output_size={self._written_size}"


class AdaptiveAvgPool1d(_AdaptivePoolNd):
    """Mean-pool ``(N, C, L)`` to ``(N, C, output_size)`` whatever ``L`` is.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.AdaptiveAvgPool1d(4)(cs.randn(1, 2, 10)).shape
        (1, 2, 4)
    """

    _spatial_dims = 1

    def forward(self, input):
        return F.adaptive_avg_pool1d(input, self.output_size)


class AdaptiveAvgPool2d(_AdaptivePoolNd):
    """Mean-pool ``(N, C, H, W)`` to ``(N, C, *output_size)``; ``(1, 1)`` is global average pooling.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.AdaptiveAvgPool2d((1, 1))(cs.randn(2, 8, 7, 5)).shape
        (2, 8, 1, 1)
    """

    _spatial_dims = 2

    def forward(self, input):
        return F.adaptive_avg_pool2d(input, self.output_size)


class AdaptiveAvgPool3d(_AdaptivePoolNd):
    """Mean-pool ``(N, C, D, H, W)`` to ``(N, C, *output_size)``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.AdaptiveAvgPool3d(1)(cs.randn(1, 2, 3, 4, 5)).shape
        (1, 2, 1, 1, 1)
    """

    _spatial_dims = 3

    def forward(self, input):
        return F.adaptive_avg_pool3d(input, self.output_size)


class _AdaptiveMaxPoolNd(_AdaptivePoolNd):
    """Max over adaptive windows; ``return_indices`` also returns each maximum's flat position in its plane."""

    def __init__(self, output_size, return_indices: bool = False):
        Module.__init__(self)
        check = ArgumentCheck(type(self).__name__)
        self.output_size = _check_output_size(check, self._spatial_dims, output_size)
        self.return_indices = check.boolean("return_indices", return_indices)
        check.done()
        self._written_size = as_written(output_size)

    def get_config(self) -> dict:
        return {"output_size": self._written_size, "return_indices": self.return_indices}


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """Max-pool ``(N, C, L)`` to ``(N, C, output_size)`` whatever ``L`` is.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.AdaptiveMaxPool1d(4)(cs.randn(1, 2, 10)).shape
        (1, 2, 4)
    """

    _spatial_dims = 1

    def forward(self, input):
        return F.adaptive_max_pool1d(input, self.output_size, self.return_indices)


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """Max-pool ``(N, C, H, W)`` to ``(N, C, *output_size)``; ``return_indices`` also returns argmax positions.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.AdaptiveMaxPool2d(2)(cs.randn(1, 3, 7, 7)).shape
        (1, 3, 2, 2)
    """

    _spatial_dims = 2

    def forward(self, input):
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """Max-pool ``(N, C, D, H, W)`` to ``(N, C, *output_size)``.

    Examples:
        >>> import convstack as cs
        >>> cs.nn.AdaptiveMaxPool3d((1, 2, 2))(cs.randn(1, 2, 3, 4, 5)).shape
        (1, 2, 1, 2, 2)
    """

    _spatial_dims = 3

    def forward(self, input):
        return F.adaptive_max_pool3d(input, self.output_size, self.return_indices)
