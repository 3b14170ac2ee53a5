"""What a layer computes: its feature maps for one input, and activation statistics per layer.

Both read the activations with forward hooks (``Module.register_forward_hook``), so any
named layer of any model can be looked at, and the hooks are removed afterwards.
"""

from __future__ import annotations

import numpy

from convstack.autograd import no_grad
from convstack.nn.modules.activation import ReLU
from convstack.tensor import Tensor
from convstack.vis import _plot
from convstack.vis._model import as_batch, find_layer, probing
from convstack.vis._plot import to_numpy


def feature_maps(model, layer_name: str, input, path=None, max_channels: int = 64):
    """The output of layer ``layer_name`` for ``input``, and a grid of its channels.

    Args:
        model: a ``convstack.nn.Module``; it runs in eval mode, its mode restored after.
        layer_name: a ``model.named_modules()`` name such as ``'features.3'``.
        input: one sample (C, H, W) or a batch (N, C, H, W), Tensor or array.
        path: PNG file to write (the first sample's channels, each scaled on its own);
            ``None`` draws nothing.
        max_channels: draw at most this many channels.

    Returns:
        The activations as a NumPy array: (C', H', W') for one sample, (N, C', H', W')
        for a batch (any output shape the layer has, e.g. (K,) after a Linear layer).

    Examples:
        >>> from convstack import nn
        >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
        >>> feature_maps(model, "0", numpy.zeros((1, 8, 8), numpy.float32)).shape
        (4, 6, 6)
    """
    layer = find_layer(model, layer_name, "feature_maps")
    batch, single = as_batch(model, input, "feature_maps")
    captured = []
    handle = layer.register_forward_hook(lambda module, args, output: captured.append(to_numpy(output.data)))
    try:
        with probing(model), no_grad():
            model(Tensor(batch))
    finally:
        handle.remove()
    if not captured:
        raise ValueError(f"feature_maps: layer {layer_name!r} did not run in the model's forward pass")
    maps = captured[-1]
    if path is not None:
        _draw_maps(maps[0], layer_name, path, max_channels)
    return maps[0] if single else maps


def _draw_maps(maps, layer_name, path, max_channels) -> None:
    if maps.ndim == 1:
        maps = maps[:, None, None]  # one value per unit: a 1x1 tile each
    elif maps.ndim == 2:
        maps = maps[None]
    elif maps.ndim > 3:
        raise ValueError(f"feature_maps: cannot draw activations of shape {maps.shape} (expected (C, H, W))")
    shown = maps[:max_channels]
    tiles = _plot.rescale(shown, axes=(1, 2))  # each channel on its own scale
    rows, columns = _plot.grid_shape(len(tiles))
    fig = _plot.figure(min(12.0, 1.1 * columns + 0.4), min(12.0, 1.1 * rows + 0.6))
    fig.suptitle(f"{layer_name}: {len(maps)} channels of {maps.shape[1]}x{maps.shape[2]}", fontsize=9)
    for index, tile in enumerate(tiles):
        _plot.show(fig.add_subplot(rows, columns, index + 1), tile, str(index), cmap="viridis")
    _plot.save(fig, path)


def activation_stats(model, input, path=None) -> dict:
    """Mean, spread and sparsity of every leaf layer's output for ``input``, read with forward hooks.

    Args:
        model: a ``convstack.nn.Module`` (run in eval mode, its mode restored after).
        input: a batch (N, C, H, W) (or one sample (C, H, W)); use a few hundred samples
            for meaningful dead-unit counts.
        path: PNG file for a bar chart of the statistics; ``None`` draws nothing.

    Returns:
        ``{layer_name: stats}`` in call order, where ``stats`` has ``type``, ``shape`` (one
        sample's output shape), ``mean``, ``std``, ``min``, ``max``, ``zero_fraction`` (the
        fraction of outputs exactly 0) and, for ``nn.ReLU`` layers, ``dead_fraction``: the
        fraction of units (channels for (N, C, ...) outputs) that are 0 for every sample and
        position, i.e. that pass no gradient for this input. A layer called several times
        pools all its calls.
    """
    batch, _ = as_batch(model, input, "activation_stats")
    outputs: dict = {}
    handles = []
    for name, module in model.named_modules():
        if name and not any(True for _ in module.children()):

            def record(module, args, output, name=name):
                if isinstance(output, Tensor):
                    outputs.setdefault(name, (module, []))[1].append(to_numpy(output.data))

            handles.append(module.register_forward_hook(record))
    try:
        with probing(model), no_grad():
            model(Tensor(batch))
    finally:
        for handle in handles:
            handle.remove()
    stats = {}
    for name, (module, arrays) in outputs.items():
        values = numpy.concatenate([a.reshape(a.shape[0], a.shape[1] if a.ndim > 1 else 1, -1) for a in arrays])
        # values: (N * calls, units, positions); units = channels for (N, C, ...) outputs
        entry = {
            "type": type(module).__name__,
            "shape": tuple(arrays[0].shape[1:]),
            "mean": float(values.mean()),
            "std": float(values.std()),
            "min": float(values.min()),
            "max": float(values.max()),
            "zero_fraction": float((values == 0).mean()),
        }
        if isinstance(module, ReLU):
            entry["dead_fraction"] = float((values == 0).all(axis=(0, 2)).mean())
        stats[name] = entry
    if path is not None:
        _draw_stats(stats, path)
    return stats


def _draw_stats(stats, path) -> None:
    names = list(stats)
    positions = numpy.arange(len(names))
    fig = _plot.figure(max(5.0, 0.5 * len(names) + 1.5), 5.0)
    top, bottom = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2)
    means = [stats[n]["mean"] for n in names]
    stds = [stats[n]["std"] for n in names]
    top.bar(positions, means, yerr=stds, color="#4c72b0", capsize=2)
    top.set_ylabel("mean ± std")
    top.set_xticks([])
    bottom.bar(positions, [stats[n]["zero_fraction"] for n in names], color="#999999", label="zero outputs")
    dead = [stats[n].get("dead_fraction", 0.0) for n in names]
    bottom.bar(positions, dead, color="#c44e52", label="dead units (ReLU)")
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("fraction")
    bottom.legend(fontsize=7)
    bottom.set_xticks(positions)
    bottom.set_xticklabels([f"{n}\n{stats[n]['type']}" for n in names], fontsize=6, rotation=45, ha="right")
    _plot.save(fig, path)
