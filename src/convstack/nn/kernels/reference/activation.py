"""The rectifier's kernels, forward and backward, as NumPy array code (no autograd inside).

Shapes: any; ``relu_backward`` takes the gradient and the forward's output, of one shape.
"""

from __future__ import annotations

from convstack.backend import get_array_module


def relu_forward(x):
    """``maximum(x, 0)`` (a NaN stays NaN), a new array of ``x``'s shape.

    Against a zero row when ``x`` splits into rows of 256 to 4096 elements: NumPy's maximum
    with a scalar operand runs about 2.4x slower than against a contiguous array; a row of
    zeros broadcast down the rows costs 16 KiB at most.
    """
    xp = get_array_module(x)
    if x.flags.c_contiguous:
        for row in (4096, 1024, 256):
            if x.size % row == 0 and x.size >= row:
                zeros = xp.zeros(row, dtype=x.dtype)
                return xp.maximum(x.reshape(-1, row), zeros).reshape(x.shape)  # (size / row, row)
    return xp.maximum(x, 0)


def relu_inplace(x):
    """``x`` rectified in place (``maximum(x, 0, out=x)``); returns ``x``."""
    get_array_module(x).maximum(x, 0, out=x)
    return x


def relu_backward(grad, out):
    """The gradient through ``out = relu_forward(x)``: ``grad`` where ``out > 0``, else 0."""
    xp = get_array_module(grad)
    mask = xp.greater(out, 0, out=xp.empty(grad.shape, dtype=grad.dtype))  # 1.0 where the unit passed
    mask *= grad  # ~20% faster than grad * bool_mask, which casts the mask inside the multiply
    return mask
