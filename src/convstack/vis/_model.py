"""What the network-probing tools share: layer look-up, input batches, class targets.

Everything here sees a model only from outside, through ``named_modules`` and the
hooks of ``convstack.nn.Module``; no model needs to know it is being looked at.
"""

from __future__ import annotations

import contextlib

import numpy

from convstack import backend
from convstack.autograd import no_grad
from convstack.nn.modules.conv import Conv2d
from convstack.tensor import Tensor
from convstack.vis._plot import to_numpy


def layer_names(model) -> list[str]:
    """Every named submodule (``model.named_modules()`` names, the model itself excluded)."""
    return [name for name, _ in model.named_modules() if name]


def find_layer(model, name: str, op: str):
    """The submodule called ``name``; a ValueError listing the valid names otherwise."""
    modules = dict(model.named_modules())
    if not isinstance(name, str) or not name or name not in modules:
        raise ValueError(
            f"{op}: unknown layer name {name!r}; valid layer names: {', '.join(layer_names(model)) or '(none)'}"
        )
    return modules[name]


def conv_layer_names(model) -> list[str]:
    """Names of the ``Conv2d`` layers, in registration order."""
    return [name for name, module in model.named_modules() if name and isinstance(module, Conv2d)]


def default_conv(model, which: str, op: str) -> str:
    """The name of the first (``which='first'``) or last Conv2d layer of ``model``."""
    names = conv_layer_names(model)
    if not names:
        raise ValueError(f"{op}: the model has no Conv2d layer; pass a layer name ({', '.join(layer_names(model))})")
    return names[0] if which == "first" else names[-1]


def default_cam_layer(model, batch, op: str) -> str:
    """The last convolution block's output after its nonlinearity: Grad-CAM's default layer.

    One forward pass of ``batch`` (no graph) records, in the order they finish, every layer's
    output. From the last 2-D convolution on, the layers whose output is (N, K, h, w) at that
    convolution's resolution follow it (batch norm, the nonlinearity, the block that ends
    there); the last of them is the block's output, after its ReLU. Where several layers
    return that same tensor (a block, the stage holding it), the innermost that runs once is
    named (``layer4.1`` in ResNet-18, ``features.19`` in VGG-11, ``features.4`` in LeNet-5);
    a nonlinearity module shared by several places falls back to the last layer that runs once.
    A model without a Conv2d raises a ValueError naming its layers.
    """
    finished, calls, handles = [], {}, []
    for name, module in model.named_modules():
        if not name:
            continue

        def record(mod, args, output, name=name):
            calls[name] = calls.get(name, 0) + 1
            finished.append((name, mod, output))

        handles.append(module.register_forward_hook(record))
    try:
        with probing(model), no_grad():
            model(Tensor(batch[:1]))
    finally:
        for handle in handles:
            handle.remove()
    convs = [i for i, (_, module, output) in enumerate(finished)
             if isinstance(module, Conv2d) and isinstance(output, Tensor) and output.ndim == 4]
    if not convs:
        raise ValueError(f"{op}: the model has no Conv2d layer; pass a layer name ({', '.join(layer_names(model))})")
    resolution = finished[convs[-1]][2].shape[2:]
    followers = [(name, output) for name, _, output in finished[convs[-1]:]
                 if isinstance(output, Tensor) and output.ndim == 4 and output.shape[2:] == resolution]
    last = followers[-1][1]
    for name, output in followers[1:]:  # after the convolution (an in-place ReLU returns the convolution's output)
        if output is last and calls[name] == 1:
            return name
    # The nonlinearity is one module called at several places (LeNet-5 1998's squash): the
    # latest layer that runs once, the convolution itself at worst.
    once = [name for name, _ in followers if calls[name] == 1]
    return once[-1] if once else followers[-1][0]


def model_dtype_device(model):
    for param in model.parameters():
        return param.dtype, param.device
    return numpy.dtype(numpy.float32), "cpu"


def as_batch(model, input, op: str) -> tuple:
    """``input`` (C, H, W) or (N, C, H, W), Tensor or array, as a fresh (N, C, H, W) array
    of the model's dtype on its device, and whether a single sample was given."""
    array = to_numpy(input)
    if array.ndim not in (3, 4):
        raise ValueError(f"{op}: expected an input (C, H, W) or (N, C, H, W), received shape {array.shape}")
    single = array.ndim == 3
    dtype, device = model_dtype_device(model)
    batch = numpy.array(array[None] if single else array, dtype=dtype)  # (N, C, H, W), a copy
    return backend.to_device(batch, device), single


@contextlib.contextmanager
def probing(model):
    """Eval mode, and parameters that need no gradient (their ``.grad`` stays untouched); restored on exit."""
    was_training = model.training
    flags = [(param, param.requires_grad) for param in model.parameters()]
    model.eval()
    for param, _ in flags:
        param.requires_grad = False
    try:
        yield model
    finally:
        for param, flag in flags:
            param.requires_grad = flag
        model.train(was_training)


def resolve_targets(target, count: int, classes: int, default, op: str, kind: str = "class") -> numpy.ndarray:
    """One class index per sample: ``default`` (N,) where ``target`` is None, else an int or a sequence."""
    if target is None:
        return numpy.asarray(default, dtype=numpy.int64)
    values = numpy.atleast_1d(numpy.asarray(to_numpy(target)))
    if values.dtype.kind not in "iu" or values.ndim != 1 or len(values) not in (1, count):
        raise ValueError(
            f"{op}: invalid value for argument `target`: expected None, an integer or {count} integers, "
            f"received {target!r}"
        )
    if values.min() < 0 or values.max() >= classes:
        raise ValueError(
            f"{op}: invalid value for argument `target`: expected {kind} indices in [0, {classes}), received {target!r}"
        )
    return numpy.broadcast_to(values.astype(numpy.int64), (count,)).copy()


def backward_from_scores(model, batch, target, op: str) -> tuple:
    """Forward ``batch`` (requiring grad) and backpropagate each sample's ``target`` class score.

    Returns (d score / d input as a NumPy (N, C, H, W) array, the targets (N,), the scores (N, K)).
    The samples are independent, so one backward of the sum of their scores gives every
    sample's own gradient.
    """
    x = Tensor(batch, requires_grad=True)
    scores = model(x)
    if scores.ndim != 2:
        raise ValueError(f"{op}: expected the model to return class scores (N, K), received shape {scores.shape}")
    values = to_numpy(scores.data)
    targets = resolve_targets(target, len(batch), values.shape[1], values.argmax(axis=1), op)
    seed = numpy.zeros(values.shape, dtype=values.dtype)
    seed[numpy.arange(len(targets)), targets] = 1.0  # (N, K) one-hot
    scores.backward(backend.to_device(seed, scores.device))
    return to_numpy(x.grad.data), targets, values
