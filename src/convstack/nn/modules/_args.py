"""Constructor-argument checks shared by the layers, and ``get_config``.

A layer checks all its arguments in its constructor, at once: ``ArgumentCheck`` records
every bad argument and ``done()`` raises one ``ValueError`` listing them all (one line
each, in the format of ``nn.functional._utils.invalid``), so a user fixes a layer's
arguments in one go rather than one error at a time.
"""

from __future__ import annotations

import numbers

from convstack import backend
from convstack.nn.functional._utils import invalid, ntuple


class ArgumentCheck:
    """Normalise and check one layer's constructor arguments, collecting every error."""

    def __init__(self, op: str):
        self.op = op
        self.errors: list[ValueError] = []

    def fail(self, argument: str, expected: str, received) -> None:
        self.errors.append(invalid(self.op, argument, expected, received))

    def positive_int(self, argument: str, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            self.fail(argument, "a positive integer", value)
            return None
        return int(value)

    def integer(self, argument: str, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            self.fail(argument, "an integer", value)
            return None
        return int(value)

    def ints(self, argument: str, value, n: int, minimum: int = 1):
        """``value`` as a tuple of ``n`` ints ``>= minimum`` (None when invalid)."""
        try:
            return ntuple(value, n, self.op, argument, minimum=minimum)
        except ValueError as error:
            self.errors.append(error)
            return None

    def boolean(self, argument: str, value):
        if not isinstance(value, bool):
            self.fail(argument, "True or False", value)
        return value

    def choice(self, argument: str, value, choices: tuple):
        if not isinstance(value, str) or value not in choices:
            self.fail(argument, "one of " + ", ".join(repr(c) for c in choices), value)
        return value

    def number(self, argument: str, value, low=None, high=None, low_open=False, expected=None):
        """A real number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value <= high
        if not ok:
            self.fail(argument, expected or "a number", value)
            return None
        return float(value)

    def float_dtype(self, value):
        """``value`` (None: float32) as a floating NumPy dtype."""
        if value is None:
            return backend.DEFAULT_FLOAT_DTYPE
        try:
            dtype = backend.check_dtype(value, self.op)
        except TypeError:
            dtype = None
        if dtype is None or not backend.is_floating(dtype):
            self.fail("dtype", "float32 or float64", value)
            return None
        return dtype

    def done(self) -> None:
        """Raise every recorded error at once."""
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise ValueError("\n".join(str(e) for e in self.errors))


class Configurable:
    """``get_config()``: every constructor argument, so ``type(layer)(**layer.get_config())`` rebuilds it.

    A layer lists its constructor arguments in ``_config_keys``; each is read from the
    attribute of that name unless the layer overrides ``get_config``.
    """

    _config_keys: tuple = ()

    def get_config(self) -> dict:
        return {key: getattr(self, key) for key in self._config_keys}


def as_written(value):
    """An argument as the user wrote it (lists as tuples), kept only for ``repr``.

    PyTorch's pooling layers print their arguments unnormalised (``MaxPool2d(kernel_size=2, ...)``
    but ``AdaptiveAvgPool2d(output_size=(1, 1))``); convstack normalises them into tuples
    and keeps this copy so that ``repr`` still reads as PyTorch's.
    """
    return tuple(value) if isinstance(value, list) else value
