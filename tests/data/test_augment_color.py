"""Photometric augmentation: colour, tone, blur and erasing against Pillow, the standard library and SciPy."""

import colorsys
import doctest

import numpy as np
import pytest

import convstack as cs
from convstack.data import ColorJitter, GaussianBlur, RandomErasing, blur, color, erasing
from convstack.data import functional as TF

Image = pytest.importorskip("PIL.Image")
from PIL import ImageEnhance, ImageOps  # noqa: E402


@pytest.fixture
def rgb(rng):
    return rng.integers(0, 256, (3, 16, 16), dtype=np.uint8)


def _pil(image):
    return Image.fromarray(np.moveaxis(image, 0, -1))


def _chw(pil_image):
    return np.moveaxis(np.asarray(pil_image), -1, 0).astype(int)


@pytest.mark.parametrize("ours, enhancer", [
    (TF.adjust_brightness, ImageEnhance.Brightness),
    (TF.adjust_saturation, ImageEnhance.Color),
    (TF.adjust_contrast, ImageEnhance.Contrast),
    (TF.adjust_sharpness, ImageEnhance.Sharpness),
])
@pytest.mark.parametrize("factor", [0.0, 0.3, 1.0, 1.7])
def test_enhancers_match_pillow_within_one_level(rgb, ours, enhancer, factor):
    # Pillow rounds its blend and its contrast mean; torchvision (and convstack) truncate: at most 1 apart.
    out = ours(rgb, factor)
    assert out.dtype == np.uint8
    assert np.abs(out.astype(int) - _chw(enhancer(_pil(rgb)).enhance(factor))).max() <= 1


def test_float_enhancers_follow_the_formulas(rng):
    image = rng.random((3, 6, 7)).astype(np.float32)
    gray = 0.2989 * image[0] + 0.587 * image[1] + 0.114 * image[2]
    np.testing.assert_allclose(TF.adjust_brightness(image, 1.5), np.clip(image * 1.5, 0, 1), rtol=1e-6)
    np.testing.assert_allclose(TF.adjust_saturation(image, 0.4), np.clip(0.4 * image + 0.6 * gray, 0, 1), atol=1e-6)
    np.testing.assert_allclose(TF.adjust_contrast(image, 1.3), np.clip(1.3 * image - 0.3 * gray.mean(), 0, 1),
                               atol=1e-6)
    grayscale = image[:1]
    np.testing.assert_array_equal(TF.adjust_saturation(grayscale, 0.2), grayscale)
    np.testing.assert_array_equal(TF.adjust_hue(grayscale, 0.2), grayscale)


@pytest.mark.parametrize("shift", [-0.5, -0.13, 0.2, 0.5])
def test_hue_rotation_equals_colorsys(rng, shift):
    image = rng.random((3, 5, 6)).astype(np.float32)
    expected = np.empty_like(image)
    for i in range(5):
        for j in range(6):
            h, s, v = colorsys.rgb_to_hsv(*image[:, i, j])
            expected[:, i, j] = colorsys.hsv_to_rgb((h + shift) % 1.0, s, v)
    np.testing.assert_allclose(TF.adjust_hue(image, shift), expected, atol=2e-6)


@pytest.mark.parametrize("bits", [1, 3, 5, 8])
def test_posterize_equals_pillow_and_the_float_formula(rgb, bits):
    np.testing.assert_array_equal(TF.posterize(rgb, bits), _chw(ImageOps.posterize(_pil(rgb), bits)))
    floats = rgb / np.float32(255)
    np.testing.assert_allclose(TF.posterize(floats, bits), np.floor(floats * 2**bits).clip(0, 2**bits - 1) / 2**bits)


@pytest.mark.parametrize("threshold", [0, 100, 256])
def test_solarize_equals_pillow(rgb, threshold):
    np.testing.assert_array_equal(TF.solarize(rgb, threshold), _chw(ImageOps.solarize(_pil(rgb), threshold)))


def test_autocontrast_equalize_invert_equal_pillow(rng):
    image = rng.integers(30, 200, (3, 16, 16), dtype=np.uint8)
    for ours, theirs in ((TF.autocontrast, ImageOps.autocontrast), (TF.equalize, ImageOps.equalize),
                         (TF.invert, ImageOps.invert)):
        np.testing.assert_array_equal(ours(image), _chw(theirs(_pil(image))))
    flat = np.full((1, 4, 4), 0.3, np.float32)
    np.testing.assert_array_equal(TF.autocontrast(flat), flat)  # nothing to stretch
    floats = TF.equalize(image / np.float32(255))
    assert floats.dtype == np.float32 and floats.min() == 0 and floats.max() == 1


def test_colour_ops_need_one_or_three_channels(rng):
    with pytest.raises(ValueError, match="adjust_contrast: expected images with 1 or 3 channels"):
        TF.adjust_contrast(rng.random((2, 4, 4)), 0.5)


def _jitter_reference(images, transform, seed):
    """ColorJitter's draws replayed: the order of the four, then a factor per enabled adjustment."""
    generator = np.random.default_rng(seed)
    order = np.argsort(generator.random((len(images), 4)), axis=1)
    ranges = (transform.brightness, transform.contrast, transform.saturation, transform.hue)
    factors = [None if r is None else generator.uniform(*r, size=len(images)) for r in ranges]
    ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    out = []
    for n, image in enumerate(images):
        for op in order[n]:
            if factors[op] is not None:
                image = ops[op](image, factors[op][n])
        out.append(image)
    return np.stack(out)


def test_color_jitter_draws_an_order_and_factors_per_sample(rng):
    images = rng.random((6, 3, 5, 5)).astype(np.float32)
    transform = ColorJitter(brightness=0.4, contrast=(0.5, 1.5), saturation=0.3, hue=0.1)
    assert transform.brightness == (0.6, 1.4) and transform.hue == (-0.1, 0.1)
    transform.generator = np.random.default_rng(4)
    np.testing.assert_allclose(transform.batch(images), _jitter_reference(images, transform, 4), atol=1e-6)
    transform.generator = np.random.default_rng(4)
    np.testing.assert_allclose(transform(images[0]), _jitter_reference(images[:1], transform, 4)[0], atol=1e-6)
    assert ColorJitter(brightness=0).brightness is None


def test_color_jitter_errors():
    with pytest.raises(ValueError, match="ColorJitter: invalid value for argument `hue`"):
        ColorJitter(hue=0.7)
    with pytest.raises(ValueError, match="argument `brightness`"):
        ColorJitter(brightness=-1)


def test_gaussian_blur_equals_a_hand_built_kernel_and_scipy(rng):
    ndimage = pytest.importorskip("scipy.ndimage")
    kernel = np.exp(-0.5 * (np.array([-1.0, 0.0, 1.0]) / 0.8) ** 2)
    np.testing.assert_allclose(blur.gaussian_kernel1d(3, 0.8), kernel / kernel.sum())
    image = rng.random((2, 9, 11))
    kx, ky = blur.gaussian_kernel1d(5, 1.2), blur.gaussian_kernel1d(3, 0.7)
    expected = np.stack([ndimage.correlate(c, np.outer(ky, kx), mode="mirror") for c in image])
    np.testing.assert_allclose(TF.gaussian_blur(image, (5, 3), (1.2, 0.7)), expected, atol=1e-12)


def test_gaussian_blur_transform_draws_sigma_per_sample(rng):
    images = rng.integers(0, 256, (4, 3, 8, 8), dtype=np.uint8)
    out = GaussianBlur(5, sigma=(0.5, 3.0), generator=np.random.default_rng(2)).batch(images)
    sigmas = np.random.default_rng(2).uniform(0.5, 3.0, size=4)
    assert out.dtype == np.uint8
    for n in range(4):
        np.testing.assert_array_equal(out[n], TF.gaussian_blur(images[n], 5, sigmas[n]))
    with pytest.raises(ValueError, match="GaussianBlur: invalid value for argument `kernel_size`"):
        GaussianBlur(4)
    with pytest.raises(ValueError, match="more than the image"):
        GaussianBlur(9)(np.zeros((1, 3, 3), np.float32))


def test_random_erasing_erases_one_rectangle_per_chosen_image(rng):
    images = np.ones((200, 3, 20, 24), np.float32)
    out = RandomErasing(p=0.5, scale=(0.05, 0.2), ratio=(0.5, 2.0), value=(0, 0.5, 2),
                        generator=np.random.default_rng(0)).batch(images)
    erased = (out != 1).any(axis=(1, 2, 3))
    assert 70 < erased.sum() < 130
    for image in out[erased][:20]:
        rows, cols = np.nonzero(image[0] == 0)
        box = np.zeros((20, 24), bool)
        box[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
        np.testing.assert_array_equal(image[0] == 0, box)  # one filled rectangle
        assert np.all(image[1][box] == 0.5) and np.all(image[2][box] == 2)
        assert 0.04 < box.mean() < 0.22


def test_random_erasing_random_value_inplace_and_errors(rng):
    images = np.zeros((4, 3, 10, 10), np.float32)
    out = RandomErasing(p=1.0, value="random", inplace=True, generator=np.random.default_rng(1)).batch(images)
    assert out is not None and np.count_nonzero(images) > 0  # written into the input
    np.testing.assert_array_equal(RandomErasing(p=0.0)(np.ones((1, 5, 5))), np.ones((1, 5, 5)))
    with pytest.raises(ValueError, match="RandomErasing: invalid value for argument `value`"):
        RandomErasing(value="noise")
    with pytest.raises(ValueError, match="2 fill values for images with 3 channels"):
        RandomErasing(p=1.0, value=(1, 2))(np.zeros((3, 5, 5)))


def test_tensors_in_tensors_out_and_manual_seed(rng):
    batch = cs.tensor(rng.random((3, 3, 8, 8)).astype(np.float32))
    runs = []
    for _ in range(2):
        cs.manual_seed(1)
        runs.append(ColorJitter(0.5, 0.5, 0.5, 0.2).batch(batch))
    assert isinstance(runs[0], cs.Tensor)
    np.testing.assert_array_equal(runs[0].data, runs[1].data)


def test_docstring_examples_run():
    for module in (color, blur, erasing):
        result = doctest.testmod(module, extraglobs={"numpy": np}, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0


@pytest.mark.parametrize("call, message", [
    (lambda image: TF.adjust_hue(image, 0.6), r"adjust_hue: invalid value for argument `hue_factor`: expected a number "
                                              r"in \[-0.5, 0.5\]"),
    (lambda image: TF.adjust_brightness(image, -1), "adjust_brightness: invalid value for argument `brightness_fac"),
    (lambda image: TF.posterize(image, 9), "posterize: invalid value for argument `bits`: expected an integer from 0"),
    (lambda image: TF.solarize(image, -1), "solarize: invalid value for argument `threshold`"),
    (lambda image: TF.adjust_sharpness(image, -0.5), "adjust_sharpness: invalid value for argument `sharpness_factor`"),
])
def test_functional_ops_check_their_argument(rgb, call, message):
    with pytest.raises(ValueError, match=message):
        call(rgb)
