"""Argument types for the command line: each checks one value and says what it expected."""

from __future__ import annotations

import argparse
import re


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, received {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, received {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, received {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, received {text!r}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, received {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a non-negative number, received {text!r}")
    return value


def unit_interval(text: str) -> float:
    value = non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), received {text!r}")
    return value


def input_shape(text: str) -> tuple:
    """``1x28x28`` -> (1, 28, 28)."""
    if not re.fullmatch(r"\d+(x\d+)*", text) or any(int(p) < 1 for p in text.split("x")):
        raise argparse.ArgumentTypeError(
            f"expected a shape like 1x28x28 (channels x height x width), received {text!r}"
        )
    return tuple(int(p) for p in text.split("x"))


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (and exit code 2), with no usage dump."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
