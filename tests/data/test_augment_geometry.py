"""Geometric augmentation: rotations, affine maps and crops against Pillow, PyTorch and hand-computed values."""

import doctest

import numpy as np
import pytest
from tests.data.tv_reference import torchvision_warp

import convstack as cs
from convstack.data import (
    CenterCrop,
    InterpolationMode,
    RandomAffine,
    RandomResizedCrop,
    RandomRotation,
    _sampling,
    affine,
    crop,
    functional,
)
from convstack.data import functional as TF

Image = pytest.importorskip("PIL.Image")


@pytest.fixture
def square(rng):
    return rng.integers(0, 256, (16, 16), dtype=np.uint8)


@pytest.mark.parametrize("angle", [37.0, 137.0, -53.0, 90.0])
@pytest.mark.parametrize("shape", [(16, 16), (15, 21)])
def test_rotate_nearest_equals_pillow(rng, angle, shape):
    # Angles whose sine or cosine is 1/2 put source points exactly half-way between pixels, where
    # Pillow rounds up and torchvision (nearbyint) to even: those are left out.
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    expected = np.asarray(Image.fromarray(image).rotate(angle, resample=Image.NEAREST))
    np.testing.assert_array_equal(TF.rotate(image[None], angle)[0], expected)


@pytest.mark.parametrize("angle", [30.0, 137.0])
def test_rotate_bilinear_matches_pillow_inside_the_image(square, angle):
    expected = np.asarray(Image.fromarray(square).rotate(angle, resample=Image.BILINEAR)).astype(int)
    ours = TF.rotate(square[None], angle, interpolation="bilinear")[0].astype(int)
    # Pillow repeats the edge pixel, torchvision (and convstack) blend with zeros beyond it:
    # compare where all four neighbours lie inside the image (a fully covered all-white image stays 255).
    white = np.full_like(square, 255)
    inside = TF.rotate(white[None], angle, interpolation="bilinear")[0] == 255
    assert inside.sum() > 80
    assert np.abs(ours - expected)[inside].max() <= 1


def test_rotate_quarter_turns_are_exact_and_counter_clockwise(rng):
    image = rng.random((2, 6, 6)).astype(np.float32)
    for turns in (1, 2, 3):
        for mode in ("nearest", InterpolationMode.BILINEAR):
            np.testing.assert_allclose(TF.rotate(image, 90.0 * turns, interpolation=mode),
                                       np.rot90(image, turns, axes=(1, 2)), atol=1e-6)


def test_rotate_expand_matches_pillow_size_and_content(rng):
    image = rng.integers(0, 256, (10, 20), dtype=np.uint8)
    out = TF.rotate(image[None], 90.0, expand=True)[0]
    np.testing.assert_array_equal(out, np.rot90(image))
    for angle in (30.0, 45.0, 120.0):
        expected = Image.fromarray(image).rotate(angle, expand=True)
        assert TF.rotate(image[None], angle, expand=True).shape[1:] == (expected.height, expected.width)
    pytest.importorskip("torch")
    matrix = _sampling.inverse_affine_matrices([-30.0], [0], [0], [1], [0], [0], [0], [0])[0]
    size = _sampling.expanded_size(matrix, 20, 10)
    np.testing.assert_array_equal(TF.rotate(image[None], 30.0, expand=True),
                                  torchvision_warp(image[None], matrix, "nearest", 0, out_size=size))


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("fill", [None, 0, 37])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_affine_equals_torchvision_grid_sampling(rng, mode, fill, dtype):
    pytest.importorskip("torch")
    image = rng.integers(0, 256, (3, 17, 23)).astype(dtype)
    if dtype == np.float32:
        image /= 255
        fill = None if fill is None else fill / 255
    for angle, translate, scale, shear, center in [(20.0, (2, -3), 1.1, (10.0, 5.0), None),
                                                   (-75.0, (0, 4), 0.8, (0.0, -20.0), (3.0, 11.0))]:
        cx, cy = _sampling.centre_offset(center, 23, 17)
        matrix = _sampling.inverse_affine_matrices([angle], [translate[0]], [translate[1]], [scale], [shear[0]],
                                                   [shear[1]], [cx], [cy])[0]
        ours = TF.affine(image, angle, translate, scale, shear, interpolation=mode, fill=fill, center=center)
        expected = torchvision_warp(image, matrix, mode, fill)
        assert ours.dtype == image.dtype
        np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_affine_integer_translation_is_a_shift_with_fill(rng):
    image = rng.integers(1, 256, (1, 5, 7), dtype=np.uint8)
    out = TF.affine(image, angle=0.0, translate=(2, -1), scale=1.0, shear=0.0, fill=9)
    expected = np.full_like(image, 9)
    expected[:, :4, 2:] = image[:, 1:, :5]  # right by 2, up by 1
    np.testing.assert_array_equal(out, expected)


def test_affine_scale_about_the_centre_and_shear_hand_computed():
    image = np.arange(25, dtype=np.float32).reshape(1, 5, 5)
    # Scale 2 about the centre pixel (2, 2): output (i, j) reads input (2 + (i - 2) / 2, 2 + (j - 2) / 2).
    out = TF.affine(image, 0.0, (0, 0), 2.0, 0.0, interpolation="bilinear")
    assert out[0, 2, 2] == 12 and out[0, 0, 0] == image[0, 1, 1] and out[0, 4, 3] == (17 + 18) / 2
    # An x shear of 45 degrees about the top-left corner (centre=(0, 0)) moves row y left by y + 0.5 pixels
    # (the corner is at the pixel centres' -0.5).
    sheared = TF.affine(image, 0.0, (0, 0), 1.0, (45.0, 0.0), interpolation="nearest", center=(0.0, 0.0))
    np.testing.assert_array_equal(sheared[0, 2, :3], image[0, 2, 2:5] * 0 + [12, 13, 14])


def test_random_rotation_draws_one_angle_per_sample(rng):
    batch = rng.random((5, 3, 12, 12)).astype(np.float32)
    out = RandomRotation(40, interpolation="bilinear", generator=np.random.default_rng(7)).batch(batch)
    angles = np.random.default_rng(7).uniform(-40, 40, size=5)
    for sample, image, angle in zip(out, batch, angles):
        np.testing.assert_allclose(sample, TF.rotate(image, angle, interpolation="bilinear"), atol=1e-6)
    single = RandomRotation(40, generator=np.random.default_rng(7))(batch[0])
    np.testing.assert_array_equal(single, TF.rotate(batch[0], angles[0]))


def test_random_rotation_expand_uses_one_angle_per_batch(rng):
    batch = rng.random((3, 1, 8, 14)).astype(np.float32)
    out = RandomRotation((30, 60), expand=True, generator=np.random.default_rng(1)).batch(batch)
    angle = np.random.default_rng(1).uniform(30, 60, size=1)[0]
    np.testing.assert_allclose(out, np.stack([TF.rotate(b, angle, expand=True) for b in batch]), atol=1e-6)


def test_random_affine_parameters_and_application(rng):
    batch = rng.integers(0, 256, (6, 3, 20, 30), dtype=np.uint8)
    transform = RandomAffine(10, translate=(0.1, 0.2), scale=(0.8, 1.2), shear=(-5, 5, -3, 3), fill=(1, 2, 3),
                             generator=np.random.default_rng(3))
    params = transform.sample_parameters(np.random.default_rng(3), 6, 20, 30)
    assert np.all(np.abs(params["angle"]) <= 10) and np.all(np.abs(params["tx"]) <= 3)
    assert np.all(np.abs(params["ty"]) <= 4) and np.all(params["tx"] == np.round(params["tx"]))
    assert np.all((params["scale"] >= 0.8) & (params["scale"] <= 1.2)) and np.all(np.abs(params["shear_y"]) <= 3)
    out = transform.batch(batch)
    for i in range(6):
        expected = TF.affine(batch[i], params["angle"][i], (params["tx"][i], params["ty"][i]), params["scale"][i],
                             (params["shear_x"][i], params["shear_y"][i]), fill=(1, 2, 3))
        np.testing.assert_array_equal(out[i], expected)


def test_random_transforms_follow_manual_seed_and_keep_tensors(rng):
    batch = cs.tensor(rng.random((4, 3, 10, 10)).astype(np.float32))
    outs = []
    for _ in range(2):
        cs.manual_seed(5)
        outs.append(RandomAffine(30, translate=(0.2, 0.2)).batch(batch))
    assert isinstance(outs[0], cs.Tensor)
    np.testing.assert_array_equal(outs[0].data, outs[1].data)


@pytest.mark.parametrize("size, expected_top_left", [((3, 3), (2, 2)), ((4, 2), (1, 2)), ((6, 6), (0, 0))])
def test_center_crop_offsets_round_half_to_even_as_torchvision(size, expected_top_left):
    image = np.arange(36).reshape(1, 6, 6)
    top, left = expected_top_left
    np.testing.assert_array_equal(CenterCrop(size)(image), image[:, top : top + size[0], left : left + size[1]])


def test_center_crop_pads_small_images_with_zeros():
    image = np.ones((1, 2, 3), np.float32)
    out = CenterCrop((5, 4))(image)
    expected = np.zeros((1, 5, 4), np.float32)
    expected[:, 1:3, 0:3] = 1  # padding (left 0, top 1, right 1, bottom 2) then the centre crop
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(CenterCrop(5).batch(np.ones((2, 1, 3, 3)))[:, 0, 0], np.zeros((2, 5)))


@pytest.mark.parametrize("box", [(3, 5, 20, 30), (0, 0, 40, 50), (10, 2, 7, 9)])
@pytest.mark.parametrize("size", [(16, 16), (33, 25), (5, 7)])
@pytest.mark.parametrize("mode, antialias", [("bilinear", True), ("bilinear", False), ("nearest", False)])
def test_resized_crop_equals_torch_interpolate(rng, box, size, mode, antialias):
    torch = pytest.importorskip("torch")
    image = rng.random((3, 40, 50)).astype(np.float32)
    top, left, height, width = box
    ours = TF.resized_crop(image, top, left, height, width, size, mode, antialias)
    window = torch.tensor(image[None, :, top : top + height, left : left + width])
    options = {} if mode == "nearest" else {"align_corners": False}
    expected = torch.nn.functional.interpolate(window, size=size, mode=mode, antialias=antialias, **options)[0]
    np.testing.assert_allclose(ours, expected.numpy(), atol=2e-6)


def test_random_resized_crop_boxes_follow_scale_and_ratio(rng):
    transform = RandomResizedCrop(8, scale=(0.2, 0.6), ratio=(0.5, 2.0))
    top, left, height, width = transform.sample_boxes(np.random.default_rng(0), 500, 40, 60)
    assert np.all((top >= 0) & (left >= 0) & (top + height <= 40) & (left + width <= 60))
    area = height * width / (40 * 60)
    assert area.min() > 0.18 and area.max() < 0.63  # rounding to whole pixels moves the area a little
    aspect = width / height
    assert aspect.min() > 0.45 and aspect.max() < 2.2
    batch = rng.random((500, 1, 40, 60)).astype(np.float32)
    transform.generator = np.random.default_rng(0)
    out = transform.batch(batch)
    for i in (0, 17, 499):
        expected = TF.resized_crop(batch[i], top[i], left[i], height[i], width[i], (8, 8))
        np.testing.assert_allclose(out[i], expected, atol=1e-6)


def test_random_resized_crop_falls_back_to_the_centre_box():
    # No box of aspect 1 and 90-100% of a 10 x 100 image exists: the centred 10 x 10 box is used.
    top, left, height, width = RandomResizedCrop(4, scale=(0.9, 1.0), ratio=(1.0, 1.0)).sample_boxes(
        np.random.default_rng(0), 3, 10, 100)
    assert top.tolist() == [0] * 3 and left.tolist() == [45] * 3 and height.tolist() == width.tolist() == [10] * 3


def test_uint8_images_stay_uint8(rng):
    image = rng.integers(0, 256, (3, 12, 12), dtype=np.uint8)
    transforms = (RandomResizedCrop(6), RandomRotation(20, interpolation="bilinear"), RandomAffine(0, scale=(1, 2)))
    for transform in transforms:
        assert transform(image).dtype == np.uint8 and transform.batch(image[None]).dtype == np.uint8


@pytest.mark.parametrize("build, message", [
    (lambda: RandomRotation(-1), "RandomRotation: invalid value for argument `degrees`"),
    (lambda: RandomRotation((10, 5)), "min <= max"),
    (lambda: RandomRotation(5, interpolation="bicubic"), "argument `interpolation`: expected 'nearest' or"),
    (lambda: RandomRotation(5, center=(1,)), "argument `center`"),
    (lambda: RandomAffine(0, translate=(0.5, 2)), "argument `translate`: expected None or a pair of fractions"),
    (lambda: RandomAffine(0, scale=(0, 1)), "argument `scale`"),
    (lambda: RandomAffine(0, shear=(1, 2, 3)), "argument `shear`"),
    (lambda: RandomResizedCrop(8, scale=(0.5, 0.1)), "argument `scale`"),
    (lambda: CenterCrop(0), "CenterCrop: invalid value for argument `size`"),
])
def test_constructor_errors_name_the_argument(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_fill_must_match_the_channels(rng):
    with pytest.raises(ValueError, match="2 values for images with 3 channels"):
        RandomRotation(10, fill=(1, 2))(rng.random((3, 5, 5)))


def test_docstring_examples_run():
    for module in (functional, affine, crop):
        result = doctest.testmod(module, extraglobs={"numpy": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0
