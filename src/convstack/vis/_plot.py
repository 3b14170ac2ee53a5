"""Drawing helpers shared by ``convstack.vis``: matplotlib, imported lazily, drawn with Agg.

Figures are built as ``matplotlib.figure.Figure`` objects on an Agg canvas, never
through ``pyplot``: no global backend is switched (a notebook's inline backend keeps
working), no window opens, and nothing is left in pyplot's figure registry.
matplotlib is needed only to draw; every function of ``convstack.vis`` called with
``path=None`` computes its arrays without it.
"""

from __future__ import annotations

import math

import numpy

from convstack import backend
from convstack.atomic import atomic_write
from convstack.tensor import Tensor


def figure(width: float, height: float):
    """A new ``Figure`` of ``width`` x ``height`` inches on an Agg canvas."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "convstack.vis needs matplotlib, a dependency of convstack that is missing here, to draw pictures: "
            "pip install matplotlib (or pass path=None to get the arrays without drawing)"
        ) from None
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def save(fig, path):
    """Write ``fig`` as PNG to ``path`` (a file name, parent folders created, or a binary file object)."""
    if hasattr(path, "write"):
        fig.savefig(path, format="png", bbox_inches="tight")
        return path
    return atomic_write(path, lambda stream: fig.savefig(stream, format="png", bbox_inches="tight"))


def to_numpy(value) -> numpy.ndarray:
    """A Tensor's data, or any array, as a NumPy array on the CPU."""
    if isinstance(value, Tensor):
        value = value.data
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return backend.to_numpy(value)
    return numpy.asarray(value)


def rescale(array, axes=None) -> numpy.ndarray:
    """``array`` min-max scaled to [0, 1] over ``axes`` (all by default); a constant slice becomes 0.5."""
    array = numpy.asarray(array, dtype=numpy.float64)
    low = array.min(axis=axes, keepdims=True)
    high = array.max(axis=axes, keepdims=True)
    span = high - low
    scaled = (array - low) / numpy.where(span > 0, span, 1.0)
    return numpy.where(span > 0, scaled, 0.5)


def display_image(image) -> numpy.ndarray:
    """One image for ``imshow``: (H, W) gray or (H, W, 3) RGB in [0, 1].

    Accepts (H, W), (1|3, H, W) or (H, W, 1|3); uint8 is divided by 255, floats (e.g. a
    normalised network input) are min-max scaled.
    """
    image = to_numpy(image)
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
        image = image.transpose(1, 2, 0)  # (H, W, C)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] != 3):
        raise ValueError(
            f"convstack.vis: expected an image (H, W), (C, H, W) or (H, W, C) with 1 or 3 channels, "
            f"received shape {image.shape}"
        )
    if image.dtype == numpy.uint8:
        return image.astype(numpy.float64) / 255.0
    return rescale(image)


def show(axis, image, title: str | None = None, **options) -> None:
    """``imshow`` without ticks; gray colour map for one-channel images."""
    if image.ndim == 2 and "cmap" not in options:
        options["cmap"] = "gray"
    axis.imshow(image, interpolation="nearest", **options)
    axis.set_xticks([])
    axis.set_yticks([])
    if title:
        axis.set_title(title, fontsize=8)


def grid_shape(count: int, columns: int | None = None) -> tuple:
    """(rows, columns) of a near-square grid holding ``count`` tiles."""
    columns = columns or max(1, math.ceil(math.sqrt(count)))
    return max(1, math.ceil(count / columns)), columns


def mosaic(tiles, columns: int | None = None, pad: int = 1, fill: float = 1.0) -> numpy.ndarray:
    """Tiles (T, h, w) or (T, h, w, 3) laid out row by row in one image with ``pad`` pixels of ``fill`` between."""
    tiles = numpy.asarray(tiles, dtype=numpy.float64)
    rows, columns = grid_shape(len(tiles), columns)
    height, width = tiles.shape[1:3]
    out = numpy.full(
        (rows * (height + pad) + pad, columns * (width + pad) + pad) + tiles.shape[3:], fill, dtype=numpy.float64
    )
    for index, tile in enumerate(tiles):  # one copy per tile, not per pixel
        row, column = divmod(index, columns)
        top, left = pad + row * (height + pad), pad + column * (width + pad)
        out[top : top + height, left : left + width] = tile
    return out
