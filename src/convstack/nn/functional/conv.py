"""Convolution and transposed convolution over any number of spatial dimensions.

One ``ConvNd`` and one ``ConvTransposeNd`` serve 1-D, 2-D and 3-D; ``conv1d`` ...
``conv_transpose3d`` only name the number of spatial dimensions. Convolution here is
cross-correlation, as in every deep-learning framework. The arithmetic lives in
``convstack.nn.kernels``: the kernel tier in use (``tiers``: compiled or the NumPy
reference) holds the convolution algorithms and the policy that picks one per pass and
shape (``registry``; see docs/convolution_algorithms.md). A transposed convolution is the
adjoint of a convolution and goes through the same policy: its forward is the
convolution's backward-data, its input gradient the convolution's forward, its weight
gradient the convolution's weight gradient with the roles of input and gradient swapped.
"""

from __future__ import annotations

from convstack.autograd import Function, is_grad_enabled
from convstack.backend import get_array_module
from convstack.nn.functional._utils import check_rank, invalid, ntuple, shape_context
from convstack.nn.kernels import tiers
from convstack.nn.kernels.geometry import ConvGeometry
from convstack.tensor import as_tensor


def _spatial_sum(grad):
    """The bias gradient: ``grad`` (N, C, *S) summed over everything but the channels."""
    return grad.sum(axis=(0,) + tuple(range(2, grad.ndim)))


class ConvNd(Function):
    """Cross-correlation of (N, C, *S) with (O, C / groups, *K), plus an optional bias (O,).

    Each pass runs the algorithm the tier's policy chooses for its shape. For the weight
    gradient the policy keeps the input, or what the chosen algorithm's training forward
    kept (im2col's columns when they are small).
    """

    def forward(self, x, weight, bias=None, *, stride, padding, dilation, groups, relu=False):
        wants = [need and is_grad_enabled() for need in self.needs_input_grad]
        self.unbatched = x.ndim == weight.ndim - 1
        if self.unbatched:
            x = x[None]  # (1, C, *S)
        self.geometry = geometry = ConvGeometry.of(x, weight, stride, padding, dilation, groups)
        self.policy = policy = tiers.tier_for(x, weight).convolution
        if relu:  # inference only (``convstack.nn.fusion``): the ReLU applied as the output is written
            if any(wants):
                raise RuntimeError("a convolution fused with its ReLU records no gradient: run it under no_grad()")
            out = policy.forward_relu(x, weight, bias, geometry)
            return out[0] if self.unbatched else out
        if wants[1]:
            out, self.x = policy.forward_for_training(x, weight, bias, geometry)  # the input or what was kept
        else:
            out, self.x = policy.forward(x, weight, bias, geometry), None
        self.weight = weight if wants[0] else None
        return out[0] if self.unbatched else out

    def backward(self, grad):
        if self.unbatched:
            grad = grad[None]  # (1, O, *O)
        needs = self.needs_input_grad
        grad_input = grad_weight = None
        if needs[0]:
            grad_input = self.policy.backward_data(grad, self.weight, self.geometry)
            grad_input = grad_input[0] if self.unbatched else grad_input
        if needs[1]:
            grad_weight = self.policy.backward_weight(grad, self.x, self.geometry)
        if len(needs) == 2:
            return grad_input, grad_weight
        return grad_input, grad_weight, _spatial_sum(grad) if needs[2] else None


def transposed_geometry(x_shape, weight_shape, stride, padding, output_padding, dilation, groups, dtype):
    """The convolution a transposed convolution is the adjoint of, and the zero slabs to append to its result.

    Returns ``(geometry, tail)``: ``geometry`` maps the transposed output (N, C_out, *S_out)
    to the input's (N, C_in, *S) shape; ``tail`` per dimension is how many trailing output
    positions it leaves out. Those are reached by no kernel tap (output_padding at least the
    stride, allowed when smaller than the dilation) and are zero.
    """
    kernel = weight_shape[2:]
    pads, sizes, tail = [], [], []
    for size, k, s, p, d, extra in zip(x_shape[2:], kernel, stride, padding, dilation, output_padding):
        out = (size - 1) * s - 2 * p + d * (k - 1) + extra + 1
        after = p - (extra // s) * s  # the right padding that makes the convolution's output exactly ``size``
        pads.append((p, max(after, 0)))
        sizes.append(out + min(after, 0))
        tail.append(-min(after, 0))
    out_channels = weight_shape[1] * groups
    geometry = ConvGeometry((x_shape[0], out_channels) + tuple(sizes), tuple(weight_shape), tuple(stride),
                            tuple(pads), tuple(dilation), groups, dtype.name)
    return geometry, tuple(tail)


def _append_zeros(array, tail):
    """``array`` (N, C, *S) with ``tail[i]`` zero positions appended along spatial dimension i."""
    if not any(tail):
        return array
    xp = get_array_module(array)
    spatial = array.ndim - len(tail)
    out = xp.zeros(array.shape[:spatial] + tuple(n + t for n, t in zip(array.shape[spatial:], tail)), array.dtype)
    out[(Ellipsis,) + tuple(slice(0, n) for n in array.shape[spatial:])] = array
    return out


def _drop_tail(array, tail):
    """``array`` without the ``tail`` positions ``_append_zeros`` added (a view)."""
    if not any(tail):
        return array
    spatial = array.ndim - len(tail)
    return array[(Ellipsis,) + tuple(slice(0, n - t) for n, t in zip(array.shape[spatial:], tail))]


class ConvTransposeNd(Function):
    """The adjoint of ``ConvNd``: (N, C_in, *S) with weight (C_in, C_out / groups, *K) -> (N, C_out, *S_out)."""

    def forward(self, x, weight, bias=None, *, stride, padding, output_padding, dilation, groups):
        wants = [need and is_grad_enabled() for need in self.needs_input_grad]
        self.unbatched = x.ndim == weight.ndim - 1
        if self.unbatched:
            x = x[None]  # (1, C_in, *S)
        self.geometry, self.tail = transposed_geometry(
            x.shape, weight.shape, stride, padding, output_padding, dilation, groups, x.dtype)
        self.policy = policy = tiers.tier_for(x, weight).convolution
        try:
            out = _append_zeros(policy.backward_data(x, weight, self.geometry), self.tail)  # (N, C_out, *S_out)
        except MemoryError as error:  # the message names the convolution's buffer: say whose adjoint it is
            dims = weight.ndim - 2
            raise MemoryError(f"conv_transpose{dims}d, the adjoint of a conv{dims}d: {error}") from None
        if bias is not None:
            out += bias.reshape((-1,) + (1,) * (out.ndim - 2))
        self.x = x if wants[1] else None
        self.weight = weight if wants[0] else None
        return out[0] if self.unbatched else out

    def backward(self, grad):
        if self.unbatched:
            grad = grad[None]  # (1, C_out, *S_out)
        needs = self.needs_input_grad
        inner = get_array_module(grad).ascontiguousarray(_drop_tail(grad, self.tail))  # the convolution's input
        grad_input = grad_weight = None
        if needs[0]:
            grad_input = self.policy.forward(inner, self.weight, None, self.geometry)
            grad_input = grad_input[0] if self.unbatched else grad_input
        if needs[1]:  # the convolution's weight gradient, its output gradient being this op's input
            grad_weight = self.policy.backward_weight(self.x, inner, self.geometry)
        if len(needs) == 2:
            return grad_input, grad_weight
        return grad_input, grad_weight, _spatial_sum(grad) if needs[2] else None


# ----------------------------------------------------------------------------- argument checks
def _check_common(op, dims, input, weight, bias, stride, dilation, groups, transposed):
    """Check what convolution and its transpose share; return (stride, dilation, kernel, context)."""
    context = shape_context(input=input.shape, weight=weight.shape)
    check_rank(op, input.shape, dims)
    layout = (
        "(in_channels, out_channels / groups, *kernel)"
        if transposed
        else "(out_channels, in_channels / groups, *kernel)"
    )
    if weight.ndim != dims + 2:
        raise invalid(op, "weight", f"a {dims + 2}-D weight {layout}", tuple(weight.shape), context)
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise invalid(op, "groups", "a positive integer", groups, context)
    channels = input.shape[-dims - 1]
    if channels % groups:
        raise invalid(op, "groups", f"a divisor of the input's {channels} channels", groups, context)
    if transposed:
        if weight.shape[0] != channels:
            raise invalid(
                op, "weight", f"weight.shape[0] equal to the input's {channels} channels", weight.shape[0], context
            )
        out_channels = weight.shape[1] * groups
    else:
        out_channels = weight.shape[0]
        if out_channels % groups:
            raise invalid(op, "groups", f"a divisor of the weight's {out_channels} out_channels", groups, context)
        if weight.shape[1] * groups != channels:
            expected = f"weight.shape[1] == in_channels / groups = {channels} / {groups}"
            raise invalid(op, "weight", expected, weight.shape[1], context)
    kernel = tuple(weight.shape[2:])
    if any(k < 1 for k in kernel):
        raise invalid(op, "weight", "a kernel of positive sizes", kernel, context)
    if weight.dtype != input.dtype:
        raise invalid(op, "weight", f"the input's dtype {input.dtype}", str(weight.dtype), context)
    if bias is not None and (tuple(bias.shape) != (out_channels,) or bias.dtype != input.dtype):
        expected = f"a {input.dtype} bias of shape ({out_channels},)"
        raise invalid(op, "bias", expected, f"{bias.dtype} of shape {tuple(bias.shape)}", context)
    stride = ntuple(stride, dims, op, "stride", context)
    dilation = ntuple(dilation, dims, op, "dilation", context)
    return stride, dilation, kernel, context


def _conv_padding(op, padding, stride, dilation, kernel, context):
    """``padding`` (int, tuple, 'valid' or 'same') as (before, after) pairs."""
    dims = len(kernel)
    if padding == "valid":
        return ((0, 0),) * dims
    if padding == "same":
        if any(s != 1 for s in stride):
            raise invalid(op, "padding", "'same' only with stride 1", padding, f"stride {stride}, {context}")
        # PyTorch's rule: total dilation * (k - 1), the odd one out on the right.
        totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
        return tuple((total // 2, total - total // 2) for total in totals)
    if isinstance(padding, str):
        raise invalid(op, "padding", "an integer, a tuple of integers, 'valid' or 'same'", padding, context)
    return tuple((p, p) for p in ntuple(padding, dims, op, "padding", context, minimum=0))


def _conv(op, dims, input, weight, bias, stride, padding, dilation, groups, relu=False):
    input, weight = as_tensor(input), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    stride, dilation, kernel, context = _check_common(op, dims, input, weight, bias, stride, dilation, groups, False)
    pads = _conv_padding(op, padding, stride, dilation, kernel, context)
    padded_sizes = tuple(size + b + a for size, (b, a) in zip(input.shape[-dims:], pads))
    dilated = tuple(d * (k - 1) + 1 for d, k in zip(dilation, kernel))
    if any(span > size for span, size in zip(dilated, padded_sizes)):
        expected = f"a dilated kernel size dilation * (kernel - 1) + 1 no larger than the padded input {padded_sizes}"
        raise invalid(op, "weight", expected, dilated, context)
    tensors = (input, weight) if bias is None else (input, weight, bias)
    return ConvNd.apply(*tensors, stride=stride, padding=pads, dilation=dilation, groups=groups, relu=relu)


def _conv_transpose(op, dims, input, weight, bias, stride, padding, output_padding, groups, dilation):
    input, weight = as_tensor(input), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    stride, dilation, kernel, context = _check_common(op, dims, input, weight, bias, stride, dilation, groups, True)
    received_padding, received_output_padding = padding, output_padding
    padding = ntuple(padding, dims, op, "padding", context, minimum=0)
    output_padding = ntuple(output_padding, dims, op, "output_padding", context, minimum=0)
    if any(extra >= s and extra >= d for extra, s, d in zip(output_padding, stride, dilation)):
        expected = f"values smaller than the stride {stride} or the dilation {dilation}"
        raise invalid(op, "output_padding", expected, received_output_padding, context)
    out_sizes = tuple(
        (size - 1) * s - 2 * p + d * (k - 1) + extra + 1
        for size, k, s, p, d, extra in zip(input.shape[-dims:], kernel, stride, padding, dilation, output_padding)
    )
    if any(size < 1 for size in out_sizes):
        expected = "a padding that leaves a positive output size (in - 1) * stride - 2 * padding + dilation * (k - 1) "
        raise invalid(op, "padding", expected + f"+ output_padding + 1, here {out_sizes}", received_padding, context)
    tensors = (input, weight) if bias is None else (input, weight, bias)
    options = dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    return ConvTransposeNd.apply(*tensors, **options)


# ----------------------------------------------------------------------------- public functions
# One docstring per family, filled in below for 1-D (L), 2-D (H, W) and 3-D (D, H, W).
_CONV_DOC = """{dims}-D cross-correlation of ``input`` with ``weight``, as ``torch.nn.functional.conv{dims}d``.

    Args:
        input: (N, C_in, {spatial}) or unbatched (C_in, {spatial}).
        weight: (C_out, C_in / groups, {kernel}).
        bias: optional (C_out,).
        stride: int or tuple of {dims}; positive.
        padding: int or tuple of {dims} (zeros on both sides), ``'valid'`` (none) or ``'same'``
            (output size = input size; total padding dilation * (k - 1), the odd one on the right;
            stride 1 only).
        dilation: int or tuple of {dims}; spacing between kernel taps.
        groups: splits C_in and C_out into ``groups`` independent convolutions.

    Shape:
        Output (N, C_out, {spatial}) with, per dimension,
        ``out = floor((in + 2 * padding - dilation * (k - 1) - 1) / stride) + 1``
        (the lectures' floor((W + 2P - K) / S) + 1 when dilation is 1).

    Examples:
        >>> x = convstack.randn({x})
        >>> w = convstack.randn({w})
        >>> F.conv{dims}d(x, w, padding=1).shape
        {y}
    """

_CONV_TRANSPOSE_DOC = """{dims}-D transposed convolution, as ``torch.nn.functional.conv_transpose{dims}d``.

    The adjoint (gradient with respect to the input) of ``conv{dims}d`` with the same
    stride, padding, dilation and groups; it upsamples by ``stride``.

    Args:
        input: (N, C_in, {spatial}) or unbatched (C_in, {spatial}).
        weight: (C_in, C_out / groups, {kernel}).
        bias: optional (C_out,).
        stride, padding, dilation, groups: as in the ``conv{dims}d`` this is the adjoint of.
        output_padding: int or tuple of {dims}, added to one side of the output to pick among
            the input sizes that a strided ``conv{dims}d`` maps to the same output size;
            each smaller than the stride or the dilation.

    Shape:
        Output (N, C_out, {spatial}) with, per dimension,
        ``out = (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``.

    Examples:
        >>> x = convstack.randn({xt})
        >>> w = convstack.randn({wt})
        >>> F.conv_transpose{dims}d(x, w, stride=2, padding=1, output_padding=1).shape
        {yt}
    """


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _conv_transpose(
        "conv_transpose1d", 1, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _conv_transpose(
        "conv_transpose2d", 2, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _conv_transpose(
        "conv_transpose3d", 3, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


_DOC_FIELDS = {
    1: dict(
        spatial="L", kernel="kL", x="2, 3, 16", w="4, 3, 3", y="(2, 4, 16)", xt="2, 3, 8", wt="3, 5, 3", yt="(2, 5, 16)"
    ),
    2: dict(
        spatial="H, W",
        kernel="kH, kW",
        x="2, 3, 16, 16",
        w="4, 3, 3, 3",
        y="(2, 4, 16, 16)",
        xt="2, 3, 8, 8",
        wt="3, 5, 3, 3",
        yt="(2, 5, 16, 16)",
    ),
    3: dict(
        spatial="D, H, W",
        kernel="kD, kH, kW",
        x="2, 3, 8, 8, 8",
        w="4, 3, 3, 3, 3",
        y="(2, 4, 8, 8, 8)",
        xt="2, 3, 4, 4, 4",
        wt="3, 5, 3, 3, 3",
        yt="(2, 5, 8, 8, 8)",
    ),
}
conv1d.__doc__ = _CONV_DOC.format(dims=1, **_DOC_FIELDS[1])
conv2d.__doc__ = _CONV_DOC.format(dims=2, **_DOC_FIELDS[2])
conv3d.__doc__ = _CONV_DOC.format(dims=3, **_DOC_FIELDS[3])
conv_transpose1d.__doc__ = _CONV_TRANSPOSE_DOC.format(dims=1, **_DOC_FIELDS[1])
conv_transpose2d.__doc__ = _CONV_TRANSPOSE_DOC.format(dims=2, **_DOC_FIELDS[2])
conv_transpose3d.__doc__ = _CONV_TRANSPOSE_DOC.format(dims=3, **_DOC_FIELDS[3])
