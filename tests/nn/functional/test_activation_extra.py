"""hardtanh, threshold, celu, selu, logsigmoid, softsign, glu, softmin and the shrinks: parity with
PyTorch (values and gradients, at the kinks too), finite differences, 0-D and empty inputs, errors."""

import doctest
import importlib

import numpy as np
import pytest
from tests.helpers import check_against_torch, check_gradients

import convstack as cs
import convstack.nn.functional as F

TOLERANCES = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}

# case -> (function name in both libraries, positional arguments after the input)
POINTWISE = {
    "hardtanh": ("hardtanh", ()),
    "hardtanh-2-3": ("hardtanh", (-2.0, 3.0)),
    "threshold": ("threshold", (0.3, -7.0)),
    "celu": ("celu", ()),
    "celu-alpha2": ("celu", (2.0,)),
    "celu-alpha-negative": ("celu", (-0.5,)),
    "selu": ("selu", ()),
    "logsigmoid": ("logsigmoid", ()),
    "softsign": ("softsign", ()),
    "hardshrink": ("hardshrink", ()),
    "hardshrink-1.5": ("hardshrink", (1.5,)),
    "hardshrink-negative": ("hardshrink", (-0.5,)),
    "softshrink": ("softshrink", ()),
    "softshrink-0": ("softshrink", (0.0,)),
    "tanhshrink": ("tanhshrink", ()),
}


def _torch_functional():
    return pytest.importorskip("torch").nn.functional


def _away_from_kinks(shape, dtype, rng):
    """Values in [-5, 5] at least 1e-3 from every break point the cases use."""
    x = rng.uniform(-5, 5, shape)
    for kink in (0.0, 0.3, 0.5, 1.0, 1.5, 2.0, 3.0):
        for point in (kink, -kink):
            x[np.abs(x - point) < 1e-3] = 0.25
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", POINTWISE)
def test_pointwise_matches_torch(name, dtype, rng):
    function, args = POINTWISE[name]
    TF = _torch_functional()
    check_against_torch(lambda x: getattr(F, function)(x, *args), lambda x: getattr(TF, function)(x, *args),
                        [_away_from_kinks((3, 4, 5), dtype, rng)], **TOLERANCES[dtype])


@pytest.mark.parametrize("name", POINTWISE)
def test_pointwise_finite_differences(name, rng):
    function, args = POINTWISE[name]
    check_gradients(lambda x: getattr(F, function)(x, *args), [_away_from_kinks((2, 5), np.float64, rng)])


@pytest.mark.parametrize("name", POINTWISE)
def test_pointwise_at_the_kinks_matches_torch(name):
    """Exactly on the break points PyTorch picks one side; so do we (values and gradients)."""
    function, args = POINTWISE[name]
    TF = _torch_functional()
    x = np.array([-3.0, -2.0, -1.5, -1.0, -0.5, -0.3, 0.0, 0.3, 0.5, 1.0, 1.5, 2.0, 3.0])
    check_against_torch(lambda t: getattr(F, function)(t, *args), lambda t: getattr(TF, function)(t, *args), [x],
                        **TOLERANCES[np.float64])


@pytest.mark.parametrize("name", POINTWISE)
@pytest.mark.parametrize("shape", [(), (0,), (2, 0, 3)])
def test_pointwise_zero_d_and_empty_inputs_match_torch(name, shape, rng):
    function, args = POINTWISE[name]
    TF = _torch_functional()
    x = rng.uniform(-2, 2, shape).astype(np.float32) + np.float32(0.1)
    check_against_torch(lambda t: getattr(F, function)(t, *args), lambda t: getattr(TF, function)(t, *args),
                        [np.asarray(x)])


def test_large_inputs_stay_finite():
    x = cs.tensor([-1000.0, -50.0, 50.0, 1000.0], requires_grad=True)
    y = F.logsigmoid(x)
    y.sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), [-1000.0, -50.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0, 0.0, 0.0], atol=1e-6)
    assert np.isfinite(F.selu(cs.tensor([-1000.0, 1000.0])).numpy()).all()
    assert np.isfinite(F.celu(cs.tensor([-1000.0, 1000.0]), 0.1).numpy()).all()


@pytest.mark.parametrize("dim, shape", [(-1, (3, 4)), (0, (4, 3)), (1, (2, 6, 3)), (0, (2,)), (-2, (2, 4, 1))])
def test_glu_matches_torch(dim, shape, rng):
    TF = _torch_functional()
    check_against_torch(lambda x: F.glu(x, dim), lambda x: TF.glu(x, dim), [rng.standard_normal(shape)],
                        **TOLERANCES[np.float64])


def test_glu_finite_differences(rng):
    check_gradients(lambda x: F.glu(x, 1), [rng.standard_normal((2, 4, 3))])


@pytest.mark.parametrize("dim, shape", [(1, (3, 4)), (0, (4, 3)), (-1, (2, 3, 5)), (0, ()), (-1, ()), (1, (0, 3))])
def test_softmin_matches_torch(dim, shape, rng):
    TF = _torch_functional()
    check_against_torch(lambda x: F.softmin(x, dim), lambda x: TF.softmin(x, dim), [rng.standard_normal(shape)],
                        **TOLERANCES[np.float64])


def test_softmin_finite_differences_and_dtype(rng):
    check_gradients(lambda x: F.softmin(x, 1), [rng.standard_normal((2, 4))])
    assert F.softmin(cs.randn(2, 3), 1, dtype=cs.float64).dtype == np.float64


def test_worked_values():
    np.testing.assert_allclose(F.threshold(cs.tensor([0.1, 0.2]), 0.1, 9.0).numpy(), [9.0, 0.2])
    np.testing.assert_allclose(F.softshrink(cs.tensor([-2.0, 0.3, 2.0]), 1.0).numpy(), [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(F.hardshrink(cs.tensor([-2.0, 0.3, 2.0]), 1.0).numpy(), [-2.0, 0.0, 2.0])
    np.testing.assert_allclose(F.glu(cs.tensor([[1.0, 3.0, 0.0, 100.0]])).numpy(), [[0.5, 3.0]], rtol=1e-6)
    np.testing.assert_allclose(F.softmin(cs.tensor([0.0, np.log(3.0)]), 0).numpy(), [0.75, 0.25], rtol=1e-6)


ERRORS = {
    "hardtanh-order": (lambda: F.hardtanh(cs.ones(2), 1.0, -1.0),
                       "hardtanh: invalid value for argument `max_val`: expected a number >= min_val (1.0), received "
                       "-1.0"),
    "hardtanh-type": (lambda: F.hardtanh(cs.ones(2), "a"),
                      "hardtanh: invalid value for argument `min_val`: expected a real number, received 'a'"),
    "threshold-type": (lambda: F.threshold(cs.ones(2), None, 1.0),
                       "threshold: invalid value for argument `threshold`: expected a real number, received None"),
    "celu-zero": (lambda: F.celu(cs.ones(2), 0.0),
                  "celu: invalid value for argument `alpha`: expected a non-zero number, received 0.0"),
    "softshrink-negative": (lambda: F.softshrink(cs.ones(2), -0.5),
                            "softshrink: invalid value for argument `lambd`: expected a number >= 0, received -0.5"),
    "hardshrink-type": (lambda: F.hardshrink(cs.ones(2), True),
                        "hardshrink: invalid value for argument `lambd`: expected a real number, received True"),
    "glu-0d": (lambda: F.glu(cs.tensor(1.0)),
               "glu: expected an input with at least 1 dimension to halve, received a 0-D input"),
    "glu-odd": (lambda: F.glu(cs.ones(3, 5)),
                "glu: expected an even size along dim -1 to halve, received 5 (input shape (3, 5))"),
    "glu-dim": (lambda: F.glu(cs.ones(3, 4), 2),
                "glu: invalid value for argument `dim`: expected an integer in [-2, 1], received 2 (input shape "
                "(3, 4))"),
    "softmin-dim": (lambda: F.softmin(cs.ones(3, 4)),
                    "softmin: invalid value for argument `dim`: expected an integer in [-2, 1] for a 2-D input, "
                    "received None (input shape (3, 4))"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors_are_pinned(case):
    call, message = ERRORS[case]
    with pytest.raises(ValueError) as error:
        call()
    assert str(error.value) == message


@pytest.mark.parametrize("name", ["hardtanh", "selu", "tanhshrink", "softsign", "glu", "softshrink"])
def test_integer_input_is_refused(name):
    with pytest.raises(TypeError, match=f"{name}: expected a floating point input, received dtype int64"):
        getattr(F, name)(cs.tensor([1, 2]))


@pytest.mark.parametrize("module", ["activation_extra", "shrink"])
def test_docstring_examples_run(module):
    module = importlib.import_module(f"convstack.nn.functional.{module}")
    result = doctest.testmod(module, extraglobs={"cs": cs, "F": F}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
