"""ONNX resizing in every opset's form: ``Upsample`` (opsets 7-8: scales as an attribute; 9: as an
input) and ``Resize`` (10: scales; 11: roi, scales or sizes, coordinate transformations, nearest
modes, cubic; 13: optional inputs; 18: axes, keep_aspect_ratio_policy; 19: half_pixel_symmetric).

Resizing is separable, and each spatial axis is resampled as onnxruntime does it, in float32:
output position ``x`` maps to the source coordinate ``x_original`` by the coordinate
transformation (``half_pixel``: ``(x + 0.5) / scale - 0.5``; ``asymmetric``: ``x / scale``;
``align_corners``: ``x * (in - 1) / (out - 1)`` ...); then ``nearest`` picks one source index
(by ``nearest_mode``; before opset 11 the index is truncated when upsampling and rounded up
when downsampling), ``linear`` weighs the two neighbours of the clamped coordinate, ``cubic``
the four around it with Keys' kernel of coefficient ``cubic_coeff_a`` (Keys 1981; indices
outside the input clamp to the edge, or drop out and the weights renormalise with
``exclude_outside``). ``scale`` is the given scale, or ``out / in`` when sizes are given.

Each axis becomes a plan for ``Interpolate`` (the op behind ``F.interpolate``): a whole-factor
repeat, a gather of indices or an (out, in) weight matrix; its backward is the adjoint, so
gradients flow through an imported resize.
"""

from __future__ import annotations

import numpy

from convstack.io.onnx_import_tensor import configured, ints
from convstack.nn.functional.upsample import Interpolate

_F32 = numpy.float32
_TRANSFORMS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
               "tf_half_pixel_for_nn")
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _source(transform: str, out_len: int, in_len: int, scale) -> numpy.ndarray:
    """``x_original`` of every output position along one axis (float32, as onnxruntime computes it)."""
    x, scale = numpy.arange(out_len, dtype=_F32), _F32(scale)
    half = _F32(0.5)
    if transform == "asymmetric":
        return x / scale
    if transform == "tf_half_pixel_for_nn":
        return (x + half) / scale
    if transform == "align_corners":
        return numpy.zeros(out_len, _F32) if out_len == 1 else x * _F32(in_len - 1) / _F32(out_len - 1)
    if transform == "pytorch_half_pixel" and out_len <= 1:
        return numpy.zeros(out_len, _F32)
    source = (x + half) / scale - half
    if transform == "half_pixel_symmetric":
        adjustment = _F32(out_len) / (scale * _F32(in_len))
        source = source + _F32(in_len) / _F32(2) * (_F32(1) - adjustment)
    return source


def _nearest(source: numpy.ndarray, mode: str, downsampling: bool) -> numpy.ndarray:
    """The source index each coordinate rounds to, by ONNX's ``nearest_mode`` (``simple``: before opset 11)."""
    if mode == "simple":
        return numpy.ceil(source) if downsampling else numpy.trunc(source)
    if mode == "floor":
        return numpy.floor(source)
    if mode == "ceil":
        return numpy.ceil(source)
    away = numpy.sign(source) * numpy.floor(numpy.abs(source) + _F32(0.5))  # C's round(): halves away from zero
    if mode == "round_prefer_ceil":
        return away
    return numpy.where(source == numpy.trunc(source) + _F32(0.5), numpy.floor(source), away)


def _cubic_weights(distance: numpy.ndarray, a: float) -> numpy.ndarray:
    """Keys' cubic convolution kernel at ``|distance|`` (< 2): the weight of a neighbour that far."""
    d = numpy.abs(distance)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return numpy.where(d <= 1, near, numpy.where(d < 2, far, 0.0))


class Rule:
    """How one ``Upsample``/``Resize`` node maps output positions to input positions."""

    def __init__(self, mode: str, transform: str, nearest_mode: str, cubic_a: float = -0.75,
                 exclude_outside: bool = False):
        self.mode, self.transform, self.nearest_mode = mode, transform, nearest_mode
        self.cubic_a, self.exclude_outside = cubic_a, exclude_outside

    def plan(self, in_len: int, out_len: int, scale, dtype):
        """The ``Interpolate`` plan of one axis: None, ("repeat", r), ("gather", indices) or ("matrix", M), M of
        ``dtype`` (the input's, as the exported graph's ``MatMul`` needs)."""
        source = _source(self.transform, out_len, in_len, scale)
        if self.mode == "nearest":
            index = numpy.clip(_nearest(source, self.nearest_mode, scale < 1), 0, in_len - 1).astype(numpy.int64)
            if out_len == in_len and (index == numpy.arange(in_len)).all():
                return None
            if out_len % in_len == 0 and (index == numpy.arange(out_len) // (out_len // in_len)).all():
                return ("repeat", out_len // in_len)
            return ("gather", index)
        matrix = numpy.zeros((out_len, in_len), dtype=numpy.float64)
        rows = numpy.arange(out_len)
        if self.mode == "linear":
            source = numpy.clip(source, 0, in_len - 1)
            low = numpy.minimum(numpy.trunc(source).astype(numpy.int64), in_len - 1)
            high = numpy.minimum(low + 1, in_len - 1)
            weight = source.astype(numpy.float64) - low
            matrix[rows, low] += 1 - weight  # one entry per row in each statement: += cannot collide
            matrix[rows, high] += weight
        else:
            base = numpy.floor(source).astype(numpy.int64)
            fraction = source.astype(numpy.float64) - base
            taps = base[:, None] + numpy.arange(-1, 3)[None, :]  # (out, 4)
            weights = _cubic_weights(fraction[:, None] - numpy.arange(-1, 3)[None, :], self.cubic_a)
            if self.exclude_outside:
                weights = numpy.where((taps >= 0) & (taps < in_len), weights, 0.0)
                weights /= weights.sum(axis=1, keepdims=True)
            taps = numpy.clip(taps, 0, in_len - 1)
            for tap in range(4):  # taps clamped to an edge add up
                matrix[rows, taps[:, tap]] += weights[:, tap]
        if out_len == in_len and numpy.allclose(matrix, numpy.eye(in_len), rtol=0, atol=1e-7):
            return None
        return ("matrix", matrix.astype(dtype))


def _rule(node, ctx, attributes) -> Rule:
    mode = attributes.get("mode", "nearest")
    old = node.op_type == "Upsample" or ctx.opset < 11
    if mode not in (("nearest", "linear") if old else ("nearest", "linear", "cubic")):
        raise ctx.fail(node, f"mode {mode!r} is not supported (nearest, linear{'' if old else ' and cubic'} are)")
    if old:
        return Rule(mode, "asymmetric", "simple")
    transform = attributes.get("coordinate_transformation_mode", "half_pixel")
    if transform not in _TRANSFORMS:
        raise ctx.fail(node, f"coordinate_transformation_mode {transform!r} is not supported "
                             f"({', '.join(_TRANSFORMS)} are)")
    nearest_mode = attributes.get("nearest_mode", "round_prefer_floor")
    if nearest_mode not in _NEAREST_MODES:
        raise ctx.fail(node, f"nearest_mode {nearest_mode!r} is not supported")
    if attributes.get("antialias", 0):
        raise ctx.fail(node, "antialias=1 is not supported")
    return Rule(mode, transform, nearest_mode, attributes.get("cubic_coeff_a", -0.75),
                bool(attributes.get("exclude_outside", 0)))


def _resize(node, ctx):
    attributes = ctx.attributes(node)
    rule = _rule(node, ctx, attributes)
    if node.op_type == "Upsample" or ctx.opset < 11:
        roles = {1: "scales"}
        preset = {1: attributes.get("scales")} if ctx.opset < 9 else None
        scale_at, size_at, axes, policy = 1, None, None, "stretch"
    else:
        roles, preset = {1: "roi", 2: "scales", 3: "sizes"}, None
        scale_at, size_at = 2, 3
        axes = attributes.get("axes")
        policy = attributes.get("keep_aspect_ratio_policy", "stretch")
        if policy not in ("stretch", "not_larger", "not_smaller"):
            raise ctx.fail(node, f"keep_aspect_ratio_policy {policy!r} is not supported")

    def make(values):
        scales = values.get(scale_at)
        scales = None if scales is None or numpy.asarray(scales).size == 0 else [float(s) for s in numpy.ravel(scales)]
        sizes = None if size_at is None or values.get(size_at) is None else ints(values[size_at])
        sizes = sizes or None
        if (scales is None) == (sizes is None):
            raise ctx.fail(node, "exactly one of scales and sizes must be given")
        if scales is not None and any(s <= 0 for s in scales):
            raise ctx.fail(node, f"scales {scales} must be positive")
        plans = {}

        def resize(x):
            key = (x.shape, x.dtype)
            if key not in plans:
                plans[key] = _plans(node, ctx, rule, x, scales, sizes, axes, policy)
            return Interpolate.apply(x, plans=plans[key])

        return resize

    return [configured(node, ctx, roles, make, preset, mode=rule.mode, coordinate_transformation_mode=rule.transform,
                       nearest_mode=rule.nearest_mode)]


def _plans(node, ctx, rule: Rule, x, scales, sizes, axes, policy) -> tuple:
    """Each spatial axis's plan for the input ``x``; the batch and channel axes must keep their size."""
    shape = x.shape
    rank = len(shape)
    chosen = list(range(rank)) if axes is None else [a % rank for a in axes]
    given = scales if scales is not None else sizes
    if len(given) != len(chosen):
        raise ctx.fail(node, f"{len(given)} {'scales' if scales is not None else 'sizes'} for the axes {chosen} "
                             f"of an input of shape {shape}")
    axis_scales, out = [1.0] * rank, list(shape)
    if scales is not None:
        for axis, scale in zip(chosen, scales):
            axis_scales[axis], out[axis] = scale, int(_F32(shape[axis]) * _F32(scale))
    elif policy == "stretch":
        for axis, size in zip(chosen, sizes):
            out[axis], axis_scales[axis] = size, float(_F32(size) / _F32(shape[axis]))
    else:  # one scale for every axis, the largest that fits (not_larger) or the smallest that covers (not_smaller)
        ratios = [_F32(size) / _F32(shape[axis]) for axis, size in zip(chosen, sizes)]
        scale = min(ratios) if policy == "not_larger" else max(ratios)
        for axis in chosen:
            axis_scales[axis], out[axis] = float(scale), int(numpy.floor(_F32(shape[axis]) * scale + _F32(0.5)))
    if rank < 3 or out[0] != shape[0] or out[1] != shape[1]:
        raise ctx.fail(node, f"resizing {shape} to {tuple(out)}: only the spatial axes (after batch and channels) "
                             "can be resized")
    return tuple(rule.plan(shape[axis], out[axis], axis_scales[axis], x.dtype) for axis in range(2, rank))


RESIZE_BUILDERS = {
    "Upsample": _resize,
    "Resize": _resize,
}
