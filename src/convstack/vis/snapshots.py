"""Pictures of a model during training as plain uint8 arrays, for pages and logs that draw nothing.

The live dashboard and the TensorBoard logger show the same pictures each epoch: the
first layer's filters, the feature maps of one fixed sample, Grad-CAMs, misclassified
examples. These functions compute them as (H, W) gray or (H, W, 3) RGB uint8 arrays
with NumPy alone (no matplotlib), cheaply enough to run at the end of every epoch.

    >>> from convstack import nn
    >>> model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU())
    >>> filters_picture(model).shape  # 6 tiles of 5x5 on a 3x2 grid, 1 pixel apart
    (13, 19)
"""

from __future__ import annotations

import numpy

from convstack.autograd import no_grad
from convstack.tensor import Tensor
from convstack.vis import _plot
from convstack.vis._model import as_batch, conv_layer_names, find_layer, probing
from convstack.vis._plot import to_numpy
from convstack.vis.attribution import grad_cam, overlay
from convstack.vis.filters import filter_grid
from convstack.vis.maps import feature_maps


def to_uint8(image) -> numpy.ndarray:
    """Values in [0, 1] (clipped) as uint8 0-255."""
    return numpy.round(numpy.clip(numpy.asarray(image, dtype=numpy.float64), 0.0, 1.0) * 255.0).astype(numpy.uint8)


def upscale(image, min_size: int) -> numpy.ndarray:
    """Nearest-neighbour enlargement by the smallest integer factor making both sides >= ``min_size``.

    Viewers that show images at their own size (TensorBoard) would otherwise show a 5x5
    filter as 5 pixels; the browser page enlarges them itself (CSS ``pixelated``).
    """
    image = numpy.asarray(image)
    factor = max(1, -(-int(min_size) // max(1, min(image.shape[:2]))))
    return numpy.repeat(numpy.repeat(image, factor, axis=0), factor, axis=1)


def display_uint8(image) -> numpy.ndarray:
    """One image for display, (H, W) or (H, W, 3) uint8: uint8 as is, floats min-max scaled."""
    return to_uint8(_plot.display_image(image))


def filters_picture(model, layer_name: str | None = None) -> numpy.ndarray | None:
    """The kernels of ``layer_name`` (default: the first ``Conv2d``) as one mosaic, uint8.

    Returns:
        (H, W) gray or (H, W, 3) RGB uint8: one tile per filter for 1 or 3 input channels,
        else one row per filter and one column per input channel (as ``filter_grid``);
        each filter scaled on its own. None when the model has no ``Conv2d``.
    """
    if layer_name is None:
        names = conv_layer_names(model)
        if not names:
            return None
        layer_name = names[0]
    layer = find_layer(model, layer_name, "filters_picture")
    tiles = filter_grid(layer)
    in_channels = layer.weight.shape[1]
    if in_channels not in (1, 3):  # tiles (F, C, kH, kW): one row per filter
        height, width = tiles.shape[2:]
        return to_uint8(_plot.mosaic(tiles.reshape(-1, height, width), columns=in_channels))
    return to_uint8(_plot.mosaic(tiles))


def feature_maps_picture(model, layer_name: str, sample, max_channels: int = 64) -> numpy.ndarray:
    """The channels of ``layer_name``'s output for one ``sample`` (C, H, W), as one gray mosaic.

    Returns:
        (H', W') uint8: at most ``max_channels`` channels, each scaled on its own; a layer
        with a flat output (K,) shows one pixel per unit.
    """
    maps = feature_maps(model, layer_name, sample)  # one sample: the layer's output without the batch
    if maps.ndim == 1:
        maps = maps[:, None, None]  # (K, 1, 1): a pixel per unit
    elif maps.ndim == 2:
        maps = maps[None]
    maps = maps.reshape(-1, *maps.shape[-2:])[:max_channels]  # (C', h, w)
    return to_uint8(_plot.mosaic(_plot.rescale(maps, axes=(1, 2))))


def grad_cam_pictures(model, samples, images=None, layer_name: str | None = None) -> tuple:
    """Grad-CAM of each sample's predicted class blended over the image.

    Args:
        model: a classifier returning (N, K) scores.
        samples: inputs as the model takes them, (N, C, H, W).
        images: what to show under the maps (e.g. raw uint8 pictures); default the inputs.
        layer_name: the layer to explain (default: the last ``Conv2d``).

    Returns:
        (pictures (N, H, W, 3) uint8, the layer's name), or (None, None) for a model without ``Conv2d``.
    """
    names = conv_layer_names(model)
    if layer_name is None:
        if not names:
            return None, None
        layer_name = names[-1]
    batch = to_numpy(samples)
    cams = grad_cam(model, layer_name, batch)  # (N, H, W) in [0, 1]
    shown = batch if images is None else to_numpy(images)
    return numpy.stack([to_uint8(overlay(shown[i], cams[i])) for i in range(len(batch))]), layer_name


def gives_class_scores(model, samples) -> bool:
    """Whether ``model`` maps ``samples`` (N, C, H, W) to class scores (N, K), as Grad-CAM needs."""
    batch, _ = as_batch(model, samples, "gives_class_scores")
    with probing(model), no_grad():
        return model(Tensor(batch)).ndim == 2


def misclassified_indices(predictions, targets, limit: int) -> numpy.ndarray:
    """Indices of the first ``limit`` samples whose prediction differs from the target."""
    wrong = numpy.flatnonzero(numpy.asarray(predictions) != numpy.asarray(targets))
    return wrong[: max(0, int(limit))]


def first_input(loader) -> numpy.ndarray | None:
    """The first input of ``loader``'s dataset as a NumPy array (a fixed sample to look at
    each epoch), or None when the loader has no dataset that can be indexed."""
    dataset = getattr(loader, "dataset", None)
    if dataset is None:
        return None
    try:
        item = dataset[0]
    except (TypeError, IndexError, KeyError, NotImplementedError):
        return None
    return to_numpy(item[0] if isinstance(item, tuple) else item)
