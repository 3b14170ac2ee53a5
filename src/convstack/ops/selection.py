"""Selecting and placing elements by index or mask, with gradients: gather, scatter, scatter_add,
index_select, masked_fill.

Semantics and argument order are PyTorch's. ``gather`` reads ``out[i][j] = input[index[i][j]][j]``
along ``dim`` (here dim 0); ``scatter`` / ``scatter_add`` are its adjoints on the write side.
Each backward is one of the others: the gradient of a gather is a scatter-add of the
gradient, the gradient of a scatter's source is a gather. Scatter-adds go through one
``bincount`` over flat positions (repeated indices accumulate; no Python loop, no ``add.at``).

The public functions here take tensors (anything with ``.data``, ``.shape`` and ``.ndim``),
check their arguments once and apply the ``Function``; ``Tensor``'s methods and the free
functions of ``convstack`` call them.
"""

from __future__ import annotations

import math
import numbers

import numpy

from convstack.autograd import Function
from convstack.backend import get_array_module


def invalid(op: str, argument: str, expected: str, received, context: str = "") -> ValueError:
    """``nn.functional._utils.invalid``, imported when an error is raised (``convstack.nn`` imports this module's
    users, so a top-level import would be circular)."""
    from convstack.nn.functional._utils import invalid as make_error

    return make_error(op, argument, expected, received, context)


def axis(op: str, dim, ndim: int) -> int:
    """``dim`` as a non-negative axis of an ``ndim``-D tensor (a 0-D tensor has the one axis 0, as PyTorch)."""
    rank = max(ndim, 1)
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not -rank <= dim < rank:
        raise IndexError(f"{op}: dimension out of range (expected to be in range of [{-rank}, {rank - 1}], "
                         f"but got {dim})")
    return int(dim) % rank


def index_array(op: str, index, argument: str = "index"):
    """The integer array behind ``index`` (a tensor, an array or a list)."""
    array = index.data if hasattr(index, "grad_fn") else index
    if not hasattr(array, "dtype"):
        array = numpy.asarray(array)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected an integer tensor as `{argument}`, received dtype {array.dtype}")
    return array


def _check_bounds(op: str, index, size: int, dim: int) -> None:
    bad = (index < 0) | (index >= size)
    if bad.any():
        value = int(index[bad].reshape(-1)[0])
        raise invalid(op, "index", f"indices in [0, {size}) along dimension {dim}", value)


def flat_positions(index, dim: int, shape: tuple):
    """For each element of ``index``: its flat C-order position in an array of ``shape`` with the coordinate
    along ``dim`` replaced by the index value (the positions ``gather`` reads and ``scatter`` writes)."""
    xp = get_array_module(index)
    strides = [math.prod(shape[d + 1 :]) for d in range(len(shape))]
    positions = index.astype(xp.int64) * strides[dim]
    for d, size in enumerate(index.shape):
        if d != dim:
            view = [1] * index.ndim
            view[d] = size
            positions = positions + xp.arange(size, dtype=xp.int64).reshape(view) * strides[d]
    return positions


def scatter_add_flat(values, positions, shape):
    """An array of ``shape`` with ``values`` summed in at flat ``positions`` (repeats accumulate): one bincount."""
    xp = get_array_module(values)
    total = xp.bincount(positions.reshape(-1), weights=values.reshape(-1), minlength=math.prod(shape))
    return total.astype(values.dtype, copy=False).reshape(shape)


def _leading_block(array, shape):
    """``array[:shape[0], :shape[1], ...]``: the part of a (possibly larger) ``src`` that an index addresses."""
    return array[tuple(slice(0, s) for s in shape)]


class Gather(Function):
    def forward(self, a, *, dim, index):
        xp = get_array_module(a)
        self.shape, self.positions = a.shape, flat_positions(index, dim, a.shape)
        return xp.take(a.reshape(-1), self.positions)

    def backward(self, grad):
        return (scatter_add_flat(grad, self.positions, self.shape),)


class Scatter(Function):
    """``out = input`` with ``src[index's block]`` written at the index positions (repeats: the last write wins)."""

    def forward(self, a, src, *, dim, index):
        self.positions = flat_positions(index, dim, a.shape)
        self.src_shape, self.index_shape = src.shape, index.shape
        out = a.copy()
        out.reshape(-1)[self.positions.reshape(-1)] = _leading_block(src, index.shape).reshape(-1)
        return out

    def backward(self, grad):
        xp = get_array_module(grad)
        grad_input = grad_src = None
        if self.needs_input_grad[0]:
            grad_input = grad.copy()
            grad_input.reshape(-1)[self.positions.reshape(-1)] = 0  # overwritten elements
        if self.needs_input_grad[1]:
            grad_src = _gradient_of_source(xp, grad, self.positions, self.src_shape, self.index_shape)
        return grad_input, grad_src


class ScatterValue(Function):
    """``out = input`` with the number ``value`` written at the index positions."""

    def forward(self, a, *, dim, index, value):
        self.positions = flat_positions(index, dim, a.shape)
        out = a.copy()
        out.reshape(-1)[self.positions.reshape(-1)] = value
        return out

    def backward(self, grad):
        grad_input = grad.copy()
        grad_input.reshape(-1)[self.positions.reshape(-1)] = 0
        return (grad_input,)


class ScatterAdd(Function):
    def forward(self, a, src, *, dim, index):
        self.positions = flat_positions(index, dim, a.shape)
        self.src_shape, self.index_shape = src.shape, index.shape
        block = _leading_block(src, index.shape)
        return a + scatter_add_flat(block.astype(a.dtype, copy=False), self.positions, a.shape)

    def backward(self, grad):
        xp = get_array_module(grad)
        grad_src = None
        if self.needs_input_grad[1]:
            grad_src = _gradient_of_source(xp, grad, self.positions, self.src_shape, self.index_shape)
        return grad, grad_src


def _gradient_of_source(xp, grad, positions, src_shape, index_shape):
    """The gradient of the ``src`` of a scatter: ``gather(grad, dim, index)`` on the block the index addresses."""
    out = xp.zeros(src_shape, dtype=grad.dtype)
    out[tuple(slice(0, s) for s in index_shape)] = xp.take(grad.reshape(-1), positions)
    return out


class IndexSelect(Function):
    def forward(self, a, *, dim, index):
        xp = get_array_module(a)
        self.shape, self.dim, self.index = a.shape, dim, index
        return xp.take(a, index, axis=dim)

    def backward(self, grad):
        xp = get_array_module(grad)
        view = [1] * grad.ndim
        view[self.dim] = self.index.size
        spread = xp.broadcast_to(self.index.reshape(view), grad.shape)  # the index, along dim, for every element
        return (scatter_add_flat(grad, flat_positions(spread, self.dim, self.shape), self.shape),)


class MaskedFill(Function):
    """``value`` where ``mask`` (broadcast to the input), the input elsewhere; ``value`` is a 0-D tensor."""

    def forward(self, a, value, *, mask):
        xp = get_array_module(a)
        self.mask = mask
        return xp.where(mask, value.astype(a.dtype), a)

    def backward(self, grad):
        xp = get_array_module(grad)
        grad_input = grad * ~self.mask if self.needs_input_grad[0] else None
        grad_value = xp.asarray((grad * self.mask).sum(), dtype=grad.dtype) if self.needs_input_grad[1] else None
        return grad_input, grad_value


# ------------------------------------------------------------------------------------- checks and entry points
def _gather_geometry(op: str, input, dim, index, src=None):
    """Check ``dim`` and ``index`` (and ``src``) as PyTorch's gather/scatter do; return (axis, index array)."""
    if input.ndim == 0:
        raise ValueError(f"{op}: expected an input with at least 1 dimension, received a 0-D tensor")
    dim = axis(op, dim, input.ndim)
    index = index_array(op, index)
    if index.ndim != input.ndim:
        raise invalid(op, "index", f"a {input.ndim}-D tensor (as many dimensions as the input)",
                      f"shape {tuple(index.shape)}", f"input shape {input.shape}")
    too_big = [d for d in range(index.ndim) if d != dim and index.shape[d] > input.shape[d]]
    if src is not None:
        too_big += [d for d in range(index.ndim) if index.shape[d] > src.shape[d]]
    if too_big:
        where = f"input shape {input.shape}" + ("" if src is None else f", src shape {src.shape}")
        raise invalid(op, "index", "sizes no larger than the input's (except along dim) and the src's",
                      f"shape {tuple(index.shape)}", where)
    _check_bounds(op, index, input.shape[dim], dim)
    return dim, index


def gather(input, dim, index):
    """``out[i][j][k] = input[i][index[i][j][k]][k]`` for dim 1 (and likewise for any dim), as ``torch.gather``."""
    dim, index = _gather_geometry("gather", input, dim, index)
    return Gather.apply(input, dim=dim, index=index)


def scatter(input, dim, index, src=None, value=None):
    """``input`` with ``src`` (or the number ``value``) written at the positions ``index`` names along ``dim``."""
    if (src is None) == (value is None):
        raise invalid("scatter", "src", "exactly one of src (a tensor) and value (a number)", "both" if src is not None
                      else "neither")
    if value is None and isinstance(src, numbers.Number):
        src, value = None, src
    if src is not None:
        if src.ndim != input.ndim:
            raise invalid("scatter", "src", f"a {input.ndim}-D tensor", f"shape {src.shape}")
        dim, index = _gather_geometry("scatter", input, dim, index, src)
        if src.dtype != input.dtype:
            raise TypeError(f"scatter: expected src of the input's dtype {input.dtype}, received {src.dtype}")
        return Scatter.apply(input, src, dim=dim, index=index)
    dim, index = _gather_geometry("scatter", input, dim, index)
    return ScatterValue.apply(input, dim=dim, index=index, value=value)


def scatter_add(input, dim, index, src):
    """``input`` with ``src`` added at the positions ``index`` names along ``dim``; repeated positions accumulate."""
    if src.ndim != input.ndim:
        raise invalid("scatter_add", "src", f"a {input.ndim}-D tensor", f"shape {src.shape}")
    dim, index = _gather_geometry("scatter_add", input, dim, index, src)
    if src.dtype != input.dtype:
        raise TypeError(f"scatter_add: expected src of the input's dtype {input.dtype}, received {src.dtype}")
    return ScatterAdd.apply(input, src, dim=dim, index=index)


def index_select(input, dim, index):
    """The slices ``index`` (a 1-D integer tensor) along ``dim``, in that order, repeats allowed."""
    op = "index_select"
    dim = axis(op, dim, input.ndim)
    index = index_array(op, index)
    if index.ndim > 1:
        raise invalid(op, "index", "a 0-D or 1-D tensor", f"shape {tuple(index.shape)}")
    _check_bounds(op, index, input.shape[dim] if input.ndim else 1, dim)
    return IndexSelect.apply(input, dim=dim, index=index.reshape(-1))


def masked_fill(input, mask, value, value_tensor):
    """``value`` where the boolean ``mask`` (broadcastable to the input) is True; ``value_tensor`` is ``value``
    as a 0-D tensor (which may require grad)."""
    op = "masked_fill"
    mask = mask.data if hasattr(mask, "grad_fn") else mask
    xp = get_array_module(input.data)
    mask = xp.asarray(mask)
    if mask.dtype != bool:
        raise TypeError(f"{op}: expected a boolean mask, received dtype {mask.dtype}")
    try:
        broadcast = tuple(numpy.broadcast_shapes(mask.shape, input.shape))  # shape arithmetic only
    except ValueError:
        broadcast = None
    if broadcast != input.shape:
        raise invalid(op, "mask", f"a boolean tensor that broadcasts to the input's shape {input.shape}",
                      f"shape {tuple(mask.shape)}")
    if value_tensor.ndim != 0:
        raise invalid(op, "value", "a number or a 0-D tensor", f"a tensor of shape {value_tensor.shape}")
    return MaskedFill.apply(input, value_tensor, mask=mask)
