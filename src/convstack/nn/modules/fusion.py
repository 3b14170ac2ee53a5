"""Running two adjacent layers as one op: ``following(module(x))`` computed in one pass where the pair allows it.

A layer that can absorb the layer after it defines ``fused_forward(following)``, returning a
callable ``input -> output`` equal to ``following(module(input))`` in values and gradients, or
None for any other follower (``BatchNorm`` absorbs a ``ReLU``). ``nn.Sequential`` asks each of
its layers about the next one; a model's own ``forward`` calls ``chain``.

A pair is never fused while anything watches its layers one by one: a forward (pre) hook or a
backward hook on either, or anomaly mode (which names the layer where a NaN appears).
"""

from __future__ import annotations

from convstack import anomaly


def _hooked(module) -> bool:
    return bool(module._forward_pre_hooks or module._forward_hooks or module._backward_hooks)


def fused(module, following):
    """The callable that runs ``following(module(input))`` as one op, or None where the pair does not fuse."""
    fuse = getattr(module, "fused_forward", None)
    if fuse is None or anomaly._enabled or _hooked(module) or _hooked(following):
        return None
    return fuse(following)


def chain(module, following, input):
    """``following(module(input))``, as one op where the pair fuses (see ``fused``)."""
    run = fused(module, following)
    return following(module(input)) if run is None else run(input)
