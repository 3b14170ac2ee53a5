"""Resizing (``interpolate`` / ``upsample``): nearest neighbour, (bi/tri)linear and bicubic (2-D), any
number of spatial dims.

Resizing is separable: each spatial dimension is resized on its own. Along one dimension
nearest neighbour is a gather of input indices and linear interpolation a (out, in)
matrix with two non-zeros per row (bicubic: four, ``_cubic.cubic_matrix``). The backward
pass is the adjoint, dimension by dimension: a reshape-sum when nearest upsamples by a
whole factor, otherwise the transposed (one-hot or interpolation) matrix applied with
``tensordot``; no ``add.at``.

Source positions follow PyTorch exactly (``aten/src/ATen/native/UpSample.h``), including
its float32 arithmetic for the nearest indices:
nearest ``src = min(floor(dst * scale), in - 1)``; linear with ``align_corners=True``
``src = dst * (in - 1) / (out - 1)``, with ``align_corners=False``
``src = max((dst + 0.5) * scale - 0.5, 0)``; ``scale`` is ``1 / scale_factor`` when a scale
factor was given (and not recomputed), else ``in / out``.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence

import numpy

from convstack.autograd import Function
from convstack.backend import get_array_module
from convstack.nn.functional._antialias import antialias_matrix
from convstack.nn.functional._cubic import cubic_matrix
from convstack.nn.functional._utils import invalid, shape_context
from convstack.nn.functional.adaptive_pooling import _adaptive_avg_pool, _contract
from convstack.tensor import Tensor, as_tensor

_LINEAR_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}
_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area", "lanczos")


def _scale(in_size: int, out_size: int, scale_factor, dtype):
    """PyTorch's ``compute_scales_value``: ``1 / scale_factor`` if given, else ``in / out``, in ``dtype``."""
    if scale_factor is not None and scale_factor > 0:
        return dtype.type(1.0 / scale_factor)
    return dtype.type(in_size) / dtype.type(out_size)


def nearest_indices(in_size: int, out_size: int, scale_factor, exact: bool):
    """Source index of every output position (host int64 array), as PyTorch's ``nearest_idx``."""
    if not exact and out_size == in_size:
        return numpy.arange(out_size)
    if not exact and out_size == 2 * in_size:
        return numpy.arange(out_size) >> 1
    scale = _scale(in_size, out_size, scale_factor, numpy.dtype(numpy.float32))
    if exact:  # (dst + 0.5) is a double in PyTorch, rounded to float by floorf
        source = (numpy.arange(out_size) + 0.5) * numpy.float64(scale)
    else:
        source = numpy.arange(out_size, dtype=numpy.float32) * scale
    return numpy.minimum(numpy.floor(source.astype(numpy.float32)).astype(numpy.int64), in_size - 1)


def linear_matrix(in_size: int, out_size: int, scale_factor, align_corners: bool, dtype):
    """The (out, in) linear-interpolation matrix (host array), two weights per row, as PyTorch's kernel."""
    dtype = numpy.dtype(dtype)
    matrix = numpy.zeros((out_size, in_size), dtype=dtype)
    rows = numpy.arange(out_size)
    if out_size == in_size:
        matrix[rows, rows] = 1
        return matrix
    if align_corners:
        scale = dtype.type(in_size - 1) / dtype.type(out_size - 1) if out_size > 1 else dtype.type(0)
        source = rows.astype(dtype) * scale
    else:
        scale = _scale(in_size, out_size, scale_factor, dtype)
        source = numpy.maximum(scale * (rows.astype(dtype) + dtype.type(0.5)) - dtype.type(0.5), dtype.type(0))
    index0 = numpy.minimum(numpy.floor(source).astype(numpy.int64), in_size - 1)
    weight1 = numpy.clip(source - index0, 0, 1).astype(dtype)
    index1 = index0 + (index0 < in_size - 1)
    matrix[rows, index0] = 1 - weight1
    matrix[rows, index1] += weight1  # index1 == index0 only at the last input, where weight1 is 0
    return matrix


class Interpolate(Function):
    """Resize the spatial dimensions of (N, C, *S); resizing along different dimensions commutes.

    ``plans`` holds one entry per spatial dimension: ``None`` (unchanged), ``("repeat", r)``
    (nearest upsampling by a whole factor r), ``("gather", indices)`` (other nearest
    resizing) or ``("matrix", M)`` (linear interpolation with an (out, in) matrix).
    Every whole-factor repeat is done at once, as one broadcast copy.
    """

    def forward(self, x, *, plans):
        xp = get_array_module(x)
        self.plans, self.in_sizes = plans, x.shape[2:]
        factors = [plan[1] if plan is not None and plan[0] == "repeat" else 1 for plan in plans]
        if any(f > 1 for f in factors):
            # (N, C, H, W) -> (N, C, H, 1, W, 1) broadcast to (N, C, H, rH, W, rW) -> (N, C, H * rH, W * rW)
            expanded = x.shape[:2] + tuple(v for n in x.shape[2:] for v in (n, 1))
            target = x.shape[:2] + tuple(v for n, f in zip(x.shape[2:], factors) for v in (n, f))
            x = xp.broadcast_to(x.reshape(expanded), target).reshape(
                x.shape[:2] + tuple(n * f for n, f in zip(x.shape[2:], factors)))
        for axis, plan in enumerate(plans, start=2):
            if plan is None or plan[0] == "repeat":
                continue
            kind, value = plan
            if kind == "gather":
                x = xp.take(x, xp.asarray(value), axis=axis)
            else:
                x = _contract(x, xp.asarray(value, dtype=x.dtype), axis)
        return xp.ascontiguousarray(x)

    def backward(self, grad):
        xp = get_array_module(grad)
        factors = [plan[1] if plan is not None and plan[0] == "repeat" else 1 for plan in self.plans]
        if any(f > 1 for f in factors):
            # (N, C, H * rH, W * rW) -> (N, C, H, rH, W, rW), summed over the copies one strided slice at a
            # time (a reduction over the short copy axes is ~15x slower in NumPy)
            pairs = tuple(v for n, f in zip(grad.shape[2:], factors) for v in (n // f, f))
            split = grad.reshape(grad.shape[:2] + pairs)  # (N, C, H, rH, W, rW)
            total = None
            for offset in itertools.product(*(range(f) for f in factors)):
                piece = split[(slice(None), slice(None)) + tuple(v for o in offset for v in (slice(None), o))]
                if total is None:
                    total = piece.copy()
                else:
                    total += piece
            grad = total
        for axis, plan in enumerate(self.plans, start=2):
            if plan is None or plan[0] == "repeat":
                continue
            kind, value = plan
            if kind == "gather":
                in_size = self.in_sizes[axis - 2]
                one_hot = (xp.asarray(value)[:, None] == xp.arange(in_size)[None, :]).astype(grad.dtype)  # (out, in)
                grad = _contract(grad, one_hot.T, axis)
            else:
                grad = _contract(grad, xp.asarray(value, dtype=grad.dtype).T, axis)
        return (xp.ascontiguousarray(grad),)


def _per_dim(op, argument, value, spatial, context, kind):
    """``value`` (a number or a sequence of ``spatial`` numbers) as a tuple, checked positive."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        values = tuple(value)
    else:
        values = (value,) * spatial
    if kind == "int":
        ok = all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in values)
        expected = f"a positive integer or a tuple of {spatial} positive integers"
    else:
        ok = all(isinstance(v, numbers.Real) and not isinstance(v, bool) and v > 0 and math.isfinite(v)
                 for v in values)
        expected = f"a positive number or a tuple of {spatial} positive numbers"
    if len(values) != spatial or not ok:
        raise invalid(op, argument, expected, value, context)
    return tuple(int(v) for v in values) if kind == "int" else tuple(float(v) for v in values)


def interpolate(input, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                recompute_scale_factor=None, antialias: bool = False) -> Tensor:
    """Resize the spatial dimensions of ``input``, as ``torch.nn.functional.interpolate``.

    Args:
        input: (N, C, L), (N, C, H, W) or (N, C, D, H, W) float tensor.
        size: output spatial size (an int or one per dimension); or give ``scale_factor``.
        scale_factor: multiplier of the spatial size (a number or one per dimension).
        mode: ``'nearest'`` (PyTorch's floor rule), ``'nearest-exact'`` (pixel centres),
            ``'linear'`` (3-D input), ``'bilinear'`` (4-D), ``'bicubic'`` (4-D; Keys' cubic
            convolution, a = -0.75: may overshoot the input's range), ``'trilinear'`` (5-D), or
            ``'area'`` (adaptive average pooling), or ``'lanczos'`` (4-D, with ``antialias``: Lanczos-3).
        align_corners: linear and bicubic modes only. True: the corner pixels of input and output are
            aligned (``src = dst * (in - 1) / (out - 1)``); False (default): pixel centres are
            (``src = (dst + 0.5) * in / out - 0.5``), and values at the border are replicated.
        recompute_scale_factor: with ``scale_factor``, compute the sizes first and then
            interpolate from them (``scale = in / out``) rather than from ``1 / scale_factor``.
        antialias: for ``'bilinear'``, ``'bicubic'`` and ``'lanczos'`` on 4-D input: when
            downsampling, average over the whole footprint of each output pixel (the filter
            stretched by the scale, as PIL and PyTorch do; bicubic then uses a = -0.5), see
            ``_antialias``. A dimension whose size does not change is copied, as in PyTorch.

    Shape:
        Output (N, C, *S_out) with ``S_out = size``, or ``floor(S_in * scale_factor)``.

    Examples:
        >>> x = cs.tensor([[[1.0, 2.0]]])
        >>> F.interpolate(x, scale_factor=2)
        tensor([[[1., 1., 2., 2.]]])
        >>> F.interpolate(x, size=3, mode="linear", align_corners=True)
        tensor([[[1. , 1.5, 2. ]]])
    """
    op = "interpolate"
    input = as_tensor(input)
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point input, received dtype {input.dtype}")
    context = shape_context(input=input.shape)
    spatial = input.ndim - 2
    if spatial not in (1, 2, 3):
        raise ValueError(f"{op}: expected a 3-D, 4-D or 5-D input (N, C, *spatial), received a {input.ndim}-D input "
                         f"of shape {input.shape}")
    if mode not in _MODES:
        raise invalid(op, "mode", "one of " + ", ".join(repr(m) for m in _MODES), mode, context)
    linear = mode in ("linear", "bilinear", "trilinear")
    if linear and mode != _LINEAR_MODES[spatial]:
        raise invalid(op, "mode", f"{_LINEAR_MODES[spatial]!r} for a {input.ndim}-D input", mode, context)
    if not isinstance(antialias, bool):
        raise invalid(op, "antialias", "True or False", antialias, context)
    if antialias and (mode not in ("bilinear", "bicubic", "lanczos") or spatial != 2):
        raise invalid(op, "antialias", "False unless mode is 'bilinear', 'bicubic' or 'lanczos' on a 4-D input",
                      antialias, context)
    if mode == "lanczos" and not antialias:
        raise invalid(op, "antialias", "True for mode 'lanczos' (it is an antialiasing filter)", antialias, context)
    if mode == "lanczos" and align_corners:
        raise invalid(op, "align_corners", "None or False for mode 'lanczos'", align_corners, context)
    if mode == "bicubic" and spatial != 2:
        raise invalid(op, "mode", f"one of 'nearest', 'nearest-exact', {_LINEAR_MODES[spatial]!r}, 'area' for a "
                      f"{input.ndim}-D input (bicubic takes 4-D input)", mode, context)
    if align_corners is not None and not (linear or mode in ("bicubic", "lanczos")):
        raise invalid(op, "align_corners", "None unless mode is 'linear', 'bilinear', 'bicubic' or 'trilinear'",
                      align_corners, context)
    if (size is None) == (scale_factor is None):
        raise invalid(op, "size", "exactly one of size and scale_factor",
                      f"size={size!r}, scale_factor={scale_factor!r}", context)
    in_sizes = input.shape[2:]
    if size is not None:
        out_sizes, scales = _per_dim(op, "size", size, spatial, context, "int"), (None,) * spatial
    else:
        scales = _per_dim(op, "scale_factor", scale_factor, spatial, context, "float")
        out_sizes = tuple(math.floor(n * s) for n, s in zip(in_sizes, scales))
        if any(o < 1 for o in out_sizes):
            raise invalid(op, "scale_factor", f"a factor giving output sizes >= 1 (here {out_sizes})", scale_factor,
                          context)
        if recompute_scale_factor:
            scales = (None,) * spatial
    if mode == "area":
        return _adaptive_avg_pool(op, spatial, input, out_sizes)
    plans = []
    for in_size, out_size, scale in zip(in_sizes, out_sizes, scales):
        if antialias:
            plans.append(None if in_size == out_size else
                         ("matrix", antialias_matrix(in_size, out_size, scale, bool(align_corners), mode, input.dtype)))
            continue
        if linear:
            plans.append(None if in_size == out_size else
                         ("matrix", linear_matrix(in_size, out_size, scale, bool(align_corners), input.dtype)))
            continue
        if mode == "bicubic":  # PyTorch copies when linear modes keep a size, but not for bicubic with a scale
            plans.append(("matrix", cubic_matrix(in_size, out_size, scale, bool(align_corners), input.dtype)))
            continue
        indices = nearest_indices(in_size, out_size, scale, mode == "nearest-exact")
        if out_size == in_size and (indices == numpy.arange(out_size)).all():
            plans.append(None)
        elif out_size % in_size == 0 and (indices == numpy.arange(out_size) // (out_size // in_size)).all():
            plans.append(("repeat", out_size // in_size))
        else:
            plans.append(("gather", indices))
    return Interpolate.apply(input, plans=tuple(plans))


def upsample(input, size=None, scale_factor=None, mode: str = "nearest", align_corners=None) -> Tensor:
    """``interpolate`` under its older PyTorch name (``torch.nn.functional.upsample``)."""
    return interpolate(input, size, scale_factor, mode, align_corners)
