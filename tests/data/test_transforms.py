import numpy as np
import pytest

import convstack as cs
from convstack.data import (
    Compose,
    Normalize,
    Pad,
    RandomCrop,
    RandomHorizontalFlip,
    RandomVerticalFlip,
    Resize,
    TensorDataset,
    ToTensor,
    apply_batch,
    channel_stats,
)


def _array(x):
    return x.data if isinstance(x, cs.Tensor) else np.asarray(x)


@pytest.fixture
def images(rng):
    return rng.integers(0, 256, (5, 3, 7, 9), dtype=np.uint8)


@pytest.mark.parametrize(
    "sample_shape, layout, expected",
    [((7, 9), None, (1, 7, 9)), ((7, 9, 3), None, (3, 7, 9)), ((3, 7, 9), None, (3, 7, 9)),
     ((3, 3, 3), "CHW", (3, 3, 3)), ((7, 9, 1), None, (1, 7, 9))],
)
def test_to_tensor_layouts_and_scale(rng, sample_shape, layout, expected):
    sample = rng.integers(0, 256, sample_shape, dtype=np.uint8)
    out = ToTensor(layout)(sample)
    assert isinstance(out, cs.Tensor) and out.shape == expected and out.dtype == np.float32
    assert out.data.flags.c_contiguous
    moved = sample[None] if sample.ndim == 2 else sample
    if expected != moved.shape:
        moved = np.moveaxis(moved, -1, 0)
    np.testing.assert_allclose(out.data, moved / 255.0, rtol=1e-6)


def test_to_tensor_pil_image():
    from PIL import Image

    array = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    out = ToTensor()(Image.fromarray(array))
    np.testing.assert_allclose(out.data, np.moveaxis(array, -1, 0) / 255.0, rtol=1e-6)


def test_to_tensor_rejects_other_dtypes_and_ranks():
    with pytest.raises(TypeError, match="uint8 or floating-point"):
        ToTensor()(np.zeros((2, 2), np.int32))
    with pytest.raises(ValueError, match=r"received shape \(2, 2, 2, 2\)"):
        ToTensor()(np.zeros((2, 2, 2, 2), np.uint8))


TRANSFORMS = [
    ToTensor(),
    Compose([ToTensor(), Normalize((0.1, 0.2, 0.3), (0.5, 0.25, 2.0))]),
    Compose([ToTensor(), Resize((11, 5))]),
    Compose([ToTensor(), Resize(4, interpolation="nearest")]),
    Resize((10, 12)),
    Pad(2),
    Pad((1, 2, 3, 4), padding_mode="reflect"),
    Pad((1, 2), padding_mode="edge"),
    Compose([Pad(1, fill=7, padding_mode="symmetric"), RandomCrop((9, 11), padding=0)]),
    RandomHorizontalFlip(p=1.0),
    RandomVerticalFlip(p=0.0),
]


@pytest.mark.parametrize("transform", TRANSFORMS, ids=repr)
def test_batch_equals_per_sample(images, transform):
    batch = _array(apply_batch(transform, images))
    per_sample = np.stack([_array(transform(image)) for image in images])
    assert batch.dtype == per_sample.dtype
    np.testing.assert_allclose(batch, per_sample, rtol=1e-6, atol=1e-6)


def test_tensor_in_tensor_out(images):
    x = cs.tensor(images.astype(np.float32))
    out = Pad(1).batch(x)
    assert isinstance(out, cs.Tensor) and out.shape == (5, 3, 9, 11)


def test_plain_callable_falls_back_to_per_sample(images):
    out = apply_batch(Compose([lambda x: x[:1], ToTensor()]), images)
    assert out.shape == (5, 1, 7, 9)


def test_normalize_statistics(rng):
    data = rng.normal(3.0, 2.0, (200, 2, 8, 8)).astype(np.float32)
    data[:, 1] = data[:, 1] * 0.5 - 1.0
    mean, std = channel_stats(data)
    out = Normalize(mean, std).batch(data)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1.0, atol=1e-4)


def test_channel_stats_matches_numpy_over_chunks_and_datasets(rng):
    data = rng.integers(0, 256, (9000, 3, 2, 2), dtype=np.uint8)  # more than one chunk
    scaled = data / 255.0
    mean, std = channel_stats(data)
    np.testing.assert_allclose(mean, scaled.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(std, scaled.std(axis=(0, 2, 3)), rtol=1e-6)
    from_dataset = channel_stats(TensorDataset(scaled.astype(np.float32), np.zeros(9000, np.int64)))
    np.testing.assert_allclose(from_dataset, (mean, std), rtol=1e-5)
    gray = channel_stats(data[:, 0])
    np.testing.assert_allclose(gray[0], [scaled[:, 0].mean()], rtol=1e-6)


def test_normalize_keeps_grayscale_shape():
    out = Normalize(0.5, 0.25)(np.ones((3, 4), np.float32))
    assert out.shape == (3, 4) and np.allclose(out, 2.0)
    assert Normalize(0.5, 0.25).batch(np.ones((2, 3, 4), np.float32)).shape == (2, 3, 4)


def test_normalize_errors():
    with pytest.raises(TypeError, match="put ToTensor"):
        Normalize(0.5, 0.5)(np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="2 means for images with 3 channels"):
        Normalize((0, 0), (1, 1))(np.zeros((3, 2, 2), np.float32))
    with pytest.raises(ValueError, match="Normalize: invalid value for argument `std`"):
        Normalize((0, 0), (1, 0))


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("size", [(32, 32), (5, 13), (28, 28)])
def test_resize_matches_torch_interpolate(rng, mode, size):
    torch = pytest.importorskip("torch")
    x = rng.random((2, 3, 28, 20)).astype(np.float32)
    expected = torch.nn.functional.interpolate(torch.from_numpy(x), size=size, mode=mode,
                                               **({"align_corners": False} if mode == "bilinear" else {}))
    np.testing.assert_allclose(Resize(size, mode).batch(x), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_resize_int_keeps_aspect_and_uint8_rounds():
    assert Resize(14)(np.zeros((1, 28, 56), np.float32)).shape == (1, 14, 28)
    out = Resize((4, 4))(np.full((2, 2), 200, np.uint8))
    assert out.dtype == np.uint8 and (out == 200).all()


def test_random_crop_windows_come_from_padded_image(rng):
    x = rng.random((64, 2, 6, 6)).astype(np.float32)
    crop = RandomCrop(6, padding=2, generator=np.random.default_rng(0))
    out = crop.batch(x)
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    offsets = set()
    for n in range(64):
        matches = [(t, l) for t in range(5) for l in range(5)
                   if np.array_equal(padded[n, :, t:t + 6, l:l + 6], out[n])]
        assert matches, f"sample {n} is not a window of its padded image"
        offsets.add(matches[0])
    assert len(offsets) > 5  # each sample drew its own window


def test_random_crop_pad_if_needed_and_too_small():
    assert RandomCrop(5, pad_if_needed=True)(np.zeros((1, 3, 3), np.float32)).shape == (1, 5, 5)
    with pytest.raises(ValueError, match=r"crop size \(5, 5\) is larger"):
        RandomCrop(5)(np.zeros((1, 3, 3), np.float32))


def test_random_flip_flips_about_half_per_sample(rng):
    x = rng.random((1000, 1, 2, 3)).astype(np.float32)
    out = RandomHorizontalFlip(p=0.5).batch(x)
    flipped = np.all(out == x[..., ::-1], axis=(1, 2, 3))
    kept = np.all(out == x, axis=(1, 2, 3))
    assert np.all(flipped | kept) and 400 < flipped.sum() < 600


def test_random_transforms_follow_manual_seed(images):
    transform = Compose([ToTensor(), RandomCrop(5, padding=1), RandomHorizontalFlip()])
    cs.manual_seed(4)
    first = transform.batch(images).data
    cs.manual_seed(4)
    np.testing.assert_array_equal(first, transform.batch(images).data)


@pytest.mark.parametrize(
    "build, message",
    [(lambda: Pad(-1), "Pad: invalid value for argument `padding`"),
     (lambda: Pad(1, padding_mode="wrap"), "argument `padding_mode`"),
     (lambda: RandomHorizontalFlip(p=2), "argument `p`"),
     (lambda: Resize(0), "argument `size`"),
     (lambda: Resize(4, interpolation="cubic"), "argument `interpolation`"),
     (lambda: ToTensor("NHWC"), "argument `layout`")],
)
def test_constructor_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_spatial_transform_needs_two_dims():
    with pytest.raises(ValueError, match=r"expected a batch \(N, \.\.\., H, W\), received shape \(4, 5\)"):
        Pad(1).batch(np.zeros((4, 5), np.float32))


def test_a_custom_transform_must_implement_apply():
    from convstack.data._transform import Transform

    class Forgotten(Transform):
        pass

    class Doubling(Transform):
        def apply(self, array, batched):
            return array * 2

    with pytest.raises(TypeError, match="Forgotten.*apply"):
        Forgotten()
    assert (Doubling()(np.ones((2, 2), np.float32)) == 2).all()
