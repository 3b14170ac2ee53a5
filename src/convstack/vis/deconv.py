"""Guided backpropagation and the deconvnet: input-space pictures of what a unit responds to.

Zeiler & Fergus (2014) map an activation back to pixels with a "deconvnet": unpooling
through the max-pooling switches, rectification, and the transposed filters. Springenberg
et al. (2015) showed that guided backpropagation, a variant, gives sharper pictures. Both
are ordinary backpropagation with one change at each ReLU, made here by full backward
hooks on the ``nn.ReLU`` modules (``register_full_backward_hook``), removed afterwards:

    backpropagation   grad_in = grad_out * (x > 0)
    deconvnet         grad_in = relu(grad_out)                 (forward mask ignored)
    guided            grad_in = relu(grad_out) * (x > 0)       (both)

The rest comes for free from the ops' own backward passes: max pooling's backward routes
each gradient to the argmax of its window (the deconvnet's "switches"), and a
convolution's backward with respect to its input is the convolution with the transposed
filters. Only ReLUs that are modules (``nn.ReLU``) are changed: a model that calls
``F.relu`` inside ``forward`` is backpropagated through those unchanged, and a model with
no ``nn.ReLU`` at all is refused.
"""

from __future__ import annotations

import numpy

from convstack import backend
from convstack.nn.modules.activation import ReLU
from convstack.tensor import Tensor
from convstack.vis import _plot
from convstack.vis._model import as_batch, backward_from_scores, find_layer, probing, resolve_targets
from convstack.vis._plot import to_numpy


def _positive(grad):
    xp = backend.get_array_module(grad.data)
    return xp.maximum(grad.data, 0)


def _guided_hook(module, grad_input, grad_output):
    # grad_input already holds grad_out * (x > 0); keeping its positive part adds relu(grad_out).
    if grad_input[0] is None:
        return None
    return (_positive(grad_input[0]),)


def _deconv_hook(module, grad_input, grad_output):
    # grad_output is None only for the layer the deconvnet starts from, whose seed is already rectified.
    if grad_output[0] is None or grad_input[0] is None:
        return None
    return (_positive(grad_output[0]),)


def _hook_relus(model, hook, op: str) -> list:
    relus = [module for module in model.modules() if isinstance(module, ReLU)]
    if not relus:
        raise ValueError(
            f"{op}: the model has no nn.ReLU modules; guided backpropagation and the deconvnet change the "
            "backward pass of ReLU modules, so a model whose forward calls F.relu (or another activation) "
            "cannot be visualised this way"
        )
    return [module.register_full_backward_hook(hook) for module in relus]


def guided_backprop(model, input, target=None, path=None, image=None):
    """Guided backpropagation (Springenberg et al. 2015) of a class score to the input.

    Args:
        model: a ``convstack.nn.Module`` with ``nn.ReLU`` modules, returning class scores
            (N, K); eval mode for the call, parameters' ``.grad`` untouched.
        input: one sample (C, H, W) or a batch (N, C, H, W), Tensor or array.
        target: None (each sample's predicted class), an int, or one int per sample.
        path: PNG file with the (first) image beside its guided gradient; ``None`` draws nothing.
        image: the picture to show (e.g. the raw uint8 image); default the input.

    Returns:
        The guided gradient, same shape as ``input``: (C, H, W) or (N, C, H, W).
    """
    batch, single = as_batch(model, input, "guided_backprop")
    handles = _hook_relus(model, _guided_hook, "guided_backprop")
    try:
        with probing(model):
            gradient, targets, _ = backward_from_scores(model, batch, target, "guided_backprop")
    finally:
        for handle in handles:
            handle.remove()
    if path is not None:
        _draw(image if image is not None else batch[0], gradient[0], f"guided backprop, class {targets[0]}", path)
    return gradient[0] if single else gradient


def deconvnet(model, input, target=None, layer_name=None, path=None, image=None):
    """Zeiler & Fergus (2014) deconvnet projection of a class score or of one layer's activation.

    With ``layer_name=None`` the class score ``target`` is projected. With a layer name,
    ``target`` is a channel of that layer (None: the channel with the strongest activation),
    and, as in the paper, all its other activations are set to zero: the projection starts
    from the channel's single strongest activation, with that activation's value.

    Args:
        model: a ``convstack.nn.Module`` with ``nn.ReLU`` modules (eval mode for the call).
        input: one sample (C, H, W) or a batch (N, C, H, W), Tensor or array.
        target: class index (or channel index with ``layer_name``): None, an int, or one per sample.
        layer_name: a ``named_modules()`` name, or None to start from the class scores.
        path: PNG file with the (first) image beside its projection; ``None`` draws nothing.
        image: the picture to show (e.g. the raw uint8 image); default the input.

    Returns:
        The projection into input space, same shape as ``input``.
    """
    batch, single = as_batch(model, input, "deconvnet")
    layer = find_layer(model, layer_name, "deconvnet") if layer_name is not None else None
    handles = _hook_relus(model, _deconv_hook, "deconvnet")
    try:
        with probing(model):
            if layer is None:
                projection, targets, _ = backward_from_scores(model, batch, target, "deconvnet")
                label = f"deconvnet, class {targets[0]}"
            else:
                projection, targets = _project_layer(model, layer, layer_name, batch, target)
                label = f"deconvnet, {layer_name} channel {targets[0]}"
    finally:
        for handle in handles:
            handle.remove()
    if path is not None:
        _draw(image if image is not None else batch[0], projection[0], label, path)
    return projection[0] if single else projection


def _project_layer(model, layer, layer_name, batch, target) -> tuple:
    """Backpropagate from the strongest activation of one channel of ``layer`` (others zeroed)."""
    captured = []
    handle = layer.register_forward_hook(lambda module, args, output: captured.append(output))
    try:
        x = Tensor(batch, requires_grad=True)
        model(x)
    finally:
        handle.remove()
    if len(captured) != 1 or not isinstance(captured[0], Tensor) or captured[0].ndim < 2:
        raise ValueError(
            f"deconvnet: layer {layer_name!r} must run once and give (N, C, ...) activations; "
            f"it ran {len(captured)} times"
        )
    output = captured[0]
    values = to_numpy(output.data)
    flat = values.reshape(values.shape[0], values.shape[1], -1)  # (N, C, positions)
    strongest_channel = flat.max(axis=2).argmax(axis=1)
    channels = resolve_targets(target, len(flat), flat.shape[1], strongest_channel, "deconvnet", "channel")
    rows = numpy.arange(len(flat))
    positions = flat[rows, channels].argmax(axis=1)
    seed = numpy.zeros_like(flat)
    seed[rows, channels, positions] = flat[rows, channels, positions]  # only the strongest activation
    output.backward(backend.to_device(seed.reshape(values.shape), output.device))
    return to_numpy(x.grad.data), channels


def _draw(image, gradient, title, path) -> None:
    fig = _plot.figure(5.2, 2.8)
    fig.suptitle(title, fontsize=9)
    _plot.show(fig.add_subplot(1, 2, 1), _plot.display_image(image), "image")
    # Zero is mid-gray; the brightest and darkest pixels are the largest |gradient|.
    scale = max(float(numpy.abs(gradient).max()), 1e-12)
    picture = 0.5 + gradient / (2 * scale)  # (C, H, W) in [0, 1]
    if picture.shape[0] == 3:
        picture = picture.transpose(1, 2, 0)  # (H, W, 3)
    else:
        picture = picture.mean(axis=0)  # gray, also for inputs with 2 or more than 3 channels
    _plot.show(fig.add_subplot(1, 2, 2), picture, "projection", vmin=0.0, vmax=1.0)
    _plot.save(fig, path)
