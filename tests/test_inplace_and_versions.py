"""In-place operations and version counters, against PyTorch (issue 15, item 6).

Every in-place operation bumps the tensor's ``_version`` (shared with its views); backward
through a tensor that an op saved and something changed afterwards raises PyTorch's
RuntimeError instead of computing a wrong gradient; in-place operations have PyTorch's
gradients, on views too (CopySlices), and PyTorch's refusals.
"""

import numpy as np
import pytest

import convstack as cs
from convstack import nn, optim
from convstack.nn import functional as F
from tests.helpers import check_against_torch

torch = pytest.importorskip("torch")

MODIFIED = "one of the variables needed for gradient computation has been modified by an inplace operation"
LEAF = "a leaf Variable that requires grad is being used in an in-place operation."


def both(build):
    """``build(lib)`` run with convstack and with torch; returns (convstack result, torch result)."""
    return build(cs), build(torch)


def raises_like_torch(build, message):
    """``build(lib)`` raises RuntimeError containing ``message`` in both libraries."""
    for lib in (cs, torch):
        with pytest.raises(RuntimeError, match=message.replace("(", r"\(").replace(")", r"\)")):
            build(lib)


# ----------------------------------------------------------------------------- the issue's case
def test_the_issues_example_raises_like_pytorch():
    def build(lib):
        a = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        k = lib.tensor([4.0, 5.0, 6.0])
        c = (a * k).sum()
        k[0] = 100
        c.backward()

    raises_like_torch(build, MODIFIED)
    a = cs.tensor([1.0, 2.0, 3.0], requires_grad=True)
    k = cs.tensor([4.0, 5.0, 6.0])
    c = (a * k).sum()
    k[0] = 100
    with pytest.raises(RuntimeError) as error:
        c.backward()
    assert str(error.value) == (
        f"{MODIFIED}: [float32 tensor of shape [3]], input 1 of Mul, is at version 1; expected version 0 instead. "
        "Hint: __setitem__ changed it after Mul saved it for backward; clone() it before changing it, or use the "
        "out-of-place operation.")
    assert a.grad is None


# ----------------------------------------------------------------------------- counting
OPS = {
    "__setitem__": lambda t, lib: t.__setitem__(0, 5.0),
    "add_": lambda t, lib: t.add_(1.0),
    "add_ alpha": lambda t, lib: t.add_(lib.ones(3), alpha=2),
    "sub_": lambda t, lib: t.sub_(lib.ones(3)),
    "mul_": lambda t, lib: t.mul_(2.0),
    "div_": lambda t, lib: t.div_(2.0),
    "zero_": lambda t, lib: t.zero_(),
    "fill_": lambda t, lib: t.fill_(7.0),
    "clamp_": lambda t, lib: t.clamp_(-1.0, 1.0),
    "copy_": lambda t, lib: t.copy_(lib.ones(3)),
    "relu_": lambda t, lib: t.relu_(),
    "nn.ReLU(inplace=True)": lambda t, lib: lib.nn.ReLU(inplace=True)(t),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_each_inplace_op_bumps_the_version_as_pytorch(name):
    def run(lib):
        t = lib.tensor([1.0, -2.0, 3.0])
        versions = [t._version]
        for _ in range(2):
            result = OPS[name](t, lib)
            versions.append(t._version)
        return versions, result is t, t.tolist()

    ours, theirs = both(run)
    assert ours[0] == theirs[0] and ours[1] == theirs[1]
    np.testing.assert_allclose(ours[2], theirs[2])


def test_views_and_detach_share_the_counter():
    def run(lib):
        x = lib.zeros(2, 3)
        views = [x[0], x.view(6), x.reshape(3, 2), x.permute(1, 0), x.T, x.detach(), x[:, 1:], x.unsqueeze(0)]
        views[0].add_(1)
        views[1][0] = 3.0
        return [x._version] + [v._version for v in views], x.tolist()

    ours, theirs = both(run)
    assert ours == theirs


def test_a_copy_does_not_share_the_counter():
    x = cs.zeros(2, 3)
    copies = [x[[0, 1]], x.clone(), x + 0, x.to(cs.float64)]
    x.add_(1)
    assert [c._version for c in copies] == [0, 0, 0, 0] and x._version == 1


def test_optimizer_steps_bump_the_parameters_with_a_gradient():
    for make in (lambda p: optim.SGD(p, lr=0.1, momentum=0.9), lambda p: optim.Adam(p), optim.RMSprop,
                 optim.Adagrad, optim.AdamW):
        model = nn.Linear(3, 2)
        opt = make(model.parameters())
        before = [p._version for p in model.parameters()]
        model(cs.randn(4, 3)).sum().backward()
        model.bias.grad = None  # no gradient: not updated, not bumped
        opt.step()
        assert model.weight._version == before[0] + 1 and model.bias._version == before[1]


def test_backward_through_weights_an_optimizer_changed_raises_like_pytorch():
    def build(lib):
        lib.manual_seed(0)
        model = lib.nn.Linear(3, 2)
        opt = lib.optim.SGD(model.parameters(), lr=0.1)
        x = lib.ones(4, 3, requires_grad=True)  # its gradient needs the weight: Linear keeps it
        loss = model(x).pow(2).sum()
        loss.backward(retain_graph=True)
        opt.step()
        loss.backward()

    raises_like_torch(build, MODIFIED)


def test_weights_no_gradient_needs_are_not_checked_as_pytorch():
    """An input that needs no gradient: Linear keeps no weight, so a step before a second backward is fine."""

    def build(lib):
        lib.manual_seed(0)
        model = lib.nn.Linear(3, 2)
        opt = lib.optim.SGD(model.parameters(), lr=0.1)
        loss = model(lib.ones(4, 3)).sum()
        loss.backward(retain_graph=True)
        opt.step()
        loss.backward()
        return model.weight.grad.tolist()

    ours, theirs = both(build)
    np.testing.assert_allclose(ours, theirs)


# ----------------------------------------------------------------------------- what raises, what does not
SAVED_THEN_CHANGED = {
    "an input Mul saved": lambda lib, x: _mul_then_change(lib, x),
    "the output Exp saved": lambda lib, x: _output_changed(lib, x, lambda t: t.exp()),
    "the output Sigmoid saved": lambda lib, x: _output_changed(lib, x, lambda t: t.sigmoid()),
    "the output ReLU saved": lambda lib, x: _output_changed(lib, x, lambda t: t.relu()),
    "a view of an input Linear saved": lambda lib, x: _linear_input_changed(lib, x),
}


def _mul_then_change(lib, x):
    k = lib.ones(3)
    loss = (x * k).sum()
    k.mul_(2)
    return loss


def _output_changed(lib, x, op):
    y = op(x * 1)
    loss = y.sum()
    y.add_(1)
    return loss


def _linear_input_changed(lib, x):
    lib.manual_seed(0)
    layer = lib.nn.Linear(3, 2)
    h = x * 1
    loss = layer(h).sum()
    h[0] = 0.0
    return loss


def _conv_input_changed(lib, x):
    lib.manual_seed(0)
    conv = lib.nn.Conv2d(1, 1, 2)
    h = (x * 1).reshape(1, 1, 1, 3).expand(1, 1, 3, 3) * 1
    loss = conv(h).sum()
    h.mul_(3)
    return loss


def test_a_convolution_that_kept_its_own_columns_gives_the_unchanged_gradient():
    """PyTorch's convolution keeps its input and raises; convstack's keeps the im2col columns (a copy)
    where it computes through them, so a later change to the input cannot reach backward: no error,
    and the gradient of the computation as it ran."""
    grads = []
    for change in (False, True):
        x = cs.tensor([1.0, -2.0, 3.0], requires_grad=True)
        loss = _conv_input_changed(cs, x) if change else _conv_input_unchanged(x)
        try:
            loss.backward()
        except RuntimeError as error:
            assert MODIFIED in str(error)  # an algorithm that kept the input itself: refused, as PyTorch
            return
        grads.append(x.grad.numpy().copy())
    np.testing.assert_allclose(grads[0], grads[1])


def _conv_input_unchanged(x):
    cs.manual_seed(0)
    conv = nn.Conv2d(1, 1, 2)
    return conv((x * 1).reshape(1, 1, 1, 3).expand(1, 1, 3, 3) * 1).sum()


@pytest.mark.parametrize("name", sorted(SAVED_THEN_CHANGED))
def test_backward_after_changing_what_an_op_saved_raises_like_pytorch(name):
    def build(lib):
        x = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        SAVED_THEN_CHANGED[name](lib, x).backward()

    raises_like_torch(build, MODIFIED)


def _add_then_change(x, k):
    loss = (x + k).sum()  # Add keeps no values
    k.add_(1)
    return loss


def _change_before_use(x, k):
    k.mul_(2)
    return (x * k).sum()


def _change_a_clone(x, k):
    loss = (x * k).sum()
    k.clone().add_(1)
    return loss


def _change_a_result_nothing_saved(x, k):
    y = -x  # Neg keeps no values
    loss = (y * k).sum()  # Mul keeps y: changing it now would raise, as below
    z = x + 0
    z.mul_(3)
    return loss + z.sum()


NOT_SAVED = {
    "Add keeps no values": _add_then_change,
    "changed before use": _change_before_use,
    "a clone changed": _change_a_clone,
    "a result no op saved": _change_a_result_nothing_saved,
}


@pytest.mark.parametrize("name", sorted(NOT_SAVED))
def test_what_no_op_saved_may_change_and_gradients_match_pytorch(name):
    def build(lib):
        x = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        k = lib.tensor([2.0, 3.0, 4.0])
        NOT_SAVED[name](x, k).backward()
        return x.grad.tolist()

    ours, theirs = both(build)
    np.testing.assert_allclose(ours, theirs)


# ----------------------------------------------------------------------------- gradients
INPLACE_GRADIENTS = {
    "add_": (lambda y, o: y.add_(o), 1),
    "add_ alpha": (lambda y, o: y.add_(o, alpha=-3), 1),
    "add_ broadcast": (lambda y, o: y.add_(o[0]), 1),
    "sub_": (lambda y, o: y.sub_(o), 1),
    "mul_": (lambda y, o: y.mul_(o), 1),
    "mul_ by a number": (lambda y, o: y.mul_(2.5), 0),
    "div_": (lambda y, o: y.div_(o * o + 1), 1),
    "clamp_": (lambda y, o: y.clamp_(-0.5, 0.5), 0),
    "clamp_ min": (lambda y, o: y.clamp_(min=0.1), 0),
    "relu_": (lambda y, o: y.relu_(), 0),
    "fill_ number": (lambda y, o: y.fill_(2.0), 0),
    "fill_ tensor": (lambda y, o: y.fill_(o[0, 0]), 1),
    "zero_": (lambda y, o: y.zero_(), 0),
    "copy_": (lambda y, o: y.copy_(o[1]), 1),
    "setitem row": (lambda y, o: y.__setitem__(1, o[0] * 2), 1),
    "setitem mask": (lambda y, o: y.__setitem__(y > 0, 0.0), 0),
    "setitem indices": (lambda y, o: y.__setitem__(([0, 1], [2, 0]), o[0, :2]), 1),
    "setitem slice number": (lambda y, o: y.__setitem__((slice(None), 1), 4.0), 0),
    "two in a row": (lambda y, o: y.mul_(o).add_(o), 1),
}


@pytest.mark.parametrize("name", sorted(INPLACE_GRADIENTS))
def test_inplace_gradients_match_pytorch(name, rng):
    op, uses_other = INPLACE_GRADIENTS[name]

    def run(x, o):
        y = x * 1.5  # a non-leaf: in-place on it is allowed
        result = op(y, o)
        return (y if result is None else result) * 2

    x = rng.standard_normal((2, 3))
    o = rng.standard_normal((2, 3))
    check_against_torch(run, run, [x, o])


VIEW_GRADIENTS = {
    "row mul_": lambda y, o: y[0].mul_(o[1]),
    "column add_": lambda y, o: y[:, 1].add_(o[:, 0]),
    "flattened strided relu_": lambda y, o: y.reshape(-1)[::2].relu_(),
    "transposed row clamp_": lambda y, o: y.T[1].clamp_(-0.3, 0.3),
    "view of a view setitem": lambda y, o: y[1:][0].__setitem__(slice(0, 2), o[0, :2]),
    "row of row copy_": lambda y, o: y[0].copy_(o[1] * 3),
}


@pytest.mark.parametrize("name", sorted(VIEW_GRADIENTS))
def test_inplace_on_views_gives_pytorchs_gradients(name, rng):
    change = VIEW_GRADIENTS[name]

    def run(x, o):
        y = x * 1.0
        change(y, o)
        return y * y

    x = rng.standard_normal((3, 3))
    o = rng.standard_normal((3, 3))
    check_against_torch(run, run, [x, o])


def test_inplace_into_a_buffer_that_needs_no_grad():
    """``buffer[i] = value`` with a value that requires grad: the buffer joins the graph, as in PyTorch."""

    def run(lib):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        buffer = lib.zeros(3, 2)
        buffer[1] = w * 3
        buffer.add_(1)
        (buffer * buffer).sum().backward()
        return buffer.requires_grad, w.grad.tolist()

    ours, theirs = both(run)
    assert ours[0] == theirs[0]
    np.testing.assert_allclose(ours[1], theirs[1])


# ----------------------------------------------------------------------------- refusals
def test_inplace_on_a_leaf_that_requires_grad_raises_like_pytorch():
    for name in sorted(OPS):
        raises_like_torch(lambda lib, name=name: OPS[name](lib.tensor([1.0, 2.0, 3.0], requires_grad=True), lib),
                          LEAF)


def test_inplace_on_a_view_of_a_leaf_raises_like_pytorch():
    raises_like_torch(lambda lib: lib.tensor([[1.0, 2.0]], requires_grad=True)[0].mul_(2),
                      "a view of a leaf Variable that requires grad is being used in an in-place operation.")


def test_under_no_grad_a_leaf_may_change_and_its_version_says_so():
    for lib in (cs, torch):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        with lib.no_grad():
            w.mul_(3)
            w[0] = 5.0
        assert w._version == 2 and w.tolist() == [5.0, 6.0]


def test_operands_pytorch_refuses():
    raises_like_torch(lambda lib: lib.zeros(3).add_(lib.ones(2, 3)), "doesn't match the broadcast shape")
    raises_like_torch(lambda lib: lib.zeros(3, dtype=lib.int64).add_(1.5), "can't be cast to the desired output type")
    with pytest.raises(RuntimeError, match="shape mismatch: value tensor of shape \\[4\\] cannot be broadcast"):
        cs.zeros(2, 3)[0] = cs.ones(4)
    with pytest.raises(RuntimeError, match="read-only view"):
        cs.zeros(3).expand(2, 3).add_(1)
    unchanged = cs.zeros(3)
    with pytest.raises(RuntimeError):
        unchanged.add_(cs.ones(2, 3))
    assert unchanged._version == 0  # refused before anything changed


# ----------------------------------------------------------------------------- layers
def test_relu_inplace_layer_in_a_network_matches_the_out_of_place_one(rng):
    x = rng.standard_normal((4, 1, 6, 6)).astype(np.float32)
    grads = []
    for inplace in (False, True):
        cs.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(inplace=inplace), nn.Conv2d(3, 2, 3), nn.ReLU(inplace),
                              nn.Flatten(), nn.Linear(8, 2))
        F.cross_entropy(model(cs.tensor(x)), cs.tensor([0, 1, 1, 0])).backward()
        grads.append([p.grad.numpy().copy() for p in model.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_relu_inplace_overwrites_its_input_and_exports_to_onnx(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from convstack.io import export_onnx

    x = cs.tensor([[-1.0, 2.0]])
    assert nn.ReLU(inplace=True)(x) is x and x.tolist() == [[0.0, 2.0]]
    cs.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(inplace=True), nn.Linear(3, 2)).eval()
    example = cs.randn(1, 2)
    proto = export_onnx(model, example, tmp_path / "m.onnx")
    assert [node.op_type for node in proto.graph.node] == ["Gemm", "Relu", "Gemm"]
    onnx.checker.check_model(proto)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (theirs,) = session.run(None, {proto.graph.input[0].name: example.numpy()})
    with cs.no_grad():
        np.testing.assert_allclose(model(example).numpy(), theirs, rtol=1e-6)


def _views_changed_through_one_another(lib):
    x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = x * 1
    first, second, flat = y[0], y[0], y.view(4)
    first.mul_(3)  # seen by second and flat (and y): their histories are made anew from y's
    y.add_(1)
    flat.mul_(x.view(4))
    loss = (second * second).sum() + (flat * flat).sum() + (y * y).sum()
    loss.backward()
    return x.grad.tolist()


def test_other_views_see_an_inplace_change_made_through_one_view():
    ours, theirs = both(_views_changed_through_one_another)
    np.testing.assert_allclose(ours, theirs)
