"""Channel rearrangements for vision models: ``pixel_shuffle`` / ``pixel_unshuffle`` (sub-pixel
convolution, Shi et al. 2016) and ``channel_shuffle`` (ShuffleNet, Zhang et al. 2018).

Each is a reshape, one transpose and a reshape back, built from the differentiable shape ops,
so the backward pass is the inverse rearrangement (no arithmetic, exact in any dtype).
"""

from __future__ import annotations

import numbers

from convstack.nn.functional._utils import invalid
from convstack.tensor import Tensor, as_tensor


def _factor(op: str, argument: str, value, input: Tensor) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise invalid(op, argument, "a positive integer", value, f"input shape {input.shape}")
    return int(value)


def _at_least(op: str, input: Tensor, rank: int, layout: str) -> None:
    if input.ndim < rank:
        raise ValueError(f"{op}: expected an input of at least {rank} dimensions {layout}, received a {input.ndim}-D "
                         f"input of shape {input.shape}")


def pixel_shuffle(input, upscale_factor: int) -> Tensor:
    """Rearrange (*, C r^2, H, W) into (*, C, H r, W r): channel ``c r^2 + i r + j`` becomes the
    sub-pixel (i, j) of channel c.

    Args:
        input: at least 3-D, ``*`` any batch dimensions (possibly empty or of size 0).
        upscale_factor: r, a positive integer; the channels must be divisible by r^2.

    Shape:
        - Input: (*, C r^2, H, W). Output: (*, C, H r, W r).

    Examples:
        >>> F.pixel_shuffle(cs.arange(4.0).reshape(1, 4, 1, 1), 2)
        tensor([[[[0., 1.],
                  [2., 3.]]]])
    """
    op = "pixel_shuffle"
    input = as_tensor(input)
    _at_least(op, input, 3, "(*, C r^2, H, W)")
    r = _factor(op, "upscale_factor", upscale_factor, input)
    *batch, channels, height, width = input.shape
    if channels % (r * r):
        raise ValueError(f"{op}: expected the channel dimension (size {channels}) to be divisible by "
                         f"upscale_factor^2 = {r * r} (input shape {input.shape})")
    lead = len(batch)
    split = input.reshape(*batch, channels // (r * r), r, r, height, width)  # (*, C, r, r, H, W)
    order = tuple(range(lead)) + tuple(lead + d for d in (0, 3, 1, 4, 2))  # (*, C, H, r, W, r)
    return split.permute(*order).reshape(*batch, channels // (r * r), height * r, width * r)


def pixel_unshuffle(input, downscale_factor: int) -> Tensor:
    """Rearrange (*, C, H r, W r) into (*, C r^2, H, W), the inverse of ``pixel_shuffle``.

    Args:
        input: at least 3-D; height and width divisible by r.
        downscale_factor: r, a positive integer.

    Shape:
        - Input: (*, C, H r, W r). Output: (*, C r^2, H, W).

    Examples:
        >>> F.pixel_unshuffle(cs.arange(4.0).reshape(1, 1, 2, 2), 2).reshape(-1)
        tensor([0., 1., 2., 3.])
    """
    op = "pixel_unshuffle"
    input = as_tensor(input)
    _at_least(op, input, 3, "(*, C, H r, W r)")
    r = _factor(op, "downscale_factor", downscale_factor, input)
    *batch, channels, height, width = input.shape
    for name, size in (("height", height), ("width", width)):
        if size % r:
            raise ValueError(f"{op}: expected the {name} (size {size}) to be divisible by downscale_factor {r} "
                             f"(input shape {input.shape})")
    lead = len(batch)
    split = input.reshape(*batch, channels, height // r, r, width // r, r)  # (*, C, H, r, W, r)
    order = tuple(range(lead)) + tuple(lead + d for d in (0, 2, 4, 1, 3))  # (*, C, r, r, H, W)
    return split.permute(*order).reshape(*batch, channels * r * r, height // r, width // r)


def channel_shuffle(input, groups: int) -> Tensor:
    """Interleave the channels of ``groups`` groups: (N, g, C/g, *) transposed to (N, C/g, g, *).

    After a grouped convolution, this lets the next grouped convolution see channels of every
    group (ShuffleNet's channel shuffle).

    Args:
        input: (N, C, *), at least 3-D; C divisible by ``groups``.
        groups: a positive integer.

    Shape:
        - Input: (N, C, *). Output: (N, C, *).

    Examples:
        >>> F.channel_shuffle(cs.arange(6.0).reshape(1, 6, 1), 2).reshape(-1)
        tensor([0., 3., 1., 4., 2., 5.])
    """
    op = "channel_shuffle"
    input = as_tensor(input)
    _at_least(op, input, 3, "(N, C, *)")
    g = _factor(op, "groups", groups, input)
    batch, channels, *spatial = input.shape
    if channels % g:
        raise ValueError(f"{op}: expected the channel dimension (size {channels}) to be divisible by groups {g} "
                         f"(input shape {input.shape})")
    split = input.reshape(batch, g, channels // g, *spatial)  # (N, g, C/g, *)
    return split.transpose(1, 2).reshape(batch, channels, *spatial)
