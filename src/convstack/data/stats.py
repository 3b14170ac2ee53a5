"""Per-channel statistics of a training split, for ``Normalize``."""

from __future__ import annotations

import numpy

from convstack import backend
from convstack.data.transforms import ToTensor

CHUNK_SAMPLES = 4096


def _chunks(data):
    """Float (N, C, H, W) chunks of ``data`` (an array, a Tensor or a dataset), as ToTensor sees them."""
    if hasattr(data, "data") and hasattr(data, "grad"):  # a Tensor
        data = data.data
    if hasattr(data, "shape") and hasattr(data, "dtype"):
        if data.ndim not in (3, 4):
            raise ValueError(
                f"channel_stats: expected images (N, H, W) or (N, C, H, W), received shape {tuple(data.shape)}"
            )
        to_tensor = ToTensor(layout="CHW")
        for start in range(0, data.shape[0], CHUNK_SAMPLES):
            yield backend.to_numpy(to_tensor.batch(data[start : start + CHUNK_SAMPLES]).data)
        return
    from convstack.data.loader import DataLoader  # the loader imports datasets, which import transforms

    for inputs, *_ in DataLoader(data, batch_size=CHUNK_SAMPLES, prefetch=0, seed=0):
        if inputs.data.ndim != 4:
            raise ValueError(f"channel_stats: expected the dataset to give (C, H, W) images, received a batch "
                             f"of shape {tuple(inputs.shape)}")
        yield backend.to_numpy(inputs.data)


def channel_stats(data) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation (population, ddof=0) of a set of images.

    Computed in float64, chunk by chunk (Chan et al. 1979's pairwise merge of means and
    squared deviations), so the whole split is never converted to float at once.

    Args:
        data: uint8 or float images (N, H, W) / (N, C, H, W) (uint8 scaled to [0, 1] as
            ``ToTensor`` does), or a dataset whose samples are (C, H, W) images; use the
            training split only.

    Returns:
        ``(mean, std)``, tuples with one float per channel, ready for ``Normalize(mean, std)``.

    Examples:
        >>> channel_stats(numpy.full((2, 1, 3, 3), 255, numpy.uint8))
        ((1.0,), (0.0,))
    """
    count, mean, squares = 0, None, None
    for chunk in _chunks(data):
        chunk = chunk.astype(numpy.float64)
        pixels = chunk.shape[0] * chunk.shape[2] * chunk.shape[3]
        chunk_mean = chunk.mean(axis=(0, 2, 3))
        chunk_squares = ((chunk - chunk_mean[:, None, None]) ** 2).sum(axis=(0, 2, 3))
        if mean is None:
            count, mean, squares = pixels, chunk_mean, chunk_squares
            continue
        total = count + pixels
        delta = chunk_mean - mean
        mean = mean + delta * (pixels / total)
        squares = squares + chunk_squares + delta**2 * (count * pixels / total)
        count = total
    if mean is None or count == 0:
        raise ValueError("channel_stats: received no images")
    std = numpy.sqrt(squares / count)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
