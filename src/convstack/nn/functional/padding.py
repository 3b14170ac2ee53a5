"""``pad``: constant, reflect, replicate and circular padding of the trailing dimensions.

Padding amounts follow PyTorch: the tuple names the last dimension first,
``(last_left, last_right, second_last_left, second_last_right, ...)``. A negative amount
crops: reflect, replicate and constant padding take their borders from the uncropped input,
circular padding wraps the cropped one, as PyTorch does.
"""

from __future__ import annotations

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._utils import invalid
from convstack.tensor import Tensor, as_tensor

_MODES = ("constant", "reflect", "replicate", "circular")


def _slab(x, axis: int, start: int, stop: int):
    """``x[..., start:stop, ...]`` with the slice on ``axis``."""
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, stop)
    return x[tuple(index)]


def _flip(x, axis: int):
    index = [slice(None)] * x.ndim
    index[axis] = slice(None, None, -1)
    return x[tuple(index)]


def _border(x, axis: int, before: int, after: int, mode: str):
    """The slabs added before and after ``x`` along ``axis`` (``before, after >= 0``)."""
    n = x.shape[axis]
    if mode == "reflect":  # mirror without repeating the edge: inputs before..1, then n-2..n-1-after
        return _flip(_slab(x, axis, 1, before + 1), axis), _flip(_slab(x, axis, n - 1 - after, n - 1), axis)
    if mode == "replicate":
        xp = get_array_module(x)
        shape = list(x.shape)
        shape[axis] = before
        head = xp.broadcast_to(_slab(x, axis, 0, 1), tuple(shape))
        shape[axis] = after
        return head, xp.broadcast_to(_slab(x, axis, n - 1, n), tuple(shape))
    return _slab(x, axis, n - before, n), _slab(x, axis, 0, after)  # circular: wrap around


def _border_adjoint(grad_core, grad_before, grad_after, axis: int, mode: str):
    """Add the gradients of the border slabs onto the input slices they were copied from (in place)."""
    n = grad_core.shape[axis]
    before, after = grad_before.shape[axis], grad_after.shape[axis]
    if mode == "reflect":
        _slab(grad_core, axis, 1, before + 1)[...] += _flip(grad_before, axis)
        _slab(grad_core, axis, n - 1 - after, n - 1)[...] += _flip(grad_after, axis)
    elif mode == "replicate":
        _slab(grad_core, axis, 0, 1)[...] += grad_before.sum(axis=axis, keepdims=True)
        _slab(grad_core, axis, n - 1, n)[...] += grad_after.sum(axis=axis, keepdims=True)
    else:  # circular
        _slab(grad_core, axis, n - before, n)[...] += grad_before
        _slab(grad_core, axis, 0, after)[...] += grad_after


def _crop(shape, pads) -> tuple:
    """The slices that drop ``-before`` / ``-after`` cells where an amount is negative."""
    return tuple(slice(-min(b, 0), n + min(a, 0)) for n, (b, a) in zip(shape, pads))


def _uncrop(grad, shape, pads):
    """Adjoint of the crop: ``grad`` placed in zeros of ``shape`` (cropped cells get no gradient)."""
    if all(b >= 0 and a >= 0 for b, a in pads):
        return grad
    full = get_array_module(grad).zeros(shape, dtype=grad.dtype)
    full[_crop(shape, pads)] = grad
    return full


class Pad(Function):
    """``pads`` is one ``(before, after)`` pair per dimension of the input, in dimension order.

    Negative amounts crop: after padding for reflect/replicate/constant, before padding for
    circular (the wrapped cells come from the cropped tensor), as PyTorch does.
    """

    def forward(self, x, *, pads, mode, value):
        xp = get_array_module(x)
        grow = tuple((max(b, 0), max(a, 0)) for b, a in pads)
        self.pads, self.grow, self.mode, self.crop_first = pads, grow, mode, mode == "circular"
        self.x_shape = x.shape
        if self.crop_first:
            x = x[_crop(x.shape, pads)]
        self.core_shape = x.shape
        if mode == "constant":
            out = xp.full(tuple(n + b + a for n, (b, a) in zip(x.shape, grow)), value, dtype=x.dtype)
            out[tuple(slice(b, b + n) for n, (b, _) in zip(x.shape, grow))] = x
        else:
            out = x
            for axis, (before, after) in enumerate(grow):
                if before or after:
                    head, tail = _border(out, axis, before, after, mode)
                    out = xp.concatenate((head, out, tail), axis=axis)
        self.grown_shape = out.shape
        return out if self.crop_first else out[_crop(out.shape, pads)]

    def backward(self, grad):
        xp = get_array_module(grad)
        if not self.crop_first:
            grad = _uncrop(grad, self.grown_shape, self.pads)
        if self.mode == "constant":
            grad = grad[tuple(slice(b, b + n) for n, (b, _) in zip(self.core_shape, self.grow))]
        else:
            for axis in reversed(range(grad.ndim)):
                before, after = self.grow[axis]
                if not (before or after):
                    continue
                size = self.core_shape[axis]
                border_before, core, border_after = xp.split(grad, (before, before + size), axis=axis)
                core = core.copy()
                _border_adjoint(core, border_before, border_after, axis, self.mode)
                grad = core
        return (_uncrop(grad, self.x_shape, self.pads) if self.crop_first else grad,)


def _normalise_pad(pad, input: Tensor, mode: str) -> tuple:
    """PyTorch's last-dimension-first tuple as one (before, after) pair per input dimension."""
    context = f"input shape {input.shape}"
    if (
        not isinstance(pad, (tuple, list))
        or len(pad) % 2
        or not all(isinstance(p, int) and not isinstance(p, bool) for p in pad)
    ):
        raise invalid("pad", "pad", "a tuple of an even number of integers", pad, context)
    if len(pad) // 2 > input.ndim:
        raise invalid("pad", "pad", f"at most {2 * input.ndim} values (two per dimension)", pad, context)
    padded = len(pad) // 2
    pairs = [(0, 0)] * (input.ndim - padded) + [(pad[2 * k], pad[2 * k + 1]) for k in reversed(range(padded))]
    for axis, (size, (before, after)) in enumerate(zip(input.shape, pairs)):
        if size + before + after < 0:
            raise invalid("pad", "pad", f"amounts that leave dimension {axis} (size {size}) a size >= 0", pad, context)
        # circular padding wraps the cropped tensor; the other modes read the uncropped input
        source = size + min(before, 0) + min(after, 0) if mode == "circular" else size
        if mode == "constant" or (before <= 0 and after <= 0):
            continue
        if mode == "reflect" and max(before, after) >= source:
            raise invalid("pad", "pad", f"reflect padding smaller than the size {source} of dimension {axis}", pad,
                          context)
        if mode == "replicate" and source == 0:
            raise invalid("pad", "pad", f"a non-empty dimension {axis} to replicate", pad, context)
        if mode == "circular" and max(before, after) > source:
            raise invalid("pad", "pad", f"circular padding at most the size {source} of dimension {axis}", pad,
                          context)
    return tuple(pairs)


def pad(input, pad, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad (or, with negative amounts, crop) the trailing dimensions of ``input``.

    Args:
        input: a tensor of any shape.
        pad: ``(left, right)`` for the last dimension, then ``(top, bottom)`` for the one
            before, and so on: ``2 * k`` integers pad the last ``k`` dimensions.
        mode: ``'constant'`` (fill with ``value``), ``'reflect'`` (mirror, edge not repeated;
            padding must be smaller than the size), ``'replicate'`` (repeat the edge) or
            ``'circular'`` (wrap around; padding at most the size). Any number of trailing
            dimensions may be padded in every mode.
        value: the fill value of constant padding.

    Shape:
        - Input: (*, D_k, ..., D_1). Output: (*, D_k', ..., D_1') with
          D_i' = D_i + pad[2 (i - 1)] + pad[2 (i - 1) + 1].

    Examples:
        >>> F.pad(cs.ones(1, 1, 2, 2), (1, 1, 0, 0)).shape
        (1, 1, 2, 4)
        >>> F.pad(cs.tensor([[[0.0, 1.0, 2.0]]]), (2, 1), mode="reflect")
        tensor([[[2., 1., 0., 1., 2., 1.]]])
    """
    input = as_tensor(input)
    if mode not in _MODES:
        raise invalid("pad", "mode", "'constant', 'reflect', 'replicate' or 'circular'", mode)
    pairs = _normalise_pad(pad, input, mode)
    return Pad.apply(input, pads=pairs, mode=mode, value=value)
