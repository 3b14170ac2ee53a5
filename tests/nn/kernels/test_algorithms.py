"""Each tier's convolution algorithms, forced, agree with the direct im2col path; chunks change nothing; choices."""

import re

import numpy as np
import pytest
from tests.helpers import kernel_tiers

import convstack as cs
import convstack.backend as backend
from convstack import blas
from convstack.nn.kernels import algorithm, tiers
from convstack.nn.kernels.geometry import ConvGeometry
from convstack.nn.kernels.reference import conv_gemm, fft_conv
from convstack.nn.kernels.reference.windows import pad_spatial
from convstack.nn.kernels.registry import ConvAlgorithm

# name: (input shape, weight shape, stride, pads, dilation, groups)
SHAPES = {
    "3x3-pad1-odd": ((2, 3, 7, 9), (4, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    "3x3-pad0": ((3, 8, 6, 5), (5, 8, 3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    "3x3-pad2": ((1, 4, 11, 10), (6, 4, 3, 3), (1, 1), ((2, 2), (2, 2)), (1, 1), 1),
    "3x3-asymmetric": ((2, 5, 9, 6), (3, 5, 3, 3), (1, 1), ((2, 1), (0, 1)), (1, 1), 1),
    "3x3-groups": ((2, 6, 8, 8), (4, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 2),
    "3x3-wide": ((2, 64, 12, 13), (48, 64, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    "3x3-depthwise": ((2, 4, 7, 7), (4, 1, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 4),
    "1d-k5": ((2, 3, 20), (4, 3, 5), (1,), ((2, 2),), (1,), 1),
    "1d-k3": ((3, 4, 17), (5, 4, 3), (1,), ((1, 0),), (1,), 1),
    "2d-k3x4-same": ((2, 3, 9, 8), (5, 3, 3, 4), (1, 1), ((1, 1), (1, 2)), (1, 1), 1),
    "3d": ((2, 2, 5, 6, 4), (3, 2, 3, 3, 3), (1, 1, 1), ((1, 1), (1, 1), (0, 1)), (1, 1, 1), 1),
    "strided-dilated-groups": ((2, 4, 9, 8), (6, 2, 3, 2), (2, 1), ((1, 1), (0, 0)), (1, 2), 2),
    "1x1": ((2, 6, 5, 7), (4, 6, 1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    "1x1-stride2-pad1-groups": ((2, 6, 5, 7), (9, 2, 1, 1), (2, 2), ((1, 1), (1, 1)), (1, 1), 3),
    "1x1-3d-stride2": ((2, 4, 5, 4, 3), (3, 4, 1, 1, 1), (2, 2, 2), ((0, 0),) * 3, (1, 1, 1), 1),
}


def _reference(x, weight, grad, geometry):
    """float64 forward, input and weight gradients by the unchunked im2col path."""
    x, weight, grad = (a.astype(np.float64) for a in (x, weight, grad))
    padded = pad_spatial(x, geometry.pads)
    stride, dilation, groups = geometry.stride, geometry.dilation, geometry.groups
    out, cols = conv_gemm.forward(padded, weight, stride, dilation, groups)
    grad_padded = conv_gemm.backward_data(grad, weight, padded.shape, stride, dilation, groups)
    crop = tuple(slice(b, b + n) for (b, _), n in zip(geometry.pads, x.shape[2:]))
    grad_input = grad_padded[(Ellipsis,) + crop]
    grad_weight = conv_gemm.backward_weight(grad, cols, weight.shape, stride, groups)
    return out, grad_input, grad_weight


def _arrays(shape_name, rng, dtype=np.float32):
    input_shape, weight_shape, stride, pads, dilation, groups = SHAPES[shape_name]
    x = rng.standard_normal(input_shape).astype(dtype)
    weight = rng.standard_normal(weight_shape).astype(dtype)
    geometry = ConvGeometry.of(x, weight, stride, pads, dilation, groups)
    grad = rng.standard_normal((input_shape[0], weight_shape[0]) + geometry.out_sizes).astype(dtype)
    return x, weight, grad, geometry


def _close(actual, expected, rtol):
    """Relative to the result's scale: max |actual - expected| <= rtol * max |expected|."""
    assert actual.shape == expected.shape
    error = np.abs(actual - expected).max() / np.abs(expected).max()
    assert error <= rtol, f"relative error {error:.2e} > {rtol:.0e}"


def _cases():
    for tier in kernel_tiers():
        policy = tiers.get_tier(tier).convolution
        for name in policy.names():
            for shape_name in SHAPES:
                _, _, _, geometry = _arrays(shape_name, np.random.default_rng(0))
                passes = [p for p in algorithm.PASSES if policy.get(name).applies(p, geometry)]
                if passes:
                    yield pytest.param(tier, name, shape_name, passes, id=f"{tier}-{name}-{shape_name}")


@pytest.mark.parametrize("tier, name, shape_name, passes", list(_cases()))
def test_forced_algorithm_matches_direct_path(tier, name, shape_name, passes, rng):
    x, weight, grad, geometry = _arrays(shape_name, rng)
    expected = dict(zip(algorithm.PASSES, _reference(x, weight, grad, geometry)))
    with tiers.kernel_tier(tier), algorithm.use(name):
        for pass_ in passes:
            assert algorithm.choose(pass_, geometry) == name
        results = {
            "forward": lambda: algorithm.forward(x, weight, None, geometry),
            "backward_data": lambda: algorithm.backward_data(grad, weight, geometry),
            "backward_weight": lambda: algorithm.backward_weight(grad, x, geometry),
        }
        for pass_ in passes:
            actual = results[pass_]()
            assert actual.dtype == np.float32
            _close(actual, expected[pass_], 1e-4)


@pytest.mark.parametrize("tier", kernel_tiers())
@pytest.mark.parametrize("name", ["gemm", "flat-planes", "winograd4", "fft"])
def test_float64_is_exact(tier, name, rng):
    x, weight, grad, geometry = _arrays("3x3-pad1-odd", rng, np.float64)
    expected = _reference(x, weight, grad, geometry)
    with tiers.kernel_tier(tier), algorithm.use(name):
        actual = (
            algorithm.forward(x, weight, None, geometry),
            algorithm.backward_data(grad, weight, geometry),
            algorithm.backward_weight(grad, x, geometry),
        )
    for a, e in zip(actual, expected):
        _close(a, e, 1e-12)


@pytest.mark.parametrize("tier", kernel_tiers())
@pytest.mark.parametrize("name", ["gemm", "flat-planes", "correlate", "winograd2", "winograd4"])
@pytest.mark.parametrize("shape_name", ["3x3-pad1-odd", "3x3-groups", "strided-dilated-groups", "3d"])
def test_chunks_of_one_sample_equal_the_whole_batch(tier, name, shape_name, rng):
    x, weight, grad, geometry = _arrays(shape_name, rng)
    bias = rng.standard_normal(weight.shape[0]).astype(np.float32)
    with tiers.kernel_tier(tier), algorithm.use(name):
        whole = (
            algorithm.forward(x, weight, bias, geometry),
            algorithm.backward_data(grad, weight, geometry),
            algorithm.backward_weight(grad, x, geometry),
        )
        with algorithm.workspace(1):  # one sample a chunk
            chunked = (
                algorithm.forward(x, weight, bias, geometry),
                algorithm.backward_data(grad, weight, geometry),
                algorithm.backward_weight(grad, x, geometry),
            )
    for a, b in zip(chunked, whole):  # the weight gradient sums over the chunks in another order
        _close(a, b, 1e-5)


@pytest.mark.parametrize("name, pass_, expected", [
    ("flat-planes", "forward", "conv2d: the flat-plane buffer would need 472.5 KiB"),  # 64 x 9 taps x 14x15 planes
    ("gemm", "forward", "conv2d: the im2col buffer would need 351.0 KiB"),  # 64 x 9 taps x 12x13 outputs
    ("gemm", "backward_data", "conv2d: the im2col buffer would need 351.0 KiB"),  # dcols, the same size
])
def test_reference_buffer_of_one_sample_too_large_fails_before_allocating(name, pass_, expected, rng):
    x, weight, grad, geometry = _arrays("3x3-wide", rng)
    backend.set_memory_limit(2**16)
    try:
        with tiers.kernel_tier("numpy"), algorithm.use(name), algorithm.workspace(2**10):
            with pytest.raises(MemoryError) as caught:
                if pass_ == "forward":
                    algorithm.forward(x, weight, None, geometry)
                else:
                    algorithm.backward_data(grad, weight, geometry)
    finally:
        backend.set_memory_limit(None)
    message = str(caught.value)
    assert message.startswith(expected + " (input shape (2, 64, 12, 13)")
    assert "workspace limit (1.0 KiB)" in message


@pytest.mark.skipif("numba" not in kernel_tiers(), reason="the compiled tier needs Numba")
@pytest.mark.parametrize("pass_", ["forward", "backward_data", "backward_weight"])
def test_compiled_im2col_checks_its_columns_before_allocating(pass_, rng, monkeypatch):
    from convstack.nn.kernels.compiled import im2col

    x, weight, grad, geometry = _arrays("3x3-wide", rng)
    monkeypatch.setattr(im2col, "get_num_threads", lambda: 2)
    backend.set_memory_limit(2**16)
    try:
        with tiers.kernel_tier("numba"), algorithm.use("gemm"), pytest.raises(MemoryError) as caught:
            {"forward": lambda: algorithm.forward(x, weight, None, geometry),
             "backward_data": lambda: algorithm.backward_data(grad, weight, geometry),
             "backward_weight": lambda: algorithm.backward_weight(grad, x, geometry)}[pass_]()
    finally:
        backend.set_memory_limit(None)
    # one sample's columns a thread: 64 x 9 taps x 12x13 outputs x 4 bytes = 351 KiB, on both threads
    assert str(caught.value).startswith("conv2d: the im2col buffer would need 702.0 KiB (input shape (2, 64, 12, 13)")


def _geometry(input_shape, weight_shape, stride=1, padding=1, groups=1):
    dims = len(weight_shape) - 2
    return ConvGeometry(input_shape, weight_shape, (stride,) * dims, ((padding, padding),) * dims,
                        (1,) * dims, groups, "float32")


def test_reference_heuristic_choices(monkeypatch):
    monkeypatch.setattr(blas, "threads", lambda: 1)
    geometry = _geometry
    with tiers.kernel_tier("numpy"):
        resnet = geometry((128, 16, 32, 32), (16, 16, 3, 3))
        assert [algorithm.choose(p, resnet) for p in algorithm.PASSES] == ["winograd4"] * 3
        assert algorithm.choose("forward", geometry((8, 512, 7, 7), (512, 512, 3, 3))) == "winograd2"
        assert algorithm.choose("forward", geometry((8, 256, 14, 14), (64, 256, 1, 1), padding=0)) == "pointwise"
        depthwise = geometry((8, 32, 56, 56), (32, 1, 3, 3), groups=32)
        assert [algorithm.choose(p, depthwise) for p in algorithm.PASSES] == ["flat-planes"] * 3
        lenet = geometry((64, 6, 14, 14), (16, 6, 5, 5), padding=0)
        assert algorithm.choose("forward", lenet) == "gemm"  # its columns are kept for the weight gradient
        assert algorithm.choose("backward_data", lenet) == "flat-planes"  # col2im over flat planes
        stem = geometry((8, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3)
        assert [algorithm.choose(p, stem) for p in algorithm.PASSES] == ["gemm"] * 3
        with algorithm.use("fft"):
            assert algorithm.choose("forward", stem) == "gemm"  # forced only where it applies
        assert algorithm.choose("forward", geometry((8, 16, 32, 32), (16, 16, 11, 11), padding=5)) == "fft"
        assert algorithm.choose("forward", geometry((8, 16, 16, 16, 16), (16, 16, 3, 3, 3))) == "winograd4"


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_reference_winograd_gives_way_for_thin_layers_when_blas_has_two_threads(monkeypatch, threads):
    monkeypatch.setattr(cs.threads, "get_num_threads", lambda: threads)
    parallel = threads >= 2

    def geometry(channels, size, dims=2, batch=128):
        return ConvGeometry((batch, channels) + (size,) * dims, (channels, channels) + (3,) * dims, (1,) * dims,
                            ((1, 1),) * dims, (1,) * dims, 1, "float32")

    with tiers.kernel_tier("numpy"):
        for thin in (geometry(16, 32), geometry(32, 16)):
            assert [algorithm.choose(p, thin) for p in algorithm.PASSES] == (
                ["flat-planes"] * 3 if parallel else ["winograd4"] * 3)
        one_d = geometry(64, 1024, dims=1, batch=8)
        assert [algorithm.choose(p, one_d) for p in algorithm.PASSES] == (
            ["gemm", "correlate", "gemm"] if parallel else ["winograd4"] * 3)
        assert algorithm.choose("forward", geometry(64, 8)) == "winograd4"
        assert algorithm.choose("forward", geometry(16, 16, dims=3, batch=8)) == "winograd4"


@pytest.mark.parametrize("tier", kernel_tiers())
def test_forcing_gemm_runs_im2col_and_nothing_else(tier, monkeypatch, rng):
    """A forced choice reaches exactly the algorithm it names: no other algorithm's kernel runs underneath."""
    from convstack.nn.kernels.reference import flat_planes, winograd

    def refuse(*args, **kwargs):
        raise AssertionError("another algorithm ran under a forced gemm")

    for module, name in ((flat_planes, "forward"), (flat_planes, "backward_weight"), (flat_planes, "backward_data"),
                         (winograd, "forward"), (winograd, "backward_weight")):
        monkeypatch.setattr(module, name, refuse)
    x, weight, grad, geometry = _arrays("3x3-wide", rng)
    expected = _reference(x, weight, grad, geometry)
    with tiers.kernel_tier(tier), algorithm.use("gemm"):
        actual = (algorithm.forward(x, weight, None, geometry), algorithm.backward_data(grad, weight, geometry),
                  algorithm.backward_weight(grad, x, geometry))
    for a, e in zip(actual, expected):
        _close(a, e, 1e-4)


class _Direct(ConvAlgorithm):
    """A test algorithm: the float64 direct path, preferred for 5x5 kernels; counts its calls."""

    name = "test-direct"
    passes = ("forward",)

    def __init__(self):
        self.calls = []

    def preferred(self, pass_, geometry, context):
        return geometry.kernel == (5, 5)

    def forward(self, x, weight, bias, geometry):
        self.calls.append("forward")
        out = _reference(x, weight, np.zeros((x.shape[0], weight.shape[0]) + geometry.out_sizes), geometry)[0]
        return out.astype(x.dtype) if bias is None else (out + bias.reshape(-1, 1, 1)).astype(x.dtype)


@pytest.mark.parametrize("tier", kernel_tiers())
def test_a_registered_algorithm_is_chosen_forced_and_measured(tier, rng):
    policy = tiers.get_tier(tier).convolution
    extra = _Direct()
    policy.register(extra, before=policy.names()[0])
    try:
        x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
        weight = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
        geometry = ConvGeometry.of(x, weight, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
        with tiers.kernel_tier(tier):
            assert algorithm.choose("forward", geometry) == "test-direct"  # its rule prefers 5x5 kernels
            assert algorithm.choose("backward_data", geometry) != "test-direct"  # it has no such pass
            three = _geometry((2, 3, 9, 9), (4, 3, 3, 3))
            assert algorithm.choose("forward", three) != "test-direct"
            with algorithm.use("test-direct"):
                assert algorithm.choose("forward", three) == "test-direct"
            out = cs.nn.functional.conv2d(cs.tensor(x), cs.tensor(weight))
            _close(out.numpy(), _reference(x, weight, np.zeros(out.shape), geometry)[0], 1e-5)
            assert extra.calls == ["forward"]
            with algorithm.benchmark():
                algorithm.forward(x, weight, None, geometry)
                assert "test-direct" in algorithm.candidates("forward", geometry)
                assert algorithm.cached_choices()[("forward", geometry)] in algorithm.candidates("forward", geometry)
            assert len(extra.calls) == 2  # measured once among the candidates
    finally:
        policy.unregister("test-direct")
        policy.clear_cache()
    assert "test-direct" not in policy.names()


def test_registering_twice_or_before_an_unknown_name_fails():
    policy = tiers.get_tier("numpy").convolution
    with pytest.raises(ValueError, match="already registered"):
        policy.register(policy.get("gemm"))
    with pytest.raises(ValueError, match="no algorithm named 'nothing'"):
        policy.register(_Direct(), before="nothing")
    with pytest.raises(TypeError, match="expected a ConvAlgorithm"):
        policy.register("gemm")


def test_benchmark_measures_once_and_caches(rng):
    x, weight, _, geometry = _arrays("3x3-pad1-odd", rng)
    algorithm.clear_cache()
    try:
        with algorithm.benchmark():
            first = algorithm.forward(x, weight, None, geometry)
            chosen = algorithm.cached_choices()[("forward", geometry)]
            assert chosen in algorithm.candidates("forward", geometry)
            assert algorithm.choose("forward", geometry) == chosen
            np.testing.assert_allclose(algorithm.forward(x, weight, None, geometry), first, rtol=1e-6)
    finally:
        algorithm.clear_cache()
    assert algorithm.cached_choices() == {}


def test_settings_errors():
    expected = "use: invalid value for argument `name`: expected one of pointwise, winograd4, winograd2, fft, "
    with tiers.kernel_tier("numpy"), pytest.raises(ValueError, match=re.escape(expected)) as caught:
        with algorithm.use("winograd"):
            pass
    assert str(caught.value).endswith("flat-planes, correlate, gemm or None, received 'winograd'")
    message = (
        "set_workspace_limit: invalid value for argument `nbytes`: expected a positive integer or None, received 0"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        algorithm.set_workspace_limit(0)
    assert algorithm.workspace_limit() == algorithm.DEFAULT_WORKSPACE_LIMIT


@pytest.mark.parametrize("n, expected", [(1, 1), (7, 8), (17, 18), (97, 100), (1025, 1080), (230, 240)])
def test_fft_good_size(n, expected):
    assert fft_conv.good_size(n) == expected


@pytest.mark.skipif("numba" not in kernel_tiers(), reason="the compiled tier needs Numba")
def test_compiled_heuristic_choices(monkeypatch):
    monkeypatch.setattr(cs.threads, "get_num_threads", lambda: 2)
    with tiers.kernel_tier("numba"):
        resnet = _geometry((128, 16, 32, 32), (16, 16, 3, 3))
        assert [algorithm.choose(p, resnet) for p in algorithm.PASSES] == ["winograd4"] * 3
        depthwise = _geometry((8, 32, 56, 56), (32, 1, 3, 3), groups=32)
        assert [algorithm.choose(p, depthwise) for p in algorithm.PASSES] == ["depthwise"] * 3
        assert algorithm.choose("forward", _geometry((8, 256, 14, 14), (256, 256, 3, 3))) == "winograd4"  # 128 tiles
        for layer in (_geometry((8, 512, 7, 7), (512, 512, 3, 3)),  # 32 tiles: transforming the weights costs more
                      _geometry((64, 6, 14, 14), (16, 6, 5, 5), padding=0),  # LeNet
                      _geometry((8, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3),  # a stem
                      _geometry((128, 16, 32, 32), (32, 16, 3, 3), stride=2),  # ResNet's downsampling
                      _geometry((8, 64, 1024), (64, 64, 9), padding=4),  # 1-D
                      _geometry((128, 3, 32, 32), (16, 3, 3, 3))):  # three input channels
            assert [algorithm.choose(p, layer) for p in algorithm.PASSES] == ["gemm"] * 3
        assert algorithm.choose("forward", _geometry((8, 256, 14, 14), (64, 256, 1, 1), padding=0)) == "pointwise"


@pytest.mark.parametrize("tier", kernel_tiers())
@pytest.mark.parametrize("shape_name", ["3x3-pad1-odd", "3x3-wide", "strided-dilated-groups", "1d-k5", "3x3-depthwise"])
def test_forward_with_relu_equals_forward_then_relu(tier, shape_name, rng):
    x, weight, _, geometry = _arrays(shape_name, rng)
    bias = rng.standard_normal(weight.shape[0]).astype(np.float32)
    policy = tiers.get_tier(tier).convolution
    for name in policy.names():
        if not policy.get(name).applies("forward", geometry):
            continue
        with tiers.kernel_tier(tier), algorithm.use(name):
            plain = algorithm.forward(x, weight, bias, geometry)
            fused = policy.forward_relu(x, weight, bias, geometry)
        np.testing.assert_allclose(fused, np.maximum(plain, 0), rtol=1e-6, atol=1e-6, err_msg=name)


@pytest.mark.skipif("numba" not in kernel_tiers(), reason="the compiled tier needs Numba")
@pytest.mark.parametrize("wide", [False, True], ids=["chunks", "wide"])
@pytest.mark.parametrize("shape_name", ["3x3-pad1-odd", "3x3-pad0", "3x3-pad2", "3x3-asymmetric", "3x3-groups",
                                        "3x3-wide"])
def test_compiled_winograd_by_chunks_and_by_positions(wide, shape_name, rng, monkeypatch):
    """Both ways the compiled F(4, 3) splits its work (chunks of tiles; channels and positions) give the results."""
    from convstack.nn.kernels.compiled import winograd

    monkeypatch.setattr(winograd, "_wide", lambda geometry, chunk, threads: wide)
    x, weight, grad, geometry = _arrays(shape_name, rng)
    expected = _reference(x, weight, grad, geometry)
    with tiers.kernel_tier("numba"), algorithm.use("winograd4"):
        actual = (algorithm.forward(x, weight, None, geometry), algorithm.backward_data(grad, weight, geometry),
                  algorithm.backward_weight(grad, x, geometry))
    for a, e in zip(actual, expected):
        _close(a, e, 1e-4)
