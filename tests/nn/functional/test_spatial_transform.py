"""affine_grid and grid_sample: every mode x padding mode x align_corners, 2-D and 3-D, against
PyTorch (values and both gradients), finite differences, worked examples, edge cases, errors."""

import doctest
import importlib
import itertools
import warnings

import numpy as np
import pytest
from tests.helpers import check_against_torch, check_gradients

import convstack as cs
import convstack.nn.functional as F

MODES_2D = ("bilinear", "nearest", "bicubic")
MODES_3D = ("bilinear", "nearest")
PADDINGS = ("zeros", "border", "reflection")


def _torch_functional():
    return pytest.importorskip("torch").nn.functional


def _grid(rng, shape, spread=1.3):
    """Positions across and beyond [-1, 1], none within 1e-4 of a pixel boundary for the sizes used."""
    return rng.uniform(-spread, spread, shape)


def _cases():
    for spatial, modes in ((2, MODES_2D), (3, MODES_3D)):
        for mode, padding, align_corners in itertools.product(modes, PADDINGS, (False, True)):
            yield spatial, mode, padding, align_corners


SHAPES = {2: ((2, 3, 4, 5), (2, 6, 7, 2)), 3: ((2, 2, 3, 4, 5), (2, 2, 3, 4, 3))}


@pytest.mark.parametrize("spatial, mode, padding, align_corners", list(_cases()))
def test_grid_sample_matches_torch_in_float64(spatial, mode, padding, align_corners, rng):
    TF = _torch_functional()
    input_shape, grid_shape = SHAPES[spatial]
    # reflection is checked over several folds (|g| up to 3.5), the others a little beyond the border
    grid = _grid(rng, grid_shape, 3.5 if padding == "reflection" else 1.3)
    check_against_torch(lambda x, g: F.grid_sample(x, g, mode, padding, align_corners),
                        lambda x, g: TF.grid_sample(x, g, mode, padding, align_corners),
                        [rng.standard_normal(input_shape), grid], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", MODES_2D)
def test_grid_sample_matches_torch_in_float32(mode, rng):
    TF = _torch_functional()
    x, grid = rng.standard_normal((2, 3, 5, 6)).astype(np.float32), _grid(rng, (2, 4, 3, 2)).astype(np.float32)
    check_against_torch(lambda x, g: F.grid_sample(x, g, mode, "border", False),
                        lambda x, g: TF.grid_sample(x, g, mode, "border", False), [x, grid])


@pytest.mark.parametrize("mode, padding, align_corners", [("bilinear", "zeros", False), ("bilinear", "border", True),
                                                          ("bilinear", "reflection", False),
                                                          ("bicubic", "zeros", True), ("bicubic", "reflection", False),
                                                          ("nearest", "zeros", False)])
def test_grid_sample_finite_differences(mode, padding, align_corners, rng):
    check_gradients(lambda x, g: F.grid_sample(x, g, mode, padding, align_corners),
                    [rng.standard_normal((1, 2, 3, 4)), _grid(rng, (1, 2, 3, 2), 1.8)])


def test_trilinear_grid_sample_finite_differences(rng):
    check_gradients(lambda x, g: F.grid_sample(x, g, "bilinear", "reflection", True),
                    [rng.standard_normal((1, 1, 2, 3, 3)), _grid(rng, (1, 1, 2, 2, 3), 1.8)])


@pytest.mark.parametrize("input_shape, grid_shape", [((0, 3, 4, 5), (0, 6, 7, 2)), ((2, 3, 4, 5), (2, 0, 7, 2)),
                                                     ((2, 0, 4, 5), (2, 2, 3, 2)), ((0, 2, 3, 4, 5), (0, 1, 2, 2, 3)),
                                                     ((1, 1, 1, 1), (1, 2, 2, 2))])
def test_grid_sample_empty_and_single_pixel_inputs_match_torch(input_shape, grid_shape, rng):
    TF = _torch_functional()
    check_against_torch(lambda x, g: F.grid_sample(x, g, align_corners=False),
                        lambda x, g: TF.grid_sample(x, g, align_corners=False),
                        [rng.standard_normal(input_shape), _grid(rng, grid_shape)], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("size", [(2, 3, 4, 5), (2, 1, 1, 1), (2, 1, 1, 6), (2, 3, 2, 4, 5), (1, 1, 1, 3, 1)])
@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_grid_matches_torch(size, align_corners, rng):
    TF = _torch_functional()
    spatial = len(size) - 2
    theta = rng.standard_normal((size[0], spatial, spatial + 1)).astype(np.float32)
    with warnings.catch_warnings():  # PyTorch warns about unit-size grids with align_corners=True
        warnings.simplefilter("ignore", UserWarning)
        check_against_torch(lambda t: F.affine_grid(t, size, align_corners),
                            lambda t: TF.affine_grid(t, size, align_corners), [theta])


def test_affine_grid_finite_differences(rng):
    check_gradients(lambda t: F.affine_grid(t, (2, 1, 3, 4), False), [rng.standard_normal((2, 2, 3))])
    check_gradients(lambda t: F.affine_grid(t, (1, 1, 2, 2, 3), True), [rng.standard_normal((1, 3, 4))])


def test_identity_transform_reproduces_the_input(rng):
    for size in ((2, 3, 5, 7), (1, 2, 3, 4, 5)):
        spatial = len(size) - 2
        x = cs.tensor(rng.standard_normal(size))
        identity = cs.tensor(np.tile(np.eye(spatial, spatial + 1), (size[0], 1, 1)))
        for align_corners in (False, True):
            grid = F.affine_grid(identity, size, align_corners)
            for mode in ("bilinear", "nearest") + (("bicubic",) if spatial == 2 else ()):
                out = F.grid_sample(x, grid, mode, "zeros", align_corners)
                np.testing.assert_allclose(out.numpy(), x.numpy(), atol=1e-12, err_msg=f"{size} {mode}")


def test_worked_examples():
    image = cs.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    # align_corners=True: (-1, -1) is the centre of the top-left pixel; (1, 0) halfway down the right column
    grid = cs.tensor([[[[-1.0, -1.0], [1.0, 0.0]]]])
    np.testing.assert_allclose(F.grid_sample(image, grid, align_corners=True).numpy().ravel(), [0.0, 2.0])
    # align_corners=False: (-1, -1) is the top-left pixel's outer corner, a quarter of it inside
    np.testing.assert_allclose(F.grid_sample(image, grid, align_corners=False).numpy().ravel(), [0.0, 1.0])
    np.testing.assert_allclose(F.grid_sample(image, grid, padding_mode="border", align_corners=False).numpy().ravel(),
                               [0.0, 2.0])
    # x' = x + 1 reads halfway between the columns, then halfway between the right column and the zeros outside
    shift = cs.tensor([[[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]])
    shifted = F.grid_sample(image, F.affine_grid(shift, (1, 1, 2, 2), True), align_corners=True)
    np.testing.assert_allclose(shifted.numpy().ravel(), [0.5, 0.5, 2.5, 1.5])


def test_non_finite_positions_read_as_far_outside():
    image = cs.tensor(np.arange(12.0).reshape(1, 1, 3, 4))
    grid = cs.tensor([[[[np.inf, 0.0], [-np.inf, 0.0], [np.nan, 0.0], [1e30, 0.0]]]], dtype=cs.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for mode in MODES_2D:
            np.testing.assert_array_equal(F.grid_sample(image, grid, mode, "zeros", False).numpy(), 0)
        border = F.grid_sample(image, grid, "bilinear", "border", True).numpy().ravel()
    np.testing.assert_allclose(border[[0, 1, 3]], [7.0, 4.0, 7.0])  # +-inf clip to the right / left column


ERRORS = {
    "mode": (lambda: F.grid_sample(cs.ones(1, 1, 2, 2), cs.zeros(1, 1, 1, 2), mode="linear"),
             "grid_sample: invalid value for argument `mode`: expected one of 'bilinear', 'nearest', 'bicubic', "
             "received 'linear' (input shape (1, 1, 2, 2), grid shape (1, 1, 1, 2))"),
    "padding": (lambda: F.grid_sample(cs.ones(1, 1, 2, 2), cs.zeros(1, 1, 1, 2), padding_mode="circular"),
                "grid_sample: invalid value for argument `padding_mode`: expected one of 'zeros', 'border', "
                "'reflection', received 'circular' (input shape (1, 1, 2, 2), grid shape (1, 1, 1, 2))"),
    "align": (lambda: F.grid_sample(cs.ones(1, 1, 2, 2), cs.zeros(1, 1, 1, 2), align_corners=1),
              "grid_sample: invalid value for argument `align_corners`: expected True, False or None, received 1"),
    "rank": (lambda: F.grid_sample(cs.ones(1, 2, 2), cs.zeros(1, 1, 2)),
             "grid_sample: expected a 4-D (N, C, H, W) or 5-D (N, C, D, H, W) input, received a 3-D input (input "
             "shape (1, 2, 2), grid shape (1, 1, 2))"),
    "grid-batch": (lambda: F.grid_sample(cs.ones(2, 1, 2, 2), cs.zeros(1, 1, 1, 2)),
                   "grid_sample: expected a grid (N, H_out, W_out, 2) with the input's batch size N = 2 (input shape "
                   "(2, 1, 2, 2), grid shape (1, 1, 1, 2))"),
    "grid-last": (lambda: F.grid_sample(cs.ones(1, 1, 2, 2, 2), cs.zeros(1, 1, 1, 1, 2)),
                  "grid_sample: expected a grid (N, D_out, H_out, W_out, 3) with the input's batch size N = 1 (input "
                  "shape (1, 1, 2, 2, 2), grid shape (1, 1, 1, 1, 2))"),
    "bicubic-3d": (lambda: F.grid_sample(cs.ones(1, 1, 2, 2, 2), cs.zeros(1, 1, 1, 1, 3), mode="bicubic"),
                   "grid_sample: invalid value for argument `mode`: expected 'bilinear' or 'nearest' for a 5-D input "
                   "(bicubic is 2-D only), received 'bicubic' (input shape (1, 1, 2, 2, 2), grid shape "
                   "(1, 1, 1, 1, 3))"),
    "empty-spatial": (lambda: F.grid_sample(cs.ones(1, 1, 0, 2), cs.zeros(1, 1, 1, 2)),
                      "grid_sample: expected non-empty spatial dimensions in the input (input shape (1, 1, 0, 2), "
                      "grid shape (1, 1, 1, 2))"),
    "affine-size": (lambda: F.affine_grid(cs.zeros(1, 2, 3), (1, 1, 4)),
                    "affine_grid: invalid value for argument `size`: expected a tuple (N, C, H, W) or (N, C, D, H, W) "
                    "of integers, received (1, 1, 4)"),
    "affine-zero": (lambda: F.affine_grid(cs.zeros(1, 2, 3), (1, 1, 0, 4)),
                    "affine_grid: invalid value for argument `size`: expected positive sizes, received (1, 1, 0, 4)"),
    "affine-theta": (lambda: F.affine_grid(cs.zeros(2, 3, 3), (2, 1, 4, 4)),
                     "affine_grid: expected theta of shape (2, 2, 3) (N affine 2-D matrices) for size (2, 1, 4, 4), "
                     "received theta shape (2, 3, 3)"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors_are_pinned(case):
    call, message = ERRORS[case]
    with pytest.raises(ValueError) as error:
        call()
    assert str(error.value) == message


def test_dtype_errors():
    with pytest.raises(TypeError, match="grid_sample: expected a floating point input and a grid of the same dtype, "
                                        "received input dtype float32 and grid dtype float64"):
        F.grid_sample(cs.ones(1, 1, 2, 2), cs.zeros(1, 1, 1, 2, dtype=cs.float64))
    with pytest.raises(TypeError, match="affine_grid: expected a floating point theta, received dtype int64"):
        F.affine_grid(cs.tensor([[[1, 0, 0], [0, 1, 0]]]), (1, 1, 2, 2))


def test_docstring_examples_run():
    module = importlib.import_module("convstack.nn.functional.spatial_transform")
    result = doctest.testmod(module, extraglobs={"cs": cs, "F": F}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
