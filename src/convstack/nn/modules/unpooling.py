"""Max unpooling layers: ``MaxUnpool1d/2d/3d``, the partial inverse of ``MaxPool*d(return_indices=True)``.

Used in encoder-decoder networks (SegNet, Badrinarayanan et al. 2017) and in the deconvnet
visualisation (Zeiler & Fergus 2014): the decoder puts each value back where the encoder's
pooling found its maximum.
"""

from __future__ import annotations

from convstack.nn import functional as F
from convstack.nn.modules._args import ArgumentCheck, Configurable, as_written
from convstack.nn.modules.module import Module, check_spatial_input


class _MaxUnpoolNd(Configurable, Module):
    _spatial_dims: int

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        check = ArgumentCheck(type(self).__name__)
        n = self._spatial_dims
        self.kernel_size = check.ints("kernel_size", kernel_size, n)
        self.stride = self.kernel_size if stride is None else check.ints("stride", stride, n)
        self.padding = check.ints("padding", padding, n, minimum=0)
        check.done()
        written = (kernel_size, kernel_size if stride is None else stride, padding)
        self._written = dict(zip(("kernel_size", "stride", "padding"), map(as_written, written)))

    def _check_input(self, input) -> None:
        """Rank N+2 (or N+1 unbatched), run by ``Module.__call__``."""
        check_spatial_input(input, self._spatial_dims)

    def get_config(self) -> dict:
        return dict(self._written)

    def extra_repr(self) -> str:
        # PyTorch prints the unpooling arguments as the tuples it stores (unlike the pooling ones).
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """Put ``(N, C, L_in)`` values back at their ``MaxPool1d`` positions in zeros of ``(N, C, L_out)``.

    Args:
        kernel_size, stride, padding: those of the ``MaxPool1d`` being inverted (stride defaults to kernel_size).

    Call as ``unpool(input, indices, output_size=None)``; ``output_size`` restores an odd size the
    pooling floored.

    Shape:
        ``L_out = (L_in - 1) * stride - 2 * padding + kernel_size`` unless ``output_size`` says otherwise.

    Examples:
        >>> import convstack as cs
        >>> values, indices = cs.nn.MaxPool1d(2, return_indices=True)(cs.tensor([[[1.0, 4.0, 3.0, 2.0]]]))
        >>> cs.nn.MaxUnpool1d(2)(values, indices)
        tensor([[[0., 4., 3., 0.]]])
    """

    _spatial_dims = 1

    def forward(self, input, indices, output_size=None):
        return F.max_unpool1d(input, indices, self.kernel_size, self.stride, self.padding, output_size)


class MaxUnpool2d(_MaxUnpoolNd):
    """Put ``(N, C, H_in, W_in)`` values back at their ``MaxPool2d`` positions; output size per dim as ``MaxUnpool1d``.

    Examples:
        >>> import convstack as cs
        >>> pool, unpool = cs.nn.MaxPool2d(2, return_indices=True), cs.nn.MaxUnpool2d(2)
        >>> x = cs.randn(1, 3, 5, 5)
        >>> unpool(*pool(x), output_size=x.shape).shape
        (1, 3, 5, 5)
    """

    _spatial_dims = 2

    def forward(self, input, indices, output_size=None):
        return F.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding, output_size)


class MaxUnpool3d(_MaxUnpoolNd):
    """Put ``(N, C, D_in, H_in, W_in)`` values back at their ``MaxPool3d`` positions; sizes as ``MaxUnpool1d``.

    Examples:
        >>> import convstack as cs
        >>> values, indices = cs.nn.MaxPool3d(2, return_indices=True)(cs.randn(1, 2, 4, 4, 4))
        >>> cs.nn.MaxUnpool3d(2)(values, indices).shape
        (1, 2, 4, 4, 4)
    """

    _spatial_dims = 3

    def forward(self, input, indices, output_size=None):
        return F.max_unpool3d(input, indices, self.kernel_size, self.stride, self.padding, output_size)
