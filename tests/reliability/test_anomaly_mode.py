"""Numerics (issue 7, item 4): anomaly mode names the first op and layer that produces NaN or Inf,
forward or backward; the trainer stops on a non-finite loss; softmax losses use log-sum-exp;
unsupported dtypes are refused by the layers."""

import math

import numpy as np
import pytest

import convstack as cs
from convstack import nn, optim
from convstack.nn import functional as F
from convstack.train import NonFiniteLossError, Trainer


class Sqrt(nn.Module):
    def forward(self, input):
        return input.sqrt()


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 2, 3, padding=1)
        self.act = nn.ReLU()
        self.root = Sqrt()

    def forward(self, x):
        return self.root(self.act(self.conv1(x)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 3, padding=1)
        self.layer2 = nn.Sequential(Block(), Block())
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 3))

    def forward(self, x):
        return self.head(self.layer2(self.stem(x)))


def test_forward_nan_names_the_op_and_the_layer_path():
    net = Net()
    net.layer2[1].conv1.weight.data[0, 0, 0, 0] = math.nan
    with cs.detect_anomaly(), pytest.raises(cs.AnomalyError) as caught:
        net(cs.randn(2, 1, 4, 4))
    message = str(caught.value)
    assert message.startswith("ConvNd forward produced 32 NaN value(s) of 64 in its output of shape (2, 2, 4, 4)")
    assert "in layer layer2.1.conv1 (Conv2d)" in message
    assert "its input(s) 1 already held non-finite values" in message  # the weight (input 1), not the op


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_forward_op_that_creates_nan_from_finite_inputs():
    with cs.detect_anomaly(), pytest.raises(cs.AnomalyError) as caught:
        nn.Sequential(nn.Identity(), Sqrt())(cs.tensor([[1.0, -4.0]]))
    message = str(caught.value)
    assert message.startswith("Sqrt forward produced 1 NaN value(s) of 2")
    assert "in layer 1 (Sqrt)" in message and "its inputs were all finite" in message
    assert "test_anomaly_mode.py" in message  # the line that created the op


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_backward_inf_names_the_op_and_the_layer_path():
    """sqrt is finite at 0 but its gradient there is infinite: only backward can see it."""
    net = Net()
    x = cs.randn(2, 1, 4, 4)
    net.layer2[1].conv1.bias.data[...] = -1e3  # every ReLU output 0, so sqrt(0) = 0 and d sqrt(0) = inf
    with cs.detect_anomaly():
        loss = F.cross_entropy(net(x), cs.tensor([0, 1]))
        with pytest.raises(cs.AnomalyError) as caught:
            loss.backward()
    message = str(caught.value)
    assert message.startswith("Sqrt backward produced") and ("Inf" in message or "NaN" in message)
    assert "in layer layer2.1.root (Sqrt)" in message and "the gradient it received was finite" in message


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_off_by_default_and_restored_after_the_block():
    assert not cs.is_anomaly_enabled()
    with cs.detect_anomaly():
        assert cs.is_anomaly_enabled()
    assert not cs.is_anomaly_enabled()
    with np.errstate(invalid="ignore"):
        y = cs.tensor([-1.0]).sqrt()  # no check, no error: NaN flows on as in NumPy
    assert math.isnan(y.item())
    cs.set_detect_anomaly(True)
    try:
        with pytest.raises(cs.AnomalyError, match="outside any layer"), np.errstate(invalid="ignore"):
            cs.tensor([-1.0]).sqrt()
    finally:
        cs.set_detect_anomaly(False)
    with pytest.raises(ValueError, match="set_detect_anomaly: invalid value for argument `mode`"):
        cs.set_detect_anomaly("yes")


def test_anomaly_mode_changes_no_number():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2, 3))
    x = cs.randn(2, 1, 4, 4)
    plain = F.cross_entropy(net(x), cs.tensor([0, 2]))
    plain.backward()
    grads = [p.grad.numpy().copy() for p in net.parameters()]
    net.zero_grad()
    with cs.detect_anomaly():
        checked = F.cross_entropy(net(x), cs.tensor([0, 2]))
        checked.backward()
    assert checked.item() == plain.item()
    for p, g in zip(net.parameters(), grads):
        np.testing.assert_array_equal(p.grad.numpy(), g)


def blobs(n=64):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, n)
    points = (labels[:, None] * 2 - 1 + rng.standard_normal((n, 2)) * 0.5).astype(np.float32)
    return [(cs.tensor(points[i : i + 8]), cs.tensor(labels[i : i + 8])) for i in range(0, n, 8)]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_trainer_with_detect_anomaly_names_epoch_batch_op_and_layer():
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=1e30), detect_anomaly=True, progress=False)
    with pytest.raises(cs.AnomalyError, match=r"^at epoch 1, batch \d+: .* in layer \d \(Linear\)"):
        trainer.fit(blobs(), epochs=2)
    assert not cs.is_anomaly_enabled()


def test_trainer_without_anomaly_mode_stops_on_the_loss_with_epoch_and_batch():
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=1e30), progress=False)
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss \(nan\) at epoch 1, batch \d+"):
        with np.errstate(all="ignore"):
            trainer.fit(blobs(), epochs=2)


@pytest.mark.parametrize("scale", [1e4, -1e4, 3e4])
def test_cross_entropy_on_huge_logits_is_finite_and_exact(scale):
    logits = np.array([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]], dtype=np.float64) * scale
    targets = np.array([0, 2])
    loss = F.cross_entropy(cs.tensor(logits, requires_grad=True, dtype=cs.float64), cs.tensor(targets))
    shifted = logits - logits.max(axis=1, keepdims=True)  # log-sum-exp by hand
    expected = np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(2), targets])
    assert math.isfinite(loss.item()) and loss.item() == pytest.approx(expected, rel=1e-12)
    loss32 = F.cross_entropy(cs.tensor(logits.astype(np.float32), requires_grad=True), cs.tensor(targets))
    assert loss32.item() == pytest.approx(expected, rel=1e-6)
    with cs.detect_anomaly():  # and no op inside produces an Inf or NaN on the way, forward or backward
        x = cs.tensor(logits.astype(np.float32), requires_grad=True)
        F.cross_entropy(x, cs.tensor(targets)).backward()
    assert np.isfinite(x.grad.numpy()).all()
    torch = pytest.importorskip("torch")
    reference = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(targets))
    assert loss.item() == pytest.approx(reference.item(), rel=1e-12)


@pytest.mark.parametrize(
    "dtype,words",
    [
        (np.float16, "got unsupported dtype float16"),
        (np.int64, "got dtype int64"),
        (np.complex64, "got unsupported dtype complex64"),
    ],
)
def test_conv_refuses_an_unsupported_input_dtype(dtype, words):
    conv = nn.Conv2d(3, 4, 3)
    with pytest.raises(TypeError, match=r"^Conv2d: expected a floating-point input of dtype float32") as caught:
        conv(np.zeros((1, 3, 5, 5), dtype=dtype))
    assert words in str(caught.value) and "(input shape (1, 3, 5, 5))" in str(caught.value)


def test_layers_refuse_a_float64_input_for_float32_weights_saying_how_to_convert():
    model = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(TypeError, match=r"^0 \(Linear\): expected an input of dtype float32 .* got float64 .*"
                       r"convert the input with \.to\(float32\) or the model with \.to\(float64\)"):
        model(cs.randn(2, 4, dtype=cs.float64))
    model.to(cs.float64)
    assert model(cs.randn(2, 4, dtype=cs.float64)).dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float16, np.complex64, object])
def test_tensors_of_unsupported_dtypes_cannot_be_made(dtype):
    with pytest.raises(TypeError, match="tensor: (unsupported dtype|cannot make a tensor)"):
        cs.tensor(np.zeros(3, dtype=dtype))
