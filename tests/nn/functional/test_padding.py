"""pad: the four modes against PyTorch (values and gradients), cropping, N-d, finite differences, errors."""

import doctest
import importlib
import re

import numpy as np
import pytest
from tests.helpers import check_against_torch, check_gradients

import convstack as cs
import convstack.nn.functional as F

MODES = ["constant", "reflect", "replicate", "circular"]

# (input shape, pad) in combinations PyTorch supports for every mode
CASES = {
    "1d": ((2, 3, 6), (2, 3)),
    "1d-one-side": ((2, 3, 6), (0, 4)),
    "2d": ((2, 3, 5, 4), (1, 2, 3, 1)),
    "2d-unbatched": ((3, 5, 4), (3, 0, 2, 4)),
    "2d-crop-and-pad": ((2, 3, 5, 4), (-1, 2, 2, -3)),
    "2d-crop-only": ((1, 2, 5, 4), (-1, -1, -2, -1)),
    "3d": ((1, 2, 4, 3, 5), (1, 2, 2, 0, 1, 3)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("mode", MODES)
def test_pad_matches_torch(mode, case, dtype, rng):
    torch = pytest.importorskip("torch")
    shape, amounts = CASES[case]
    check_against_torch(
        lambda x: F.pad(x, amounts, mode=mode),
        lambda x: torch.nn.functional.pad(x, amounts, mode=mode),
        [rng.standard_normal(shape).astype(dtype)],
    )


@pytest.mark.parametrize("mode", MODES)
def test_pad_finite_differences(mode, rng):
    check_gradients(lambda x: F.pad(x, (2, 1, 1, 2), mode=mode), [rng.standard_normal((1, 3, 3))])


def test_constant_value_and_any_number_of_dims(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    amounts = (1, 0, 0, 2, 1, 1)  # all three dimensions, including the batch one
    expected = torch.nn.functional.pad(torch.tensor(x), amounts, value=-2.5).numpy()
    np.testing.assert_array_equal(F.pad(cs.tensor(x), amounts, value=-2.5).numpy(), expected)


def test_non_constant_modes_pad_four_trailing_dims(rng):
    x = rng.standard_normal((1, 2, 3, 2, 3, 2))
    out = F.pad(cs.tensor(x), (1, 1, 1, 1, 1, 1, 1, 1), mode="reflect").numpy()
    np.testing.assert_array_equal(out, np.pad(x, [(0, 0), (0, 0)] + [(1, 1)] * 4, mode="reflect"))


@pytest.mark.parametrize("mode, numpy_mode", [("replicate", "edge"), ("circular", "wrap"), ("reflect", "reflect")])
def test_largest_allowed_padding_matches_numpy(mode, numpy_mode, rng):
    x = rng.standard_normal((2, 4))
    amount = 3 if mode == "reflect" else 4
    out = F.pad(cs.tensor(x), (amount, amount), mode=mode).numpy()
    np.testing.assert_array_equal(out, np.pad(x, [(0, 0), (amount, amount)], mode=numpy_mode))


ERRORS = {
    "odd-length": (lambda: F.pad(cs.zeros(2, 3), (1, 2, 3)),
                   "pad: invalid value for argument `pad`: expected a tuple of an even number of integers, received "
                   "(1, 2, 3) (input shape (2, 3))"),
    "too-long": (lambda: F.pad(cs.zeros(3), (1, 1, 1, 1)),
                 "pad: invalid value for argument `pad`: expected at most 2 values (two per dimension), received "
                 "(1, 1, 1, 1) (input shape (3,))"),
    "reflect-too-large": (lambda: F.pad(cs.zeros(1, 2, 3), (3, 0), mode="reflect"),
                          "pad: invalid value for argument `pad`: expected reflect padding smaller than the size 3 of "
                          "dimension 2, received (3, 0) (input shape (1, 2, 3))"),
    "circular-too-large": (lambda: F.pad(cs.zeros(1, 2, 3), (0, 0, 3, 0), mode="circular"),
                           "pad: invalid value for argument `pad`: expected circular padding at most the size 2 of "
                           "dimension 1, received (0, 0, 3, 0) (input shape (1, 2, 3))"),
    "replicate-empty": (lambda: F.pad(cs.zeros(1, 0), (1, 1), mode="replicate"),
                        "pad: invalid value for argument `pad`: expected a non-empty dimension 1 to replicate, "
                        "received (1, 1) (input shape (1, 0))"),
    "negative-size": (lambda: F.pad(cs.zeros(1, 3), (-2, -2)),
                      "pad: invalid value for argument `pad`: expected amounts that leave dimension 1 (size 3) a "
                      "size >= 0, received (-2, -2) (input shape (1, 3))"),
    "mode": (lambda: F.pad(cs.zeros(1, 3), (1, 1), mode="zeros"),
             "pad: invalid value for argument `mode`: expected 'constant', 'reflect', 'replicate' or 'circular', "
             "received 'zeros'"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors(case):
    call, message = ERRORS[case]
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_docstring_examples_run():
    module = importlib.import_module("convstack.nn.functional.padding")
    result = doctest.testmod(module, extraglobs={"cs": cs, "F": F}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
