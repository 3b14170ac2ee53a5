"""Which pixels a decision depends on: saliency maps and Grad-CAM.

Both backpropagate one class score through the model with ordinary autograd; Grad-CAM
reads a layer's activations and their gradient with a forward hook and a tensor hook,
so any model works without changes.
"""

from __future__ import annotations

import warnings

import numpy

from convstack.data.transforms import Resize
from convstack.tensor import Tensor
from convstack.vis import _plot
from convstack.vis._model import as_batch, backward_from_scores, default_cam_layer, find_layer, probing
from convstack.vis._plot import to_numpy


def saliency(model, input, target=None, path=None, image=None):
    """Image-specific class saliency (Simonyan, Vedaldi & Zisserman 2014): |d score / d pixel|.

    The gradient of the (pre-softmax) class score with respect to the input, reduced to
    one value per pixel by the maximum of its absolute value over the channels.

    Args:
        model: a ``convstack.nn.Module`` returning class scores (N, K); it runs in eval
            mode and its parameters' ``.grad`` are left untouched.
        input: one sample (C, H, W) or a batch (N, C, H, W), Tensor or array.
        target: the class to explain: None (each sample's predicted class), an int, or one
            int per sample.
        path: PNG file showing the (first) image beside its map; ``None`` draws nothing.
        image: what to show as the image (e.g. the raw uint8 picture); default the input.

    Returns:
        The saliency map, (H, W) for one sample or (N, H, W), not normalised.
    """
    batch, single = as_batch(model, input, "saliency")
    with probing(model):
        gradient, targets, _ = backward_from_scores(model, batch, target, "saliency")
    maps = numpy.abs(gradient).max(axis=1)  # (N, H, W)
    if path is not None:
        shown = image if image is not None else batch[0]
        _draw_pair(shown, maps[0], f"saliency, class {targets[0]}", path, cmap="hot")
    return maps[0] if single else maps


def grad_cam(model, layer_name, input, target=None, path=None, image=None):
    """Gradient-weighted class activation mapping (Selvaraju et al. 2017).

    A forward hook on ``layer_name`` captures its activations A (N, K, h, w) and a tensor
    hook on that output captures d score / dA. Each channel's weight is its gradient's
    global average, w_k = mean_ij dScore/dA_kij; the map is relu(sum_k w_k A_k), upsampled
    bilinearly to the input size and scaled to [0, 1] per sample (all zeros if nothing
    speaks for the class).

    Args:
        model: a ``convstack.nn.Module`` returning class scores (N, K) (eval mode for the call).
        layer_name: a ``named_modules()`` name of a layer with (N, K, h, w) output; ``None``
            picks the last convolution block's output after its nonlinearity
            (``default_cam_layer``: ``layer4.1`` in ResNet-18). A convolution's own output,
            before its batch norm and ReLU, is mostly negative and often gives an empty map.
        input: one sample (C, H, W) or a batch (N, C, H, W), Tensor or array.
        target: None (predicted class), an int, or one int per sample.
        path: PNG file with the (first) map drawn over the image; ``None`` draws nothing.
        image: the picture to draw under the map (e.g. raw uint8); default the input.

    Returns:
        The map in [0, 1]: (H, W) for one sample or (N, H, W). A map that is all zeros
        (nothing in the layer speaks for the class) comes with a ``UserWarning``.
    """
    batch, single = as_batch(model, input, "grad_cam")
    if layer_name is None:
        layer_name = default_cam_layer(model, batch, "grad_cam")
    layer = find_layer(model, layer_name, "grad_cam")
    activations, gradients = [], []

    def capture(module, args, output):
        if not isinstance(output, Tensor) or output.ndim != 4:
            raise ValueError(
                f"grad_cam: layer {layer_name!r} ({type(module).__name__}) must give (N, K, h, w) activations, "
                f"received {getattr(output, 'shape', type(output).__name__)}"
            )
        activations.append(to_numpy(output.data))
        output.register_hook(lambda grad: gradients.append(to_numpy(grad.data)))

    handle = layer.register_forward_hook(capture)
    try:
        with probing(model):
            _, targets, _ = backward_from_scores(model, batch, target, "grad_cam")
    finally:
        handle.remove()
    if len(activations) != 1 or len(gradients) != 1:
        raise ValueError(
            f"grad_cam: layer {layer_name!r} ran {len(activations)} times in one forward pass and "
            f"{len(gradients)} gradients reached it; pick a layer that runs once and feeds the scores"
        )
    weights = gradients[0].mean(axis=(2, 3), keepdims=True)  # (N, K, 1, 1)
    cam = numpy.maximum((weights * activations[0]).sum(axis=1), 0.0)  # (N, h, w)
    cam = upsample(cam, batch.shape[2:])
    peak = cam.max(axis=(1, 2), keepdims=True)
    empty = numpy.flatnonzero(peak.reshape(-1) <= 0)
    if empty.size:
        warnings.warn(
            f"grad_cam: the map of layer {layer_name!r} is all zeros for sample(s) {empty.tolist()} (class "
            f"{targets[empty].tolist()}): no channel's activation raises the class score there (a layer before "
            "its nonlinearity, mostly negative, often gives this; layer_name=None takes the block's output after it)",
            stacklevel=2,
        )
    cam = numpy.where(peak > 0, cam / numpy.where(peak > 0, peak, 1.0), 0.0)
    if path is not None:
        title = f"Grad-CAM {layer_name}, class {targets[0]}"
        overlay(image if image is not None else batch[0], cam[0], path, title=title)
    return cam[0] if single else cam


def upsample(maps, size) -> numpy.ndarray:
    """(N, h, w) maps resized bilinearly (half-pixel centres, as ``F.interpolate``) to ``size``."""
    maps = numpy.asarray(maps, dtype=numpy.float64)
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return Resize(tuple(int(s) for s in size)).batch(maps)


def jet(values) -> numpy.ndarray:
    """The 'jet' colour map of values in [0, 1]: (...) -> (..., 3) RGB in [0, 1] (no matplotlib needed)."""
    x = numpy.clip(numpy.asarray(values, dtype=numpy.float64), 0.0, 1.0)[..., None]
    centres = numpy.array([0.75, 0.5, 0.25])  # red, green, blue ramps peak at these values
    return numpy.clip(1.5 - numpy.abs(4.0 * (x - centres)), 0.0, 1.0)


def overlay(image, cam, path=None, alpha: float = 0.5, title: str | None = None) -> numpy.ndarray:
    """A heat map blended over an image: (1 - alpha) * image + alpha * jet(cam).

    Args:
        image: (H, W), (C, H, W) or (H, W, C); uint8 shown as is, floats min-max scaled.
        cam: (H, W) values in [0, 1] (e.g. from ``grad_cam``).
        path: PNG file with the image, the map, and the blend; ``None`` draws nothing.
        alpha: weight of the heat map.

    Returns:
        The blend, (H, W, 3) RGB in [0, 1].
    """
    picture = _plot.display_image(image)
    heat = numpy.asarray(to_numpy(cam), dtype=numpy.float64)
    if heat.shape != picture.shape[:2]:
        raise ValueError(f"overlay: the map has shape {heat.shape}, the image {picture.shape[:2]}; expected equal")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(
            f"overlay: invalid value for argument `alpha`: expected a number in [0, 1], received {alpha!r}"
        )
    rgb = picture if picture.ndim == 3 else numpy.repeat(picture[..., None], 3, axis=-1)
    blend = (1.0 - alpha) * rgb + alpha * jet(heat)
    if path is not None:
        fig = _plot.figure(7.5, 2.8)
        if title:
            fig.suptitle(title, fontsize=9)
        _plot.show(fig.add_subplot(1, 3, 1), picture, "image")
        _plot.show(fig.add_subplot(1, 3, 2), heat, "map", cmap="jet", vmin=0.0, vmax=1.0)
        _plot.show(fig.add_subplot(1, 3, 3), blend, "overlay")
        _plot.save(fig, path)
    return blend


def _draw_pair(image, heat, title, path, cmap) -> None:
    fig = _plot.figure(5.2, 2.8)
    fig.suptitle(title, fontsize=9)
    _plot.show(fig.add_subplot(1, 2, 1), _plot.display_image(image), "image")
    _plot.show(fig.add_subplot(1, 2, 2), heat, "map", cmap=cmap)
    _plot.save(fig, path)
