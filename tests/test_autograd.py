"""The graph walk: accumulation, no_grad, retain_graph, hooks, deep graphs."""

import weakref

import numpy as np
import pytest

import convstack as cs


def test_grad_accumulates_until_zeroed():
    x = cs.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [6.0, 6.0]
    x.grad = None
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]


def test_shared_subexpression_gets_summed_gradient():
    x = cs.tensor(3.0, requires_grad=True)
    y = x * x
    z = y + y * x  # z = x^2 + x^3: dz/dx = 2x + 3x^2 = 6 + 27
    z.backward()
    assert x.grad.item() == pytest.approx(33.0)


def test_backward_needs_gradient_for_non_scalars():
    x = cs.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (x * 2).backward()
    (x * 2).backward(cs.tensor([1.0, 10.0]))
    assert x.grad.tolist() == [2.0, 20.0]


def test_backward_gradient_shape_is_checked():
    x = cs.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"gradient has shape \(3,\)"):
        (x * 2).backward(np.ones(3, dtype=np.float32))


def test_no_grad_records_nothing():
    x = cs.tensor([1.0], requires_grad=True)
    with cs.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert cs.is_grad_enabled()


def test_second_backward_without_retain_graph_is_refused():
    x = cs.tensor([1.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [4.0]
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_backward_on_tensor_without_grad_is_refused():
    with pytest.raises(RuntimeError, match="does not require grad"):
        cs.tensor([1.0]).sum().backward()


def test_detach_cuts_the_graph():
    x = cs.tensor([2.0], requires_grad=True)
    (x * x.detach()).sum().backward()
    assert x.grad.tolist() == [2.0]


def test_retain_grad_and_leaf_flags():
    x = cs.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    (y * y).sum().backward()
    assert x.is_leaf and not y.is_leaf
    assert y.grad.tolist() == [4.0, 8.0]


def test_hooks_see_and_can_replace_the_gradient():
    x = cs.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    y = x * 3
    y.register_hook(lambda g: seen.append(g.tolist()))
    handle = x.register_hook(lambda g: g * 0.5)
    y.sum().backward()
    assert seen == [[1.0, 1.0]] and x.grad.tolist() == [1.5, 1.5]
    handle.remove()
    x.grad = None
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_deep_graph_does_not_hit_the_recursion_limit():
    x = cs.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.sum().backward()
    assert x.grad.item() == pytest.approx(1.0001**5000, rel=1e-3)


def test_leaf_gradient_is_not_aliased_between_inputs():
    a = cs.tensor([1.0], requires_grad=True)
    b = cs.tensor([1.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad.data[...] = 7
    assert b.grad.tolist() == [1.0]


def test_an_ops_inputs_are_freed_unless_its_backward_saved_them():
    import weakref

    import convstack.nn.functional as F

    x = cs.tensor([-1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2  # its array is needed by nothing below: ReLU saves its output, not its input
    seen = weakref.ref(y.data)
    z = F.relu(y)
    del y
    assert seen() is None
    (z * z).sum().backward()
    assert x.grad.tolist() == [0.0, 16.0, 24.0]


def test_hooks_and_retain_grad_registered_after_the_tensor_was_used():
    x = cs.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    z = (y * y).sum()
    seen = []
    y.register_hook(lambda g: seen.append(g.tolist()))
    y.retain_grad()
    z.backward()
    assert seen == [[6.0, 12.0]] and y.grad.tolist() == [6.0, 12.0] and x.grad.tolist() == [18.0, 36.0]


def test_diamond_waits_for_every_branch_before_running_an_op():
    x = cs.tensor(2.0, requires_grad=True)
    y = x * x
    calls = []
    y.register_hook(lambda g: calls.append(g.item()))
    (y * 3 + y.exp() + y).backward()  # three paths into y: its hook and backward run once, on the sum
    assert calls == [pytest.approx(3 + np.exp(4.0) + 1)]
    assert x.grad.item() == pytest.approx((3 + np.exp(4.0) + 1) * 4)


class _FreshGrad(cs.autograd.Function):
    """Identity whose backward returns a new array, keeping it (``keep``) or returning a view of it (``view``)."""

    made = []  # weak references: a strong one here would itself forbid taking the array over

    def forward(self, x, keep=False, view=False):
        self.keep, self.view = keep, view
        return x.copy()

    def backward(self, grad):
        fresh = grad * 2
        _FreshGrad.made.append(weakref.ref(fresh))
        if self.keep:
            self.kept = fresh
        return (fresh[...] if self.view else fresh,)


@pytest.mark.parametrize("keep, view, taken", [(False, False, True), (True, False, False), (False, True, False)])
def test_leaf_takes_over_a_gradient_array_only_the_backward_walk_holds(keep, view, taken):
    _FreshGrad.made.clear()
    x = cs.randn(4, 5, requires_grad=True)
    out = _FreshGrad.apply(x, keep=keep, view=view)
    out.backward(np.ones((4, 5), np.float32), retain_graph=keep)
    made = _FreshGrad.made[0]()
    assert (x.grad.data is made) is taken  # kept by the op or a view of another array: copied
    np.testing.assert_array_equal(x.grad.data, np.full((4, 5), 2, np.float32))
    if made is not None and not taken:
        made[...] = -1
        assert (x.grad.data == 2).all()


def test_a_root_gradient_the_caller_holds_is_copied_not_taken():
    x = cs.randn(3, requires_grad=True)
    gradient = np.ones(3, np.float32)
    x.backward(gradient)
    gradient[...] = 7
    np.testing.assert_array_equal(x.grad.data, np.ones(3, np.float32))


def test_a_gradient_a_tensor_hook_keeps_is_copied():
    seen = []
    x = cs.randn(3, requires_grad=True)
    x.register_hook(lambda g: seen.append(g))
    (x * 2).sum().backward()
    seen[0][...] = 0
    np.testing.assert_array_equal(x.grad.data, np.full(3, 2, np.float32))
