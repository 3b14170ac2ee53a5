"""Tensor: construction, dtype policy, every differentiable tensor op against PyTorch and finite differences."""

import numpy as np
import pytest

import convstack as cs
from tests.helpers import check_against_torch, check_gradients

R = np.random.default_rng(1)


def arr(*shape, positive=False):
    a = R.standard_normal(shape)
    if positive:
        a = np.abs(a) + 0.5
    return a.astype(np.float32)


BINARY = [
    ("add", lambda a, b: a + b),
    ("sub", lambda a, b: a - b),
    ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b),
    ("pow", lambda a, b: a**b),
]


@pytest.mark.parametrize("name,op", BINARY)
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 5)), ((2, 1, 4), (3, 1))])
def test_broadcasting_binary_ops_match_torch(name, op, shapes):
    a, b = arr(*shapes[0], positive=True), arr(*shapes[1], positive=True)
    check_against_torch(op, op, [a, b])


@pytest.mark.parametrize("name,op", BINARY)
def test_binary_ops_finite_differences(name, op):
    check_gradients(op, [arr(2, 3, positive=True), arr(3, positive=True)])


def test_scalar_operands_on_both_sides():
    check_against_torch(
        lambda a: 2.0 - a * 3 + 1 / (a + 4) - a**2 + 2**a,
        lambda a: 2.0 - a * 3 + 1 / (a + 4) - a**2 + 2**a,
        [arr(3, 4)],
    )


@pytest.mark.parametrize(
    "shapes", [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2))]
)
def test_matmul_matches_torch(shapes):
    check_against_torch(lambda a, b: a @ b, lambda a, b: a @ b, [arr(*shapes[0]), arr(*shapes[1])])


def test_matmul_finite_differences():
    check_gradients(lambda a, b: a @ b, [arr(2, 3, 4), arr(4, 2)])


UNARY = [
    ("neg", lambda t: -t, False),
    ("exp", lambda t: t.exp(), False),
    ("log", lambda t: t.log(), True),
    ("sqrt", lambda t: t.sqrt(), True),
    ("abs", lambda t: t.abs(), False),
    ("clamp", lambda t: t.clamp(-0.5, 0.7), False),
    ("clamp_min", lambda t: t.clamp(min=0.1), False),
]


@pytest.mark.parametrize("name,op,positive", UNARY)
def test_unary_ops_match_torch(name, op, positive):
    check_against_torch(op, op, [arr(3, 5, positive=positive)])
    check_gradients(op, [arr(2, 3, positive=positive)])


REDUCTIONS = [
    ("sum", lambda t: t.sum()),
    ("sum_dim", lambda t: t.sum(1)),
    ("sum_dims_keep", lambda t: t.sum((0, 2), keepdim=True)),
    ("mean", lambda t: t.mean()),
    ("mean_neg_dim", lambda t: t.mean(-1)),
    ("var", lambda t: t.var()),
    ("var_dim_biased", lambda t: t.var(1, unbiased=False)),
    ("var_correction", lambda t: t.var(dim=2, correction=0, keepdim=True)),
    ("std", lambda t: t.std(0)),
    ("max_all", lambda t: t.max()),
    ("min_all", lambda t: t.min()),
    ("max_dim", lambda t: t.max(1)),
    ("min_dim_keep", lambda t: t.min(2, keepdim=True)),
]


@pytest.mark.parametrize("name,op", REDUCTIONS)
def test_reductions_match_torch(name, op):
    check_against_torch(op, op, [arr(3, 4, 5)])


@pytest.mark.parametrize("name,op", REDUCTIONS)
def test_reductions_finite_differences(name, op):
    check_gradients(lambda t: op(t)[0] if isinstance(op(t), tuple) else op(t), [arr(2, 3, 4)])


SHAPE_OPS = [
    ("reshape", lambda t: t.reshape(4, -1)),
    ("view", lambda t: t.view(2, 30)),
    ("transpose", lambda t: t.transpose(0, 2)),
    ("permute", lambda t: t.permute(2, 0, 1)),
    ("flatten", lambda t: t.flatten(1)),
    ("squeeze_unsqueeze", lambda t: t.unsqueeze(1).unsqueeze(-1).squeeze(1)),
    ("squeeze_dim", lambda t: t.unsqueeze(0).squeeze(0)),
    ("T", lambda t: t[0].T),
    ("expand", lambda t: t[:, :1].expand(3, 4, 5)),
    ("slice", lambda t: t[1:, ::2, -1]),
    ("int_index", lambda t: t[0]),
    ("ellipsis_none", lambda t: t[..., None, 1:3]),
    ("fancy", lambda t: t[[0, 2, 0], 1]),
    ("bool_mask", lambda t: t[t > 0]),
]


@pytest.mark.parametrize("name,op", SHAPE_OPS)
def test_shape_and_indexing_ops_match_torch(name, op):
    check_against_torch(op, op, [arr(3, 4, 5)])


def test_repeated_fancy_index_accumulates_gradient():
    check_gradients(lambda t: t[[0, 0, 1]] * 2, [arr(3, 2)])


def test_cat_and_stack_match_torch():
    import torch

    check_against_torch(
        lambda a, b: cs.cat([a, b], dim=1), lambda a, b: torch.cat([a, b], dim=1), [arr(2, 3), arr(2, 5)]
    )
    check_against_torch(
        lambda a, b: cs.stack([a, b], dim=-1), lambda a, b: torch.stack([a, b], dim=-1), [arr(2, 3), arr(2, 3)]
    )
    check_gradients(lambda a, b: cs.cat([a, b], 0), [arr(1, 2), arr(2, 2)])
    check_gradients(lambda a, b: cs.stack([a, b], 1), [arr(2, 2), arr(2, 2)])


def test_where_matches_torch():
    import torch

    cond = arr(3, 4) > 0
    check_against_torch(
        lambda a, b: cs.where(cs.tensor(cond), a, b),
        lambda a, b: torch.where(torch.tensor(cond), a, b),
        [arr(3, 4), arr(4)],
    )


def test_max_with_dim_returns_values_and_indices():
    t = cs.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]])
    values, indices = t.max(dim=1)
    assert values.tolist() == [5.0, 7.0]
    assert indices.tolist() == [1, 0]


def test_comparisons_give_boolean_tensors_without_grad():
    a = cs.tensor([1.0, 2.0, 3.0], requires_grad=True)
    mask = a > 1.5
    assert mask.dtype == np.bool_ and not mask.requires_grad
    assert (a == 2.0).tolist() == [False, True, False]
    assert (a <= 2).tolist() == [True, True, False]


class TestDtypePolicy:
    def test_python_floats_are_float32(self):
        assert cs.tensor([1.0, 2.0]).dtype == np.float32
        assert cs.tensor(1.5).dtype == np.float32

    def test_integers_are_int64(self):
        assert cs.tensor([1, 2]).dtype == np.int64

    def test_float64_arrays_stay_float64(self):
        t = cs.tensor(np.zeros(3))
        assert t.dtype == np.float64
        assert (t * 2.0).dtype == np.float64

    def test_float32_scalar_arithmetic_stays_float32(self):
        assert (cs.tensor([1.0]) * 2.5 + 1).dtype == np.float32

    def test_explicit_dtype(self):
        assert cs.tensor([1, 2], dtype=np.float64).dtype == np.float64

    @pytest.mark.parametrize("bad", [np.float16, np.complex64])
    def test_unsupported_dtypes_are_refused(self, bad):
        with pytest.raises(TypeError, match="unsupported dtype"):
            cs.tensor(np.zeros(2, dtype=bad))

    def test_strings_are_refused(self):
        with pytest.raises(TypeError, match="cannot make a tensor"):
            cs.tensor(["a"])

    def test_integer_tensors_cannot_require_grad(self):
        with pytest.raises(RuntimeError, match="floating point"):
            cs.tensor([1, 2], requires_grad=True)


class TestAccessors:
    def test_shape_ndim_item_numpy(self):
        t = cs.tensor([[1.0, 2.0, 3.0]])
        assert t.shape == (1, 3) and t.ndim == 2 and t.numel() == 3 and len(t) == 1
        assert cs.tensor([4.0]).item() == 4.0
        np.testing.assert_array_equal(t.numpy(), [[1, 2, 3]])

    def test_tensor_copies_but_as_tensor_shares(self):
        a = np.ones(3, dtype=np.float32)
        t = cs.tensor(a)
        a[0] = 5
        assert t.tolist() == [1, 1, 1]
        assert cs.as_tensor(a).data is a

    def test_numpy_refuses_tensors_that_require_grad(self):
        with pytest.raises(RuntimeError, match="detach"):
            cs.tensor([1.0], requires_grad=True).numpy()

    def test_item_needs_one_element(self):
        with pytest.raises(ValueError, match="one-element"):
            cs.tensor([1.0, 2.0]).item()

    def test_reshape_errors(self):
        with pytest.raises(RuntimeError, match=r"shape \[4, 4\] is invalid for input of size 6"):
            cs.zeros(2, 3).reshape(4, 4)
        with pytest.raises(RuntimeError, match="invalid"):
            cs.zeros(2, 3).reshape(-1, -1)

    def test_dim_errors(self):
        with pytest.raises(IndexError, match="dimension out of range"):
            cs.zeros(2, 3).sum(2)

    def test_cat_shape_error_names_shapes(self):
        with pytest.raises(ValueError, match=r"tensor 1 has shape \(3, 3\)"):
            cs.cat([cs.zeros(2, 2), cs.zeros(3, 3)], dim=0)

    def test_repr(self):
        assert repr(cs.tensor([1.0, 2.0])) == "tensor([1., 2.])"
        assert "requires_grad=True" in repr(cs.tensor([1.0], requires_grad=True))
        assert "grad_fn=<Mul>" in repr(cs.tensor([1.0], requires_grad=True) * 2)

    def test_to_and_casts(self):
        t = cs.tensor([1.5], requires_grad=True)
        d = t.double()
        assert d.dtype == np.float64
        d.sum().backward()
        assert t.grad.dtype == np.float32 and t.grad.tolist() == [1.0]
        assert t.detach().long().dtype == np.int64


def test_factories_and_seed_are_reproducible():
    cs.manual_seed(3)
    a = cs.randn(2, 3).numpy()
    cs.manual_seed(3)
    np.testing.assert_array_equal(a, cs.randn(2, 3).numpy())
    assert cs.zeros(2, 3).dtype == np.float32 and cs.ones((2,)).tolist() == [1, 1]
    assert cs.arange(3).tolist() == [0, 1, 2] and cs.arange(0, 1, 0.5).dtype == np.float32
    assert sorted(cs.randperm(5).tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="non-negative integer"):
        cs.manual_seed(-1)
