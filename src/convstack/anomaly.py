"""Anomaly detection: name the first op and layer that produces NaN or Inf, forward or backward.

    with convstack.detect_anomaly():
        loss = cross_entropy(model(images), labels)
        loss.backward()

While anomaly mode is on, ``Function.apply`` checks every op's output and ``backward()``
checks every gradient an op returns; the first non-finite value raises ``AnomalyError``
naming the op (its ``Function`` class), the pass (forward or backward), the layer that
ran it (by its path in the model, e.g. ``layer2.0.conv1 (Conv2d)``) and the line that
created the op. Off (the default), the only cost is one flag test per op.

How layers get their paths: a module does not know its own name, so ``Module.__call__``
pushes itself on a per-thread stack of the modules being run (a list append, always).
The path of a call is its parent's path plus the name under which the parent holds it
(looked up in the parent's children, then in its descendants), computed only when it is
needed (in anomaly mode, or when a layer refuses its input) and cached on the stack
frame. The outermost module called is the root, with the empty path; a module that its
caller does not hold is shown as ``<TypeName>``. Nothing is cached on the modules, so
adding or replacing submodules never leaves a stale name.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

import numpy

from convstack.backend import get_array_module

_enabled = False  # read directly by Function.apply and run_backward: one global lookup per op


class AnomalyError(RuntimeError):
    """An op produced NaN or Inf in anomaly mode; the message names the op, the pass and the layer."""


def is_anomaly_enabled() -> bool:
    """Whether anomaly detection is on."""
    return _enabled


def set_detect_anomaly(mode: bool) -> None:
    """Turn anomaly detection on or off for the whole process (as ``torch.autograd.set_detect_anomaly``)."""
    global _enabled
    if not isinstance(mode, bool):
        raise ValueError(f"set_detect_anomaly: invalid value for argument `mode`: expected a bool, received {mode!r}")
    _enabled = mode


@contextlib.contextmanager
def detect_anomaly():
    """Context manager (and decorator) under which every op's output and gradients are checked.

    Examples:
        >>> import math, convstack as cs
        >>> x = cs.tensor([1.0, -1.0], requires_grad=True)
        >>> with cs.detect_anomaly():
        ...     x.sqrt()
        Traceback (most recent call last):
        ...
        convstack.anomaly.AnomalyError: Sqrt forward produced 1 NaN value(s) of 2 ...
    """
    previous = _enabled
    set_detect_anomaly(True)
    try:
        yield
    finally:
        set_detect_anomaly(previous)


# ------------------------------------------------------------------------------- module call stack
class _Frames(threading.local):
    def __init__(self):
        self.stack: list = []  # [module, path or None] per running Module.__call__, outermost first


_frames = _Frames()


def call_stack() -> list:
    """This thread's stack of ``[module, path]`` frames (``Module.__call__`` pushes and pops)."""
    return _frames.stack


def _child_name(parent, child) -> str | None:
    for name, module in parent._modules.items():
        if module is child:
            return name
    for name, module in parent.named_modules():
        if module is child and name:
            return name
    return None


def _path_at(stack: list, index: int) -> str:
    frame = stack[index]
    if frame[1] is None:
        if index == 0:
            frame[1] = ""
        else:
            parent_path = _path_at(stack, index - 1)
            name = _child_name(stack[index - 1][0], frame[0])
            if name is None:
                name = f"<{type(frame[0]).__name__}>"
            frame[1] = f"{parent_path}.{name}" if parent_path else name
    return frame[1]


def layer_name(index: int = -1) -> str | None:
    """``'features.0 (Conv2d)'`` for the module running at ``index`` of the call stack (the root: ``'Conv2d'``)."""
    stack = _frames.stack
    if not stack:
        return None
    index %= len(stack)
    path = _path_at(stack, index)
    kind = type(stack[index][0]).__name__
    return f"{path} ({kind})" if path else kind


# ------------------------------------------------------------------------------------- the checks
def _non_finite(array) -> str | None:
    """``None`` when every value of a floating ``array`` is finite, else how many NaN and Inf it holds."""
    if getattr(array, "dtype", None) is None or array.dtype.kind not in "fc":
        return None
    xp = get_array_module(array)
    with numpy.errstate(over="ignore", invalid="ignore"):
        total = array.sum()
    if bool(xp.isfinite(total)):  # a finite sum means every term is finite: one pass, no mask
        return None
    if bool(xp.isfinite(array).all()):  # the sum overflowed, the values did not
        return None
    nan = int(xp.isnan(array).sum())
    inf = int(xp.isinf(array).sum())
    parts = [f"{count} {kind}" for count, kind in ((nan, "NaN"), (inf, "Inf")) if count]
    return f"{' and '.join(parts)} value(s) of {array.size}"


_ENGINE = tuple(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), part)
    for part in ("autograd.py", "anomaly.py", "tensor.py", "functions.py", "ops", os.path.join("nn", "functional"),
                 os.path.join("nn", "kernels"))
)


def _creation_site() -> str | None:
    """``file:line in function`` of the innermost caller outside the engine (autograd, tensor, ops, functional)."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_ENGINE):
            return f"{filename}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back
    return None


def _where(fn) -> str:
    layer = getattr(fn, "_anomaly_layer", None)
    site = getattr(fn, "_anomaly_site", None)
    text = f"in layer {layer}" if layer else "outside any layer"
    return text + (f", op created at {site}" if site else "")


def check_forward(fn, input_arrays, output) -> None:
    """Record where ``fn`` runs, then raise ``AnomalyError`` if its output holds NaN or Inf."""
    fn._anomaly_layer = layer_name()
    fn._anomaly_site = _creation_site()
    found = _non_finite(output)
    if found is None:
        return
    bad_inputs = [str(i) for i, array in enumerate(input_arrays) if _non_finite(array) is not None]
    cause = (
        f"its input(s) {', '.join(bad_inputs)} already held non-finite values (from the data or the parameters)"
        if bad_inputs
        else "its inputs were all finite"
    )
    raise AnomalyError(
        f"{type(fn).__name__} forward produced {found} in its output of shape {tuple(output.shape)}, "
        f"{_where(fn)}; {cause}"
    )


def check_backward(fn, grad_output, input_grads) -> None:
    """Raise ``AnomalyError`` if a gradient ``fn.backward`` returned holds NaN or Inf."""
    for index, grad in enumerate(input_grads):
        found = _non_finite(grad) if grad is not None else None
        if found is None:
            continue
        received = "finite" if _non_finite(grad_output) is None else "already non-finite"
        if getattr(fn, "_anomaly_site", None) is None and getattr(fn, "_anomaly_layer", None) is None:
            hint = " (its forward ran outside anomaly mode, so its layer is unknown)"
        else:
            hint = ""
        raise AnomalyError(
            f"{type(fn).__name__} backward produced {found} in the gradient for its input {index} "
            f"(shape {tuple(grad.shape)}), {_where(fn)}{hint}; the gradient it received was {received}"
        )
