"""The layers over PyTorch's functional surface for vision (activations, Unfold/Fold, pixel and channel
shuffles, distances, Embedding, metric losses): module equals functional, repr and parameters equal
PyTorch's, get_config round trips, constructor errors pinned, Embedding's own behaviour."""

import math

import numpy as np
import pytest

import convstack as cs
from convstack import nn
from convstack.nn import functional as F

# (layer, input shape, the same computation written with the functional op)
EQUIVALENTS = [
    (nn.Hardtanh(-2, 2), (3, 4), lambda m, x: F.hardtanh(x, -2, 2)),
    (nn.Threshold(0.1, 20), (3, 4), lambda m, x: F.threshold(x, 0.1, 20)),
    (nn.CELU(2.0), (3, 4), lambda m, x: F.celu(x, 2.0)),
    (nn.SELU(), (3, 4), lambda m, x: F.selu(x)),
    (nn.GLU(), (3, 4), lambda m, x: F.glu(x, -1)),
    (nn.GLU(0), (4, 3), lambda m, x: F.glu(x, 0)),
    (nn.LogSigmoid(), (3, 4), lambda m, x: F.logsigmoid(x)),
    (nn.Softmin(dim=0), (3, 4), lambda m, x: F.softmin(x, 0)),
    (nn.Softmin(), (3, 4), lambda m, x: F.softmin(x, 1)),  # PyTorch's legacy implicit dim
    (nn.Softsign(), (3, 4), lambda m, x: F.softsign(x)),
    (nn.Tanhshrink(), (3, 4), lambda m, x: F.tanhshrink(x)),
    (nn.Hardshrink(0.3), (3, 4), lambda m, x: F.hardshrink(x, 0.3)),
    (nn.Softshrink(), (3, 4), lambda m, x: F.softshrink(x, 0.5)),
    (nn.Unfold((2, 3), dilation=(1, 2), padding=1, stride=2), (2, 3, 6, 7),
     lambda m, x: F.unfold(x, (2, 3), (1, 2), 1, 2)),
    (nn.Fold((4, 5), 2), (2, 12, 12), lambda m, x: F.fold(x, (4, 5), 2)),
    (nn.PixelShuffle(2), (2, 8, 3, 3), lambda m, x: F.pixel_shuffle(x, 2)),
    (nn.PixelUnshuffle(2), (2, 2, 4, 6), lambda m, x: F.pixel_unshuffle(x, 2)),
    (nn.ChannelShuffle(3), (2, 6, 3, 3), lambda m, x: F.channel_shuffle(x, 3)),
    (nn.Upsample(size=(5, 7), mode="bicubic"), (2, 3, 4, 4), lambda m, x: F.interpolate(x, (5, 7), mode="bicubic")),
]


@pytest.mark.parametrize("layer, shape, functional", EQUIVALENTS, ids=lambda v: type(v).__name__)
def test_module_equals_functional(layer, shape, functional):
    x = cs.tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32), requires_grad=True)
    out = layer(x)
    np.testing.assert_array_equal(out.detach().numpy(), functional(layer, x).detach().numpy())
    out.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


def test_two_input_layers_equal_functional(rng):
    a, b, c = (cs.tensor(rng.standard_normal((4, 6))) for _ in range(3))
    np.testing.assert_array_equal(nn.CosineSimilarity(0, 1e-6)(a, b).numpy(),
                                  F.cosine_similarity(a, b, 0, 1e-6).numpy())
    np.testing.assert_array_equal(nn.PairwiseDistance(1.0, keepdim=True)(a, b).numpy(),
                                  F.pairwise_distance(a, b, 1.0, keepdim=True).numpy())
    np.testing.assert_array_equal(nn.TripletMarginLoss(2.0, swap=True, reduction="none")(a, b, c).numpy(),
                                  F.triplet_margin_loss(a, b, c, 2.0, swap=True, reduction="none").numpy())
    y = cs.tensor([1.0, -1.0, 1.0, -1.0, 1.0, 1.0])
    np.testing.assert_array_equal(nn.MarginRankingLoss(0.5, "sum")(a[0], b[0], y).numpy(),
                                  F.margin_ranking_loss(a[0], b[0], y, 0.5, "sum").numpy())


# (class name, args, kwargs): built both here and in PyTorch
SPECS = [
    ("Hardtanh", (), {}),
    ("Hardtanh", (-2, 2), {"inplace": True}),
    ("Threshold", (0.1, 20), {}),
    ("CELU", (), {"alpha": 2.0}),
    ("SELU", (), {"inplace": True}),
    ("GLU", (), {"dim": 1}),
    ("LogSigmoid", (), {}),
    ("Softmin", (), {}),
    ("Softmin", (1,), {}),
    ("Softsign", (), {}),
    ("Tanhshrink", (), {}),
    ("Hardshrink", (), {}),
    ("Softshrink", (0.25,), {}),
    ("Unfold", (2,), {}),
    ("Unfold", ([2, 3],), {"dilation": 2, "padding": 1, "stride": (1, 2)}),
    ("Fold", ((4, 5), 2), {}),
    ("Fold", (4, 2, 1, 0, 1), {}),
    ("PixelShuffle", (2,), {}),
    ("PixelUnshuffle", (3,), {}),
    ("ChannelShuffle", (2,), {}),
    ("CosineSimilarity", (), {"dim": 0}),
    ("PairwiseDistance", (), {"p": 1.0, "keepdim": True}),
    ("Embedding", (10, 3), {}),
    ("Embedding", (10, 3), {"padding_idx": -1, "max_norm": 1.0, "norm_type": 1.0, "scale_grad_by_freq": True}),
    ("Upsample", (), {"scale_factor": 2, "mode": "bicubic", "align_corners": True}),
    ("TripletMarginLoss", (), {"margin": 2.0, "p": 1.0, "swap": True}),
    ("MarginRankingLoss", (), {"margin": 0.5, "reduction": "sum"}),
]


def _spec_id(spec):
    return spec[0] + "".join(f"-{k}" for k in spec[2])


@pytest.mark.parametrize("spec", SPECS, ids=[_spec_id(s) for s in SPECS])
def test_parameter_shapes_and_repr_equal_pytorch(spec):
    torch = pytest.importorskip("torch")
    name, args, kwargs = spec
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [
        (n, tuple(p.shape)) for n, p in theirs.named_parameters()
    ]


@pytest.mark.parametrize("spec", SPECS, ids=[_spec_id(s) for s in SPECS])
def test_get_config_round_trip(spec):
    name, args, kwargs = spec
    layer = getattr(nn, name)(*args, **kwargs)
    config = layer.get_config()
    rebuilt = type(layer)(**config)
    assert rebuilt.get_config() == config
    assert repr(rebuilt) == repr(layer)


def test_embedding_initialisation_and_padding_row():
    layer = nn.Embedding(1000, 8, padding_idx=3)
    weight = layer.weight.detach().numpy()
    assert weight.shape == (1000, 8) and weight.dtype == np.float32
    np.testing.assert_array_equal(weight[3], 0)
    rest = np.delete(weight, 3, axis=0)
    assert abs(rest.mean()) < 0.05 and abs(rest.std() - 1) < 0.05  # N(0, 1), as PyTorch
    assert nn.Embedding(4, 2, dtype=cs.float64).weight.dtype == np.float64


def test_embedding_matches_a_torch_twin(rng):
    """Same weights: same lookups, same weight gradient (padding row and frequency scaling included)."""
    torch = pytest.importorskip("torch")
    ours = nn.Embedding(6, 4, padding_idx=2, scale_grad_by_freq=True)
    theirs = torch.nn.Embedding(6, 4, padding_idx=2, scale_grad_by_freq=True)
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    indices = np.array([[1, 2, 5], [5, 5, 0]])
    upstream = rng.standard_normal((2, 3, 4)).astype(np.float32)
    out_ours, out_theirs = ours(cs.tensor(indices)), theirs(torch.tensor(indices))
    np.testing.assert_array_equal(out_ours.detach().numpy(), out_theirs.detach().numpy())
    out_ours.backward(upstream)
    out_theirs.backward(torch.tensor(upstream))
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_embedding_max_norm_rescales_the_rows_it_looks_up():
    layer = nn.Embedding(5, 3, max_norm=1.0)
    with cs.no_grad():
        layer.weight.data[...] = 3.0
    layer(cs.tensor([0, 2]))
    norms = np.linalg.norm(layer.weight.detach().numpy(), axis=1)
    np.testing.assert_allclose(norms[[0, 2]], 1.0, rtol=1e-6)
    np.testing.assert_allclose(norms[[1, 3, 4]], math.sqrt(27.0), rtol=1e-6)


def test_embedding_from_pretrained():
    table = cs.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad
    np.testing.assert_array_equal(frozen(cs.tensor([2, 0])).numpy(), [[5.0, 6.0], [1.0, 2.0]])
    trainable = nn.Embedding.from_pretrained(table, freeze=False, padding_idx=1)
    assert trainable.weight.requires_grad
    np.testing.assert_array_equal(trainable.weight.detach().numpy()[1], [3.0, 4.0])  # not zeroed, as PyTorch
    table.data[0, 0] = 100.0
    assert frozen.weight.detach().numpy()[0, 0] == 1.0  # a copy


def test_embedding_loads_a_torch_state_dict():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Embedding(7, 5)
    ours = nn.Embedding(7, 5)
    ours.load_state_dict(theirs.state_dict())
    indices = np.array([0, 6, 3])
    np.testing.assert_array_equal(ours(cs.tensor(indices)).detach().numpy(),
                                  theirs(torch.tensor(indices)).detach().numpy())


ERRORS = [
    (lambda: nn.Hardtanh(1, -1), "Hardtanh: invalid value for argument `max_val`: expected a number >= min_val (1), "
                                 "received -1"),
    (lambda: nn.Threshold("a", 1), "Threshold: invalid value for argument `threshold`: expected a real number, "
                                   "received 'a'"),
    (lambda: nn.CELU(0), "CELU: invalid value for argument `alpha`: expected a non-zero number, received 0"),
    (lambda: nn.GLU(1.5), "GLU: invalid value for argument `dim`: expected an integer, received 1.5"),
    (lambda: nn.Softshrink(-1), "Softshrink: invalid value for argument `lambd`: expected a number >= 0, received -1"),
    (lambda: nn.Unfold(0), "Unfold: invalid value for argument `kernel_size`: expected positive integers, "
                           "received 0"),
    (lambda: nn.Fold((4, 5, 6), 2), "Fold: invalid value for argument `output_size`: expected an integer or a tuple "
                                    "of 2 integers, received (4, 5, 6)"),
    (lambda: nn.PixelShuffle(0), "PixelShuffle: invalid value for argument `upscale_factor`: expected a positive "
                                 "integer, received 0"),
    (lambda: nn.ChannelShuffle(2.0), "ChannelShuffle: invalid value for argument `groups`: expected a positive "
                                     "integer, received 2.0"),
    (lambda: nn.CosineSimilarity(eps=-1), "CosineSimilarity: invalid value for argument `eps`: expected a "
                                          "non-negative number, received -1"),
    (lambda: nn.PairwiseDistance(keepdim=None), "PairwiseDistance: invalid value for argument `keepdim`: expected "
                                                "True or False, received None"),
    (lambda: nn.Embedding(0, 3), "Embedding: invalid value for argument `num_embeddings`: expected a positive "
                                 "integer, received 0"),
    (lambda: nn.Embedding(5, 3, padding_idx=5), "Embedding: invalid value for argument `padding_idx`: expected None "
                                                "or an integer in [-5, 4] (within num_embeddings 5), received 5"),
    (lambda: nn.Embedding(5, 3, sparse=True), "Embedding: invalid value for argument `sparse`: expected False "
                                              "(convstack has dense gradients only), received True"),
    (lambda: nn.Embedding(5, 3, _weight=cs.ones(4, 3)), "Embedding: invalid value for argument `_weight`: expected "
                                                        "a tensor of shape (5, 3) (num_embeddings, embedding_dim), "
                                                        "received 'a tensor of shape (4, 3)'"),
    (lambda: nn.TripletMarginLoss(margin=0), "TripletMarginLoss: invalid value for argument `margin`: expected a "
                                             "number > 0, received 0"),
    (lambda: nn.MarginRankingLoss(reduction="avg"), "MarginRankingLoss: invalid value for argument `reduction`: "
                                                    "expected one of 'none', 'mean', 'sum', received 'avg'"),
]


@pytest.mark.parametrize("call, message", ERRORS, ids=lambda v: v if isinstance(v, str) and len(v) < 20 else None)
def test_constructor_errors_are_pinned(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert str(error.value) == message


def test_every_bad_argument_is_reported_at_once():
    with pytest.raises(ValueError) as error:
        nn.Embedding(0, -1, sparse=True)
    assert str(error.value).count("\n") == 2
