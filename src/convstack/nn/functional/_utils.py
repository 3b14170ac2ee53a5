"""Argument normalisation and the error messages that name op, argument, value and shapes."""

from __future__ import annotations

from collections.abc import Sequence


def invalid(op: str, argument: str, expected: str, received, context: str = "") -> ValueError:
    """A ``ValueError`` in convstack's one format for a bad argument.

    ``conv2d: invalid value for argument `stride`: expected positive integers, received (0, 1)
    (input shape (1, 3, 8, 8), weight shape (4, 3, 3, 3))``
    """
    message = f"{op}: invalid value for argument `{argument}`: expected {expected}, received {received!r}"
    if context:
        message += f" ({context})"
    return ValueError(message)


def ntuple(value, n: int, op: str, argument: str, context: str = "", minimum: int = 1) -> tuple:
    """``value`` (an int or a sequence of ``n`` ints) as a tuple of ``n`` ints ``>= minimum``."""
    if isinstance(value, bool):
        raise invalid(op, argument, f"an integer or a tuple of {n} integers", value, context)
    if isinstance(value, int):
        values = (value,) * n
    elif isinstance(value, Sequence) and not isinstance(value, str):
        values = tuple(value)
        if len(values) == 1:
            values = values * n
        if len(values) != n or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise invalid(op, argument, f"an integer or a tuple of {n} integers", value, context)
    else:
        raise invalid(op, argument, f"an integer or a tuple of {n} integers", value, context)
    if any(v < minimum for v in values):
        bound = "positive integers" if minimum == 1 else f"integers >= {minimum}"
        raise invalid(op, argument, bound, value, context)
    return values


def shape_context(**shapes) -> str:
    """``"input shape (1, 3, 8, 8), weight shape (4, 3, 3, 3)"``"""
    return ", ".join(f"{name} shape {tuple(shape)}" for name, shape in shapes.items())


def check_rank(op: str, input_shape, spatial_dims: int, allow_unbatched: bool = True) -> None:
    """Inputs are (N, C, *spatial) or, unbatched, (C, *spatial)."""
    ranks = (spatial_dims + 2, spatial_dims + 1) if allow_unbatched else (spatial_dims + 2,)
    if len(input_shape) not in ranks:
        expected = " or ".join(f"{r}-D" for r in ranks)
        layout = "(N, C, " + ", ".join(f"D{i + 1}" for i in range(spatial_dims)) + ")"
        raise ValueError(
            f"{op}: expected a {expected} input {layout}, received a {len(input_shape)}-D input "
            f"of shape {tuple(input_shape)}"
        )
