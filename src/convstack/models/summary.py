"""A Keras-style model summary: each layer's output shape and parameter count, and totals."""

from __future__ import annotations

import math

import numpy

from convstack.autograd import no_grad
from convstack.backend import check_allocation
from convstack.tensor import Tensor


def summary_rows(model, input_shape) -> list[tuple[str, str, tuple, int]]:
    """(name, layer type, output shape, parameters) for every leaf layer, in call order.

    ``input_shape`` is one sample's shape, e.g. (1, 28, 28); the shapes shown exclude the batch.
    """
    check_allocation(4 * math.prod(input_shape), f"summary: an input of shape {tuple(input_shape)}",
                     hint="choose a smaller input size")
    rows, handles = [], []
    for name, module in model.named_modules():
        if name and not any(True for _ in module.children()):
            own = sum(p.numel() for p in module.parameters(recurse=False))

            def record(mod, inputs, output, name=name, own=own):
                rows.append((name, type(mod).__name__, tuple(output.shape[1:]), own))

            handles.append(module.register_forward_hook(record))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(Tensor(numpy.zeros((1, *input_shape), dtype=numpy.float32)))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return rows


def summary(model, input_shape) -> str:
    """The summary table as text (see ``summary_rows``)."""
    rows = summary_rows(model, input_shape)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    headers = ("Layer (type)", "Output shape", "Param #")
    cells = [(f"{name} ({kind})", "x".join(str(s) for s in shape), f"{count:,}") for name, kind, shape, count in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "=" * (sum(widths) + 4)
    out = [f"{headers[0]:<{widths[0]}}  {headers[1]:<{widths[1]}}  {headers[2]:>{widths[2]}}", line]
    out += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}" for a, b, c in cells]
    out += [
        line,
        f"Input shape: {'x'.join(str(s) for s in input_shape)}",
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
    ]
    return "\n".join(out)
