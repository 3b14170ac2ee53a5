"""Build the lectures' pattern [(CONV-RELU)*N-POOL?]*M-(FC-RELU)*K-FC from a short string.

The spec is a dash-separated list of layers; parentheses with ``xN`` repeat a group:

    conv32        3x3 convolution to 32 channels, 'same' padding, then ReLU
    conv32k5s2p0  kernel 5, stride 2, padding 0 (any of k, s, p may be given)
    pool, pool3   max pooling 2x2 (or 3x3), stride = kernel
    avgpool2      average pooling
    fc128         fully connected to 128 units, then ReLU (a Flatten is inserted before the first)
    drop0.5       dropout with p = 0.5

A final fully connected layer to ``num_classes`` (the pattern's last FC) is always added.

    >>> model = from_spec("(conv32-conv32-pool)x2-fc256", in_channels=1, num_classes=10, input_size=28)
"""

from __future__ import annotations

import re

from convstack import nn
from convstack.backend import check_allocation

_CONV = re.compile(r"conv(\d+)((?:[ksp]\d+)*)$")
_OPTION = re.compile(r"([ksp])(\d+)")
_POOL = re.compile(r"(max|avg)?pool(\d*)$")
_FC = re.compile(r"fc(\d+)$")
_DROP = re.compile(r"drop(0?\.\d+|0|1(?:\.0)?)$")
_GROUP = re.compile(r"\(([^()]*)\)x(\d+)")
MAX_LAYERS = 10_000  # a spec that repeats past this is refused before it is expanded


def expand(spec: str) -> list[str]:
    """The spec's layer tokens with every ``(group)xN`` repeated N times (nesting allowed, ``MAX_LAYERS`` at most)."""
    text = spec.replace(" ", "")

    def repeat(match) -> str:
        group, times = match.group(1), int(match.group(2))
        count = sum(1 for token in group.split("-") if token) * times
        if count > MAX_LAYERS:
            raise ValueError(f"from_spec: invalid value for argument `spec`: ({group[:40]})x{times} makes {count:,} "
                             f"layers, more than {MAX_LAYERS:,}")
        return "-".join([group] * times)

    while True:
        expanded = _GROUP.sub(repeat, text)
        if expanded == text:
            break
        text = expanded
    if "(" in text or ")" in text:
        raise ValueError(f"from_spec: invalid value for argument `spec`: unbalanced or unrepeated group in {spec!r}")
    tokens = [t for t in text.split("-") if t]
    if len(tokens) > MAX_LAYERS:
        raise ValueError(f"from_spec: invalid value for argument `spec`: {len(tokens):,} layers, more than "
                         f"{MAX_LAYERS:,}")
    if not tokens:
        raise ValueError(
            f"from_spec: invalid value for argument `spec`: expected at least one layer, received {spec!r}"
        )
    return tokens


def from_spec(spec: str, in_channels: int = 1, num_classes: int = 10, input_size: int = 28) -> nn.Sequential:
    """A ``Sequential`` built from ``spec`` (see the module docstring).

    The whole model is planned first: a spec whose parameters cannot fit in memory (one
    huge layer, or many that add up) raises ``MemoryError`` naming the size before any
    weight is allocated.

    Shape:
        input (N, in_channels, input_size, input_size) -> output (N, num_classes)
    """
    plan = _plan(spec, in_channels, num_classes, input_size)
    parameters = sum(count for _, _, count in plan)
    largest, _, most = max(plan, key=lambda step: step[2])
    check_allocation(4 * parameters + 8 * most, f"from_spec: the {parameters:,} float32 parameters of {spec!r}",
                     f"{len(plan)} layers, the largest {largest} with {most:,}, drawn in float64 to initialise it",
                     hint="choose smaller layers")
    layers = []
    for token, build, _ in plan:
        try:
            layers += build()
        except MemoryError as error:  # memory taken meanwhile: still refused before the layer allocates
            raise MemoryError(f"spec layer {token!r}: {error}") from None
    return nn.Sequential(*layers)


def _plan(spec: str, in_channels: int, num_classes: int, input_size: int) -> list:
    """[(token, build: () -> [modules], parameter count)] for every layer of ``spec``, the classifier last."""
    plan = []
    channels, side, flat = in_channels, input_size, None
    for token in expand(spec):
        step, channels, side, flat = _plan_layer(token, spec, channels, side, flat)
        plan.append(step)
        if side < 1:
            raise ValueError(
                f"from_spec: layer {token!r} in spec {spec!r} shrinks a {input_size}x{input_size} input to nothing"
            )
    flatten = [nn.Flatten] if flat is None else []
    features = channels * side * side if flat is None else flat
    plan.append((f"fc{num_classes} (the classes)", lambda: [f() for f in flatten] + [nn.Linear(features, num_classes)],
                 (features + 1) * num_classes))
    return plan


def _plan_layer(token: str, spec: str, channels: int, side: int, flat):
    """One token's (token, build, parameters) and the new (channels, side, flat features)."""
    if match := _CONV.match(token):
        if flat is not None:
            raise ValueError(f"from_spec: convolution {token!r} after a fully connected layer in {spec!r}")
        out = int(match.group(1))
        options = dict(_OPTION.findall(match.group(2)))
        kernel = int(options.get("k", 3))
        stride = int(options.get("s", 1))
        padding = int(options.get("p", kernel // 2))

        def build(c=channels):
            return [nn.Conv2d(c, out, kernel, stride=stride, padding=padding), nn.ReLU()]

        step = (token, build, out * (channels * kernel * kernel + 1))
        return step, out, (side + 2 * padding - kernel) // stride + 1, flat
    if match := _POOL.match(token):
        if flat is not None:
            raise ValueError(f"from_spec: pooling {token!r} after a fully connected layer in {spec!r}")
        size = int(match.group(2) or 2)
        pool = nn.AvgPool2d if match.group(1) == "avg" else nn.MaxPool2d
        return (token, lambda: [pool(size)], 0), channels, (side - size) // size + 1, flat
    if match := _FC.match(token):
        units = int(match.group(1))
        features = channels * side * side if flat is None else flat
        flatten = [nn.Flatten] if flat is None else []

        def build():
            return [f() for f in flatten] + [nn.Linear(features, units), nn.ReLU()]

        return (token, build, (features + 1) * units), channels, side, units
    if match := _DROP.match(token):
        return (token, lambda: [nn.Dropout(float(match.group(1)))], 0), channels, side, flat
    raise ValueError(
        f"from_spec: invalid layer {token!r} in spec {spec!r}: expected convC[kK][sS][pP], pool[K], "
        "avgpool[K], fcN or dropP"
    )
