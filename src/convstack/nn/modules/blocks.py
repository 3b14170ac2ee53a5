"""Block containers that make ResNet and Inception blocks read like their diagrams.

``Residual(body, shortcut)`` is He et al. (2016)'s ``y = F(x) + x`` (or ``F(x) + W_s x`` with a
projection shortcut); ``Concat(*branches)`` is an Inception module's filter concatenation
(Szegedy et al. 2015). Child names give the state-dict keys: ``body.*`` and ``shortcut.*``;
``branches.0.*``, ``branches.1.*``, ...
"""

from __future__ import annotations

from convstack.functions import cat
from convstack.nn.modules.container import ModuleList
from convstack.nn.modules.module import Module


class Residual(Module):
    """``body(x) + shortcut(x)``, the shortcut being the identity when None.

    The two outputs must have the same shape (no broadcasting: a mismatch is a bug in the
    block, usually a missing projection shortcut). Add the activation after the sum with
    ``Sequential(Residual(...), ReLU())``, as ResNet does.

    Examples:
        >>> import convstack as cs
        >>> from convstack import nn
        >>> block = nn.Residual(nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16)),
        ...                     shortcut=nn.Conv2d(8, 16, 1, stride=2, bias=False))
        >>> block(cs.randn(1, 8, 6, 6)).shape
        (1, 16, 3, 3)
        >>> [name for name, _ in block.named_parameters()][-1]
        'shortcut.weight'
    """

    def __init__(self, body: Module, shortcut: Module | None = None):
        super().__init__()
        for name, module in (("body", body), ("shortcut", shortcut)):
            if module is not None and not isinstance(module, Module):
                raise TypeError(f"Residual: expected `{name}` to be a Module, received {type(module).__name__}")
        self.body = body
        self.shortcut = shortcut

    def forward(self, input):
        out = self.body(input)
        skip = input if self.shortcut is None else self.shortcut(input)
        if tuple(out.shape) != tuple(skip.shape):
            path = "identity shortcut" if self.shortcut is None else "shortcut"
            raise ValueError(f"Residual: the body's output shape {tuple(out.shape)} differs from the {path}'s "
                             f"{tuple(skip.shape)} (input shape {tuple(input.shape)})")
        return out + skip


class Concat(Module):
    """Run every branch on the same input and concatenate their outputs along ``dim`` (channels by default).

    Examples:
        >>> import convstack as cs
        >>> from convstack import nn
        >>> inception = nn.Concat(nn.Conv2d(4, 2, 1), nn.Conv2d(4, 3, 3, padding=1), nn.MaxPool2d(3, 1, 1))
        >>> inception(cs.randn(1, 4, 5, 5)).shape
        (1, 9, 5, 5)
    """

    def __init__(self, *branches: Module, dim: int = 1):
        super().__init__()
        if not branches:
            raise ValueError("Concat: expected at least one branch")
        for position, branch in enumerate(branches):
            if not isinstance(branch, Module):
                raise TypeError(f"Concat: expected branch {position} to be a Module, received {type(branch).__name__}")
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise ValueError(f"Concat: invalid value for argument `dim`: expected an integer, received {dim!r}")
        self.branches = ModuleList(branches)
        self.dim = dim

    def forward(self, input):
        outputs = [branch(input) for branch in self.branches]
        reference = outputs[0].shape
        axis = self.dim % len(reference)
        for out in outputs:
            if len(out.shape) != len(reference) or any(
                a != b for i, (a, b) in enumerate(zip(out.shape, reference)) if i != axis
            ):
                shapes = ", ".join(f"branch {i}: {tuple(o.shape)}" for i, o in enumerate(outputs))
                raise ValueError(f"Concat: branch outputs must match in every dimension but {self.dim}; "
                                 f"received {shapes}")
        return cat(outputs, dim=self.dim)

    def extra_repr(self) -> str:
        return "" if self.dim == 1 else f"dim={self.dim}"
