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

_CONV = re.compile(r"conv(\d+)((?:[ksp]\d+)*)$")
_OPTION = re.compile(r"([ksp])(\d+)")
_POOL = re.compile(r"(max|avg)?pool(\d*)$")
_FC = re.compile(r"fc(\d+)$")
_DROP = re.compile(r"drop(0?\.\d+|0|1(?:\.0)?)$")
_GROUP = re.compile(r"\(([^()]*)\)x(\d+)")


def expand(spec: str) -> list[str]:
    """The spec's layer tokens with every ``(group)xN`` repeated N times (nesting allowed)."""
    text = spec.replace(" ", "")
    while True:
        expanded = _GROUP.sub(lambda m: "-".join([m.group(1)] * int(m.group(2))), text)
        if expanded == text:
            break
        text = expanded
    if "(" in text or ")" in text:
        raise ValueError(f"from_spec: invalid value for argument `spec`: unbalanced or unrepeated group in {spec!r}")
    tokens = [t for t in text.split("-") if t]
    if not tokens:
        raise ValueError(
            f"from_spec: invalid value for argument `spec`: expected at least one layer, received {spec!r}"
        )
    return tokens


def from_spec(spec: str, in_channels: int = 1, num_classes: int = 10, input_size: int = 28) -> nn.Sequential:
    """A ``Sequential`` built from ``spec`` (see the module docstring).

    Shape:
        input (N, in_channels, input_size, input_size) -> output (N, num_classes)
    """
    layers = []
    channels, side, flat = in_channels, input_size, None
    for token in expand(spec):
        if match := _CONV.match(token):
            if flat is not None:
                raise ValueError(f"from_spec: convolution {token!r} after a fully connected layer in {spec!r}")
            out = int(match.group(1))
            options = dict(_OPTION.findall(match.group(2)))
            kernel = int(options.get("k", 3))
            stride = int(options.get("s", 1))
            padding = int(options.get("p", kernel // 2))
            layers += [nn.Conv2d(channels, out, kernel, stride=stride, padding=padding), nn.ReLU()]
            channels, side = out, (side + 2 * padding - kernel) // stride + 1
        elif match := _POOL.match(token):
            if flat is not None:
                raise ValueError(f"from_spec: pooling {token!r} after a fully connected layer in {spec!r}")
            size = int(match.group(2) or 2)
            layers.append(nn.AvgPool2d(size) if match.group(1) == "avg" else nn.MaxPool2d(size))
            side = (side - size) // size + 1
        elif match := _FC.match(token):
            if flat is None:
                flat = channels * side * side
                layers.append(nn.Flatten())
            units = int(match.group(1))
            layers += [nn.Linear(flat, units), nn.ReLU()]
            flat = units
        elif match := _DROP.match(token):
            layers.append(nn.Dropout(float(match.group(1))))
        else:
            raise ValueError(
                f"from_spec: invalid layer {token!r} in spec {spec!r}: expected convC[kK][sS][pP], pool[K], "
                "avgpool[K], fcN or dropP"
            )
        if side < 1:
            raise ValueError(
                f"from_spec: layer {token!r} in spec {spec!r} shrinks a {input_size}x{input_size} input to nothing"
            )
    if flat is None:
        flat = channels * side * side
        layers.append(nn.Flatten())
    layers.append(nn.Linear(flat, num_classes))
    return nn.Sequential(*layers)
