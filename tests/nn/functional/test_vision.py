"""pixel_shuffle, pixel_unshuffle and channel_shuffle: parity with PyTorch (values and gradients) over
batch layouts including empty and unbatched ones, round trips, worked layouts and errors."""

import doctest
import importlib

import numpy as np
import pytest
from tests.helpers import check_against_torch, check_gradients

import convstack as cs
import convstack.nn.functional as F


def _torch_functional():
    return pytest.importorskip("torch").nn.functional


@pytest.mark.parametrize("shape, factor", [((2, 8, 3, 4), 2), ((18, 2, 3), 3), ((2, 3, 4, 2, 2), 2),
                                           ((1, 5, 2, 3), 1)])
def test_pixel_shuffle_matches_torch(shape, factor, rng):
    TF = _torch_functional()
    check_against_torch(lambda x: F.pixel_shuffle(x, factor), lambda x: TF.pixel_shuffle(x, factor),
                        [rng.standard_normal(shape).astype(np.float32)], rtol=0, atol=0)


@pytest.mark.parametrize("shape, factor", [((2, 2, 6, 4), 2), ((2, 6, 9), 3), ((2, 3, 1, 4, 2), 2)])
def test_pixel_unshuffle_matches_torch(shape, factor, rng):
    TF = _torch_functional()
    check_against_torch(lambda x: F.pixel_unshuffle(x, factor), lambda x: TF.pixel_unshuffle(x, factor),
                        [rng.standard_normal(shape).astype(np.float32)], rtol=0, atol=0)


@pytest.mark.parametrize("shape, groups", [((2, 6, 3, 3), 3), ((2, 6, 5), 2), ((1, 8, 2, 2, 2), 4), ((0, 6, 3), 3),
                                           ((2, 4, 3), 1), ((2, 4, 3), 4)])
def test_channel_shuffle_matches_torch(shape, groups, rng):
    TF = _torch_functional()
    check_against_torch(lambda x: F.channel_shuffle(x, groups), lambda x: TF.channel_shuffle(x, groups),
                        [rng.standard_normal(shape).astype(np.float32)], rtol=0, atol=0)


def test_finite_differences(rng):
    check_gradients(lambda x: F.pixel_shuffle(x, 2), [rng.standard_normal((1, 4, 2, 3))])
    check_gradients(lambda x: F.pixel_unshuffle(x, 2), [rng.standard_normal((1, 1, 4, 2))])
    check_gradients(lambda x: F.channel_shuffle(x, 2), [rng.standard_normal((2, 4, 3))])


def test_empty_batches_keep_the_formula_shapes():
    """PyTorch 2.13 mishandles these: pixel_unshuffle returns an empty batch unchanged, (0, 1, 4, 4), and
    pixel_shuffle's backward refuses its own gradient; convstack follows the shape formulas both ways."""
    x = cs.zeros(0, 4, 3, 3, requires_grad=True)
    out = F.pixel_shuffle(x, 2)
    assert out.shape == (0, 1, 6, 6)
    out.sum().backward()
    assert x.grad.shape == (0, 4, 3, 3)
    assert F.pixel_unshuffle(cs.zeros(0, 1, 4, 4), 2).shape == (0, 4, 2, 2)
    assert F.pixel_shuffle(cs.zeros(2, 0, 4, 3, 3), 2).shape == (2, 0, 1, 6, 6)


def test_unshuffle_inverts_shuffle(rng):
    x = cs.tensor(rng.standard_normal((2, 12, 3, 5)))
    np.testing.assert_array_equal(F.pixel_unshuffle(F.pixel_shuffle(x, 2), 2).numpy(), x.numpy())


def test_worked_layouts():
    # channel c * r^2 + i * r + j lands at sub-pixel (i, j) of channel c
    out = F.pixel_shuffle(cs.arange(8.0).reshape(1, 8, 1, 1), 2).numpy()
    np.testing.assert_array_equal(out[0], [[[0, 1], [2, 3]], [[4, 5], [6, 7]]])
    # two groups of three: (0 1 2)(3 4 5) -> 0 3 1 4 2 5
    np.testing.assert_array_equal(F.channel_shuffle(cs.arange(6.0).reshape(1, 6, 1), 2).numpy().ravel(),
                                  [0, 3, 1, 4, 2, 5])


ERRORS = {
    "shuffle-rank": (lambda: F.pixel_shuffle(cs.ones(8, 3), 2),
                     "pixel_shuffle: expected an input of at least 3 dimensions (*, C r^2, H, W), received a 2-D "
                     "input of shape (8, 3)"),
    "shuffle-factor": (lambda: F.pixel_shuffle(cs.ones(1, 8, 3, 3), 0),
                       "pixel_shuffle: invalid value for argument `upscale_factor`: expected a positive integer, "
                       "received 0 (input shape (1, 8, 3, 3))"),
    "shuffle-channels": (lambda: F.pixel_shuffle(cs.ones(1, 6, 3, 3), 2),
                         "pixel_shuffle: expected the channel dimension (size 6) to be divisible by upscale_factor^2 "
                         "= 4 (input shape (1, 6, 3, 3))"),
    "unshuffle-height": (lambda: F.pixel_unshuffle(cs.ones(1, 1, 5, 4), 2),
                         "pixel_unshuffle: expected the height (size 5) to be divisible by downscale_factor 2 (input "
                         "shape (1, 1, 5, 4))"),
    "unshuffle-factor": (lambda: F.pixel_unshuffle(cs.ones(1, 1, 4, 4), 1.0),
                         "pixel_unshuffle: invalid value for argument `downscale_factor`: expected a positive "
                         "integer, received 1.0 (input shape (1, 1, 4, 4))"),
    "channel-rank": (lambda: F.channel_shuffle(cs.ones(2, 6), 3),
                     "channel_shuffle: expected an input of at least 3 dimensions (N, C, *), received a 2-D input of "
                     "shape (2, 6)"),
    "channel-groups": (lambda: F.channel_shuffle(cs.ones(2, 5, 3), 3),
                       "channel_shuffle: expected the channel dimension (size 5) to be divisible by groups 3 (input "
                       "shape (2, 5, 3))"),
    "channel-zero": (lambda: F.channel_shuffle(cs.ones(2, 6, 3), 0),
                     "channel_shuffle: invalid value for argument `groups`: expected a positive integer, received 0 "
                     "(input shape (2, 6, 3))"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors_are_pinned(case):
    call, message = ERRORS[case]
    with pytest.raises(ValueError) as error:
        call()
    assert str(error.value) == message


def test_docstring_examples_run():
    module = importlib.import_module("convstack.nn.functional.vision")
    result = doctest.testmod(module, extraglobs={"cs": cs, "F": F}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
