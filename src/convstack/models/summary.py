"""A model summary in the manner of torchinfo: per layer its input and output shapes, parameters and
multiply-accumulates, and in total the parameters, the mult-adds and an estimate of the memory.

One forward pass of a zero batch of one sample (eval mode, no graph) with a forward hook on
every leaf layer gives one row per *call*, in call order; a layer called twice (a shared ReLU,
a recurrent step) has a row per call, its parameters counted on the first only.

Multiply-accumulates are counted by the layer type's registered counter (``register_macs``),
found along the class's MRO:

* convolution: ``weight.numel() x output positions`` (the kernel of every output channel at
  every output position), + ``out_channels x positions`` for the bias; transposed convolution:
  ``weight.numel() x input positions``; unshared (locally connected, tiled) convolution: the
  same count as a convolution of that shape;
* linear: ``in x out`` per row, + ``out`` for the bias;
* any other layer with parameters (batch normalisation ...): its parameter count, torchinfo's
  rule (inference's per-element scale and shift would add one per output element: 2.4 M for
  ResNet-18, which torchinfo's 1.81 G does not include); without parameters (activations,
  pooling, reshapes): 0.

The memory lines follow torchinfo: "Forward/backward pass size" adds up the outputs of the
layers with parameters, twice (each output and its gradient) — an estimate of what training
keeps per sample, not a measurement.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy

from convstack.autograd import no_grad
from convstack.backend import check_allocation
from convstack.nn.modules.conv import _ConvNd
from convstack.nn.modules.linear import Linear
from convstack.nn.modules.local import _UnsharedConvNd
from convstack.tensor import Tensor


class LayerRow(NamedTuple):
    """One call of a leaf layer: its name, type, shapes (without the batch), parameters and mult-adds."""

    name: str
    type: str
    input_shape: tuple
    output_shape: tuple
    params: int
    macs: int
    output_bytes: int


#: Layer type -> ``count(module, input_shape, output_shape) -> int`` (shapes with the batch dimension).
MAC_COUNTERS: dict = {}


def register_macs(*types):
    """Register a multiply-accumulate counter for layer ``types`` (and their subclasses)."""

    def register(counter):
        for layer_type in types:
            MAC_COUNTERS[layer_type] = counter
        return counter

    return register


def _bias_size(module) -> int:
    bias = getattr(module, "bias", None)
    return 0 if bias is None else int(bias.numel())


@register_macs(_ConvNd)
def _convolution_macs(module, input_shape, output_shape) -> int:
    # The weight meets every output position (a transposed convolution: every input position).
    positions = math.prod(input_shape[2:] if module._transposed else output_shape[2:])
    batch = output_shape[0]
    return batch * (int(module.weight.numel()) * positions + _bias_size(module) * math.prod(output_shape[2:]))


@register_macs(_UnsharedConvNd)
def _unshared_convolution_macs(module, input_shape, output_shape) -> int:
    per_position = module.out_channels * module.in_channels * math.prod(module.kernel_size)
    positions = math.prod(output_shape[2:])
    return output_shape[0] * (per_position * positions + (module.out_channels * positions if module.bias is not None
                                                           else 0))


@register_macs(Linear)
def _linear_macs(module, input_shape, output_shape) -> int:
    rows = math.prod(output_shape[:-1])
    return rows * (int(module.weight.numel()) + _bias_size(module))


def count_macs(module, input_shape, output_shape) -> int:
    """Multiply-accumulates of one call of ``module`` (see the module docstring)."""
    for layer_type in type(module).__mro__:
        if layer_type in MAC_COUNTERS:
            return int(MAC_COUNTERS[layer_type](module, input_shape, output_shape))
    own = sum(int(p.numel()) for p in module.parameters(recurse=False))
    return own * (output_shape[0] if output_shape else 1)


def _first_shape(value):
    if isinstance(value, Tensor):
        return tuple(value.shape), value.data.nbytes
    if isinstance(value, (tuple, list)) and value:
        return _first_shape(value[0])
    return (), 0


def summary_rows(model, input_shape, dtype=numpy.float32) -> list[LayerRow]:
    """One ``LayerRow`` per call of a leaf layer, in call order, for one sample of ``input_shape``.

    ``input_shape`` is one sample's shape, e.g. (1, 28, 28); the shapes shown exclude the batch.
    """
    check_allocation(4 * math.prod(input_shape), f"summary: an input of shape {tuple(input_shape)}",
                     hint="choose a smaller input size")
    rows, handles, seen = [], [], set()
    for name, module in model.named_modules():
        if name and not any(True for _ in module.children()):

            def record(mod, args, output, name=name):
                in_shape, _ = _first_shape(args)
                out_shape, out_bytes = _first_shape(output)
                first_call = id(mod) not in seen
                seen.add(id(mod))
                params = sum(int(p.numel()) for p in mod.parameters(recurse=False)) if first_call else 0
                macs = count_macs(mod, in_shape, out_shape) if out_shape else 0
                rows.append(LayerRow(name, type(mod).__name__, in_shape[1:], out_shape[1:], params, macs, out_bytes))

            handles.append(module.register_forward_hook(record))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(Tensor(numpy.zeros((1, *input_shape), dtype=dtype)))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return rows


def _shape(shape) -> str:
    return "x".join(str(s) for s in shape) if shape else "-"


def _readable(count: float, unit: str = "") -> str:
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= scale:
            return f"{count / scale:.2f} {prefix}{unit}"
    return f"{count:.0f} {unit}".rstrip()


def summary(model, input_shape, dtype=numpy.float32) -> str:
    """The summary table as text (see the module docstring).

    Examples:
        >>> from convstack.models import resnet18
        >>> print(summary(resnet18(), (3, 224, 224)).splitlines()[-6])   # doctest: +SKIP
        Total mult-adds: 1.81 G
    """
    rows = summary_rows(model, input_shape, dtype)
    params = list(model.parameters())
    total = sum(int(p.numel()) for p in params)
    trainable = sum(int(p.numel()) for p in params if p.requires_grad)
    param_bytes = sum(int(p.data.nbytes) for p in params)
    macs = sum(r.macs for r in rows)
    owners = {id(m) for _, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))}
    names_with_params = {name for name, m in model.named_modules() if id(m) in owners}
    # torchinfo's estimate: outputs of the layers with parameters, and their gradients.
    pass_bytes = 2 * sum(r.output_bytes for r in rows if r.name in names_with_params)
    input_bytes = math.prod(input_shape) * numpy.dtype(dtype).itemsize
    headers = ("Layer (type)", "Input shape", "Output shape", "Param #", "Mult-adds")
    cells = [(f"{r.name} ({r.type})", _shape(r.input_shape), _shape(r.output_shape),
              f"{r.params:,}" if r.params else "--", f"{r.macs:,}" if r.macs else "--") for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)]

    def line(values):
        return "  ".join(v.ljust(w) if i < 3 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths)))

    rule = "=" * len(line(headers))
    megabytes = lambda n: f"{n / 1e6:,.2f}"  # noqa: E731
    out = [rule, line(headers), rule, *(line(c) for c in cells), rule]
    out += [
        f"Input shape: {_shape(input_shape)}",
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        f"Total mult-adds: {_readable(macs)}",
        rule,
        f"Input size (MB): {megabytes(input_bytes)}",
        f"Forward/backward pass size (MB): {megabytes(pass_bytes)}",
        f"Params size (MB): {megabytes(param_bytes)}",
        f"Estimated total size (MB): {megabytes(input_bytes + pass_bytes + param_bytes)}",
        rule,
    ]
    return "\n".join(out)


def default_input_shape(model, in_channels: int, input_size: int) -> tuple:
    """One sample's shape for ``model``: ``in_channels`` and ``input_size`` along each spatial
    dimension of its first convolution (1-D: (C, L); 2-D: (C, H, W); 3-D: (C, D, H, W))."""
    for module in model.modules():
        if isinstance(module, (_ConvNd, _UnsharedConvNd)):
            return (in_channels,) + (input_size,) * len(module.kernel_size)
    return (in_channels, input_size, input_size)
