"""interpolate: every mode and align_corners against PyTorch (sizes and scale factors, up and down),
finite differences, the backward paths (reshape-sum, one-hot, matrices), worked examples and errors."""

import doctest
import importlib

import numpy as np
import pytest
from tests.helpers import check_against_torch, check_gradients

import convstack as cs
from convstack.nn import functional as F

U = importlib.import_module("convstack.nn.functional.upsample")  # the module: `F.upsample` is the function

SHAPES = {1: (2, 3, 5), 2: (2, 2, 4, 6), 3: (1, 2, 3, 4, 5)}
LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}
RESIZES = [
    dict(scale_factor=2),
    dict(scale_factor=3),
    dict(scale_factor=1.7),
    dict(scale_factor=0.5),
    dict(scale_factor=2.5, recompute_scale_factor=True),
    dict(size=7),
    dict(size=2),
    dict(size=1),
]


def _cases():
    for spatial in (1, 2, 3):
        for mode in ("nearest", "nearest-exact", "area", LINEAR[spatial]):
            for align_corners in ((False, True) if mode == LINEAR[spatial] else (None,)):
                for resize in RESIZES:
                    yield spatial, mode, align_corners, resize


@pytest.mark.parametrize("spatial, mode, align_corners, resize", list(_cases()))
def test_interpolate_matches_torch(spatial, mode, align_corners, resize, rng):
    x = rng.standard_normal(SHAPES[spatial]).astype(np.float32)
    kwargs = dict(mode=mode, align_corners=align_corners, **resize)
    check_against_torch(lambda t: F.interpolate(t, **kwargs),
                        lambda t: pytest.importorskip("torch").nn.functional.interpolate(t, **kwargs), [x])


@pytest.mark.parametrize("size", [(3, 9), (8, 5), (12, 18), (4, 6)])
@pytest.mark.parametrize("mode, align_corners", [("nearest", None), ("bilinear", False), ("bilinear", True)])
def test_interpolate_to_mixed_sizes_matches_torch_in_float64(size, mode, align_corners, rng):
    x = rng.standard_normal((2, 3, 4, 6))
    kwargs = dict(size=size, mode=mode, align_corners=align_corners)
    check_against_torch(lambda t: F.interpolate(t, **kwargs),
                        lambda t: pytest.importorskip("torch").nn.functional.interpolate(t, **kwargs), [x],
                        rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kwargs", [
    dict(scale_factor=2, mode="nearest"),  # the reshape-sum backward
    dict(size=(5, 4), mode="nearest"),  # the one-hot backward (non-integer ratio, one axis shrinks)
    dict(scale_factor=1.5, mode="nearest-exact"),
    dict(size=(4, 5), mode="bilinear", align_corners=False),
    dict(size=(5, 2), mode="bilinear", align_corners=True),
])
def test_interpolate_finite_differences(kwargs, rng):
    check_gradients(lambda x: F.interpolate(x, **kwargs), [rng.standard_normal((1, 2, 3, 3))])


def test_trilinear_finite_differences(rng):
    x = rng.standard_normal((1, 1, 2, 3, 2))
    check_gradients(lambda x: F.interpolate(x, size=(3, 2, 3), mode="trilinear"), [x])


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("resize", RESIZES + [dict(size=(7, 4)), dict(scale_factor=(0.7, 2.2))], ids=str)
def test_bicubic_matches_torch(resize, align_corners, rng):
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    kwargs = dict(mode="bicubic", align_corners=align_corners, **resize)
    check_against_torch(lambda t: F.interpolate(t, **kwargs),
                        lambda t: pytest.importorskip("torch").nn.functional.interpolate(t, **kwargs), [x])


@pytest.mark.parametrize("mode, shape", [("bicubic", (0, 2, 3, 4)), ("bilinear", (0, 2, 3, 4)), ("area", (0, 2, 4, 6)),
                                         ("trilinear", (0, 1, 2, 3, 4)), ("nearest", (0, 2, 3, 4))])
def test_empty_batches_match_torch(mode, shape, rng):
    check_against_torch(lambda t: F.interpolate(t, scale_factor=2, mode=mode),
                        lambda t: pytest.importorskip("torch").nn.functional.interpolate(t, scale_factor=2, mode=mode),
                        [rng.standard_normal(shape).astype(np.float32)])


def test_bicubic_keeping_a_size_with_a_scale_factor_still_resamples(rng):
    """scale_factor=1.1 keeps 5 rows but reads them at (dst + 0.5) / 1.1 - 0.5: PyTorch's forward does so too
    (compared here), while its backward copies the gradient as if nothing moved (an inconsistency gradcheck
    finds in PyTorch 2.13); convstack's gradient is its forward's, checked by finite differences."""
    x = rng.standard_normal((1, 2, 5, 6))
    torch = pytest.importorskip("torch")
    ours = F.interpolate(cs.tensor(x), scale_factor=1.1, mode="bicubic").numpy()
    theirs = torch.nn.functional.interpolate(torch.tensor(x), scale_factor=1.1, mode="bicubic").numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    assert np.abs(ours - x).max() > 0.1
    check_gradients(lambda t: F.interpolate(t, scale_factor=1.1, mode="bicubic"), [x])


@pytest.mark.parametrize("kwargs", [dict(size=(5, 2), align_corners=False), dict(scale_factor=1.5, align_corners=True),
                                    dict(size=(2, 2), align_corners=False)])
def test_bicubic_finite_differences(kwargs, rng):
    check_gradients(lambda x: F.interpolate(x, mode="bicubic", **kwargs), [rng.standard_normal((1, 2, 3, 4))])


AA_RESIZES = [dict(size=(3, 4)), dict(size=(4, 11)), dict(scale_factor=0.3), dict(size=(20, 15)), dict(size=(1, 1)),
              dict(scale_factor=0.45, recompute_scale_factor=True), dict(size=(9, 2))]


@pytest.mark.parametrize("mode, align_corners", [("bilinear", False), ("bilinear", True), ("bicubic", None),
                                                 ("bicubic", True), ("lanczos", None)])
@pytest.mark.parametrize("resize", AA_RESIZES, ids=str)
def test_antialias_matches_torch(mode, align_corners, resize, rng):
    x = rng.standard_normal((2, 3, 9, 11))
    kwargs = dict(mode=mode, align_corners=align_corners, antialias=True, **resize)
    check_against_torch(lambda t: F.interpolate(t, **kwargs),
                        lambda t: pytest.importorskip("torch").nn.functional.interpolate(t, **kwargs), [x],
                        rtol=1e-10, atol=1e-12)


def test_antialias_keeps_an_unchanged_size_and_its_gradient_is_its_forwards(rng):
    """scale_factor=1.1 keeps 9 rows: PyTorch copies them in the forward pass (so do we) but its backward
    resamples them (gradcheck fails on it); convstack's backward is its forward's adjoint."""
    x = rng.standard_normal((1, 1, 9, 5))
    torch = pytest.importorskip("torch")
    ours = F.interpolate(cs.tensor(x), scale_factor=(1.1, 0.5), mode="bilinear", antialias=True).numpy()
    theirs = torch.nn.functional.interpolate(torch.tensor(x), scale_factor=(1.1, 0.5), mode="bilinear",
                                             antialias=True).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    check_gradients(lambda t: F.interpolate(t, scale_factor=(1.1, 0.5), mode="bilinear", antialias=True), [x])


@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "lanczos"])
def test_antialias_finite_differences(mode, rng):
    check_gradients(lambda x: F.interpolate(x, size=(2, 3), mode=mode, antialias=True),
                    [rng.standard_normal((1, 1, 5, 7))])


def test_antialiased_downsampling_averages_a_checkerboard():
    """17 -> 3 pixels: plain bilinear samples single squares (0 or 1), antialiasing averages them to ~0.5."""
    board = cs.tensor((np.indices((17, 17)).sum(axis=0) % 2).astype(np.float32)[None, None])
    plain = F.interpolate(board, size=(3, 3), mode="bilinear").numpy()
    smooth = F.interpolate(board, size=(3, 3), mode="bilinear", antialias=True).numpy()
    assert np.abs(smooth - 0.5).max() < 0.01 and np.abs(plain - 0.5).max() == 0.5


def test_bicubic_rows_sum_to_one_and_keep_constants():
    from convstack.nn.functional._cubic import cubic_matrix

    for align_corners in (False, True):
        matrix = cubic_matrix(5, 13, None, align_corners, np.float64)
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
        assert ((matrix != 0).sum(axis=1) <= 4).all()
    np.testing.assert_allclose(F.interpolate(cs.full((1, 1, 3, 4), 2.5), size=(7, 9), mode="bicubic").numpy(), 2.5,
                               rtol=1e-6)


def test_whole_factor_nearest_upsampling_uses_the_reshape_sum_backward(monkeypatch):
    plans = []
    original = U.Interpolate.forward

    def spy(self, x, **options):
        plans.append(options["plans"])
        return original(self, x, **options)

    monkeypatch.setattr(U.Interpolate, "forward", spy)
    F.interpolate(cs.ones(1, 1, 3, 4), size=(6, 12))
    F.interpolate(cs.ones(1, 1, 3, 4), size=(5, 4))
    assert plans[0] == (("repeat", 2), ("repeat", 3))
    assert plans[1][0][0] == "gather" and plans[1][1] is None


def test_linear_matrix_rows_are_convex_combinations():
    matrix = U.linear_matrix(5, 12, None, False, np.float64)
    assert matrix.shape == (12, 5)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    assert ((matrix > 0).sum(axis=1) <= 2).all() and (matrix >= 0).all()


def test_worked_examples():
    x = cs.tensor([[[0.0, 10.0]]])
    np.testing.assert_allclose(F.interpolate(x, size=4, mode="linear", align_corners=True).numpy().ravel(),
                               [0, 10 / 3, 20 / 3, 10], rtol=1e-6)
    # align_corners=False: centres at 0.25, 0.75 ... of the input; the ends replicate the border
    np.testing.assert_allclose(F.interpolate(x, size=4, mode="linear").numpy().ravel(), [0, 2.5, 7.5, 10])
    np.testing.assert_array_equal(F.interpolate(cs.tensor([[[1.0, 2.0, 3.0]]]), size=2).numpy().ravel(), [1, 2])


def test_upsample_is_interpolate():
    x = cs.randn(1, 2, 3, 3)
    np.testing.assert_array_equal(F.upsample(x, scale_factor=2, mode="bilinear").numpy(),
                                  F.interpolate(x, scale_factor=2, mode="bilinear").numpy())


ERRORS = {
    "rank": (lambda: F.interpolate(cs.ones(2, 3), size=4),
             "interpolate: expected a 3-D, 4-D or 5-D input (N, C, *spatial), received a 2-D input of shape (2, 3)"),
    "both": (lambda: F.interpolate(cs.ones(1, 1, 2), size=4, scale_factor=2),
             "interpolate: invalid value for argument `size`: expected exactly one of size and scale_factor, received "
             "'size=4, scale_factor=2' (input shape (1, 1, 2))"),
    "neither": (lambda: F.interpolate(cs.ones(1, 1, 2)),
                "interpolate: invalid value for argument `size`: expected exactly one of size and scale_factor, "
                "received 'size=None, scale_factor=None' (input shape (1, 1, 2))"),
    "mode": (lambda: F.interpolate(cs.ones(1, 1, 2), size=4, mode="cubic"),
             "interpolate: invalid value for argument `mode`: expected one of 'nearest', 'nearest-exact', 'linear', "
             "'bilinear', 'bicubic', 'trilinear', 'area', 'lanczos', received 'cubic' (input shape (1, 1, 2))"),
    "linear-rank": (lambda: F.interpolate(cs.ones(1, 1, 2, 2), size=4, mode="linear"),
                    "interpolate: invalid value for argument `mode`: expected 'bilinear' for a 4-D input, received "
                    "'linear' (input shape (1, 1, 2, 2))"),
    "align-nearest": (lambda: F.interpolate(cs.ones(1, 1, 2), size=4, align_corners=True),
                      "interpolate: invalid value for argument `align_corners`: expected None unless mode is "
                      "'linear', 'bilinear', 'bicubic' or 'trilinear', received True (input shape (1, 1, 2))"),
    "bicubic-rank": (lambda: F.interpolate(cs.ones(1, 1, 2), size=4, mode="bicubic"),
                     "interpolate: invalid value for argument `mode`: expected one of 'nearest', 'nearest-exact', "
                     "'linear', 'area' for a 3-D input (bicubic takes 4-D input), received 'bicubic' (input shape "
                     "(1, 1, 2))"),
    "antialias-mode": (lambda: F.interpolate(cs.ones(1, 1, 4, 4), size=2, mode="nearest", antialias=True),
                       "interpolate: invalid value for argument `antialias`: expected False unless mode is 'bilinear', "
                       "'bicubic' or 'lanczos' on a 4-D input, received True (input shape (1, 1, 4, 4))"),
    "antialias-rank": (lambda: F.interpolate(cs.ones(1, 1, 4), size=2, mode="linear", antialias=True),
                       "interpolate: invalid value for argument `antialias`: expected False unless mode is 'bilinear', "
                       "'bicubic' or 'lanczos' on a 4-D input, received True (input shape (1, 1, 4))"),
    "lanczos-plain": (lambda: F.interpolate(cs.ones(1, 1, 4, 4), size=2, mode="lanczos"),
                      "interpolate: invalid value for argument `antialias`: expected True for mode 'lanczos' (it is an "
                      "antialiasing filter), received False (input shape (1, 1, 4, 4))"),
    "lanczos-corners": (lambda: F.interpolate(cs.ones(1, 1, 4, 4), size=2, mode="lanczos", antialias=True,
                                              align_corners=True),
                        "interpolate: invalid value for argument `align_corners`: expected None or False for mode "
                        "'lanczos', received True (input shape (1, 1, 4, 4))"),
    "size-length": (lambda: F.interpolate(cs.ones(1, 1, 2, 2), size=(4, 4, 4)),
                    "interpolate: invalid value for argument `size`: expected a positive integer or a tuple of 2 "
                    "positive integers, received (4, 4, 4) (input shape (1, 1, 2, 2))"),
    "scale-zero": (lambda: F.interpolate(cs.ones(1, 1, 2), scale_factor=0),
                   "interpolate: invalid value for argument `scale_factor`: expected a positive number or a tuple of "
                   "1 positive numbers, received 0 (input shape (1, 1, 2))"),
    "empty-output": (lambda: F.interpolate(cs.ones(1, 1, 2), scale_factor=0.4),
                     "interpolate: invalid value for argument `scale_factor`: expected a factor giving output sizes "
                     ">= 1 (here (0,)), received 0.4 (input shape (1, 1, 2))"),
}


@pytest.mark.parametrize("call, message", ERRORS.values(), ids=ERRORS.keys())
def test_errors_are_pinned(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert str(error.value) == message


def test_docstring_examples_run():
    module = importlib.import_module("convstack.nn.functional.upsample")
    result = doctest.testmod(module, extraglobs={"cs": cs, "F": F}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
