"""conv1d/2d/3d with each algorithm forced: values and all gradients against PyTorch, through the autograd path."""

import numpy as np
import pytest
from tests.helpers import check_against_torch, kernel_tiers

import convstack.nn.functional as F
from convstack.nn.kernels import algorithm, tiers

# (input shape, weight shape, keyword arguments)
CASES = {
    "2d-3x3-pad1": ((2, 8, 9, 7), (6, 8, 3, 3), dict(padding=1)),
    "2d-3x3-pad2-groups": ((2, 8, 6, 6), (4, 4, 3, 3), dict(padding=2, groups=2)),
    "2d-3x3-unbatched": ((8, 5, 6), (8, 8, 3, 3), dict(padding=1)),
    "2d-1x1-stride2": ((2, 6, 7, 6), (4, 6, 1, 1), dict(stride=2)),
    "1d-k9": ((2, 4, 30), (3, 4, 9), dict(padding=4)),
    "3d-3x3x3": ((1, 3, 5, 6, 5), (2, 3, 3, 3, 3), dict(padding=1)),
}


def _tier_names():
    return [pytest.param(tier, name, id=f"{tier}-{name}") for tier in kernel_tiers()
            for name in tiers.get_tier(tier).convolution.names()]


@pytest.mark.parametrize("tier, name", _tier_names())
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_forced_algorithm_matches_torch(case, tier, name, rng):
    torch = pytest.importorskip("torch")
    input_shape, weight_shape, options = case
    dims = len(weight_shape) - 2
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[dims]
    torch_conv = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d, 3: torch.nn.functional.conv3d}[dims]
    arrays = [rng.standard_normal(s).astype(np.float32) for s in (input_shape, weight_shape, (weight_shape[0],))]
    with tiers.kernel_tier(tier), algorithm.use(name):  # the forward and the backward check_against_torch runs
        check_against_torch(
            lambda *t: conv(*t, **options), lambda *t: torch_conv(*t, **options), arrays, rtol=1e-4, atol=1e-4
        )


def test_reference_training_forward_keeps_small_columns_only_for_im2col(rng):
    import convstack as cs
    from convstack.nn.kernels.reference import chunked

    with tiers.kernel_tier("numpy"):
        _keeps_columns_only_for_im2col(cs, chunked, rng)


def _keeps_columns_only_for_im2col(cs, chunked, rng):
    x = cs.tensor(rng.standard_normal((2, 3, 9, 9)).astype(np.float32))
    lenet_like = F.conv2d(x, cs.tensor(rng.standard_normal((4, 3, 5, 5)).astype(np.float32), requires_grad=True))
    assert isinstance(lenet_like.grad_fn.x.value, chunked.Columns)  # the weight gradient needs only its GEMM
    winograd = F.conv2d(x, cs.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True))
    with algorithm.use("winograd4"):
        winograd = F.conv2d(x, cs.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True))
    assert winograd.grad_fn.x.value is x.data  # Winograd rebuilds its tiles from the input


def test_reference_large_columns_are_not_kept(rng):
    import convstack as cs

    x = cs.tensor(rng.standard_normal((2, 3, 9, 9)).astype(np.float32))
    with tiers.kernel_tier("numpy"), algorithm.workspace(2**10):  # one sample a chunk: the columns are never whole
        out = F.conv2d(x, cs.tensor(rng.standard_normal((4, 3, 5, 5)).astype(np.float32), requires_grad=True))
    assert out.grad_fn.x.value is x.data


# (input shape, weight shape, keyword arguments) of conv_transpose{1,2,3}d
TRANSPOSE_CASES = {
    "2d-3x3-pad1": ((2, 6, 7, 8), (6, 4, 3, 3), dict(padding=1)),
    "2d-stride2-output-padding": ((2, 4, 5, 5), (4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    "1d-dilated-output-padding-past-stride": ((2, 3, 6), (3, 2, 3), dict(output_padding=1, dilation=2, padding=1)),
    "2d-groups": ((2, 4, 5, 6), (4, 3, 3, 3), dict(padding=1, groups=2)),
    "3d": ((1, 2, 3, 4, 3), (2, 3, 3, 3, 3), dict(padding=1)),
}


@pytest.mark.parametrize("tier, name", _tier_names())
@pytest.mark.parametrize("case", TRANSPOSE_CASES.values(), ids=TRANSPOSE_CASES.keys())
def test_transposed_convolution_goes_through_the_forced_algorithm(case, tier, name, rng):
    torch = pytest.importorskip("torch")
    input_shape, weight_shape, options = case
    dims = len(weight_shape) - 2
    conv = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[dims]
    functional = torch.nn.functional
    torch_conv = {1: functional.conv_transpose1d, 2: functional.conv_transpose2d, 3: functional.conv_transpose3d}[dims]
    out_channels = weight_shape[1] * options.get("groups", 1)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in (input_shape, weight_shape, (out_channels,))]
    with tiers.kernel_tier(tier), algorithm.use(name):
        check_against_torch(
            lambda *t: conv(*t, **options), lambda *t: torch_conv(*t, **options), arrays, rtol=1e-4, atol=1e-4
        )


@pytest.mark.parametrize("tier", kernel_tiers())
def test_transposed_convolution_runs_in_chunks_and_checks_its_buffers(tier, rng, monkeypatch):
    import convstack as cs
    import convstack.backend as backend

    if tier == "numba":  # its check counts a block of samples' columns per thread: count one thread
        from convstack.nn.kernels.compiled import im2col

        monkeypatch.setattr(im2col, "get_num_threads", lambda: 1)

    x = rng.standard_normal((3, 8, 6, 7)).astype(np.float32)
    weight = rng.standard_normal((8, 5, 3, 3)).astype(np.float32)
    with tiers.kernel_tier(tier), algorithm.use("gemm"):
        whole = F.conv_transpose2d(cs.tensor(x), cs.tensor(weight), stride=2).numpy()
        with algorithm.workspace(1):  # one sample a chunk
            chunked = F.conv_transpose2d(cs.tensor(x), cs.tensor(weight), stride=2).numpy()
        np.testing.assert_allclose(chunked, whole, rtol=1e-6)
        backend.set_memory_limit(2**12)
        try:
            with algorithm.workspace(2**10), pytest.raises(MemoryError) as caught:
                F.conv_transpose2d(cs.tensor(x), cs.tensor(weight), stride=2)
        finally:
            backend.set_memory_limit(None)
    # dcols: 5 x 9 taps x 6x7 a sample (7.4 KiB); the compiled tier takes the 3 samples in one block
    size = "22.1 KiB" if tier == "numba" else "7.4 KiB"
    assert str(caught.value).startswith(
        f"conv_transpose2d, the adjoint of a conv2d: conv2d: the im2col buffer would need {size} "
        "(input shape (3, 5, 13, 15), weight shape (8, 5, 3, 3))")
