"""TrivialAugmentWide and RandAugment: each operation as torchvision defines it, and the policies' draws."""

import math

import numpy as np
import pytest
from tests.data.tv_reference import torchvision_warp

import convstack as cs
from convstack.data import RandAugment, TrivialAugmentWide, auto_augment
from convstack.data import functional as TF
from convstack.data._sampling import inverse_affine_matrices


@pytest.fixture
def images(rng):
    return rng.integers(0, 256, (4, 3, 14, 18), dtype=np.uint8)


def _run(name, images, magnitude, interpolation="nearest", fill=None):
    return auto_augment.OPERATIONS[name](images, np.full(len(images), float(magnitude)), interpolation, fill)


@pytest.mark.parametrize("name, magnitude", [("ShearX", 0.3), ("ShearY", -0.25)])
def test_shears_are_torchvision_affines_about_the_top_left_corner(images, name, magnitude):
    pytest.importorskip("torch")
    degrees = math.degrees(math.atan(magnitude))
    shear = (degrees, 0.0) if name == "ShearX" else (0.0, degrees)
    matrix = inverse_affine_matrices([0.0], [0], [0], [1.0], [shear[0]], [shear[1]], [-9.0], [-7.0])[0]
    out = _run(name, images, magnitude)
    for image, result in zip(images, out):
        np.testing.assert_array_equal(result, torchvision_warp(image, matrix, "nearest", None))


def test_translations_move_whole_pixels(images):
    out = _run("TranslateX", images, -3.9)  # int(-3.9) = -3: three pixels left
    np.testing.assert_array_equal(out[..., :-3], images[..., 3:])
    assert np.all(out[..., -3:] == 0)
    out = _run("TranslateY", images, 2.5)
    np.testing.assert_array_equal(out[..., 2:, :], images[..., :-2, :])


def test_rotate_and_the_enhancers_are_the_functional_ops(images):
    np.testing.assert_array_equal(_run("Rotate", images, 33.0), np.stack([TF.rotate(i, 33.0) for i in images]))
    for name, op in (("Brightness", TF.adjust_brightness), ("Color", TF.adjust_saturation),
                     ("Contrast", TF.adjust_contrast), ("Sharpness", TF.adjust_sharpness)):
        np.testing.assert_array_equal(_run(name, images, -0.4), np.stack([op(i, 0.6) for i in images]), err_msg=name)
    np.testing.assert_array_equal(_run("Posterize", images, 3.0), TF.posterize(images, 3))
    np.testing.assert_array_equal(_run("Solarize", images, 0.5), TF.solarize(images, 127.5))
    floats = images / np.float32(255)
    np.testing.assert_array_equal(_run("Solarize", floats, 0.5), TF.solarize(floats, 0.5))
    np.testing.assert_array_equal(_run("AutoContrast", images, 0), TF.autocontrast(images))
    np.testing.assert_array_equal(_run("Equalize", images, 0), TF.equalize(images))


def test_magnitude_spaces_are_torchvisions():
    trivial = auto_augment.trivial_augment_space(31, 32, 32)
    rand = auto_augment.rand_augment_space(31, 20, 40)
    assert list(trivial) == list(rand) == list(auto_augment.OPERATIONS)
    assert trivial["Rotate"][-1] == 135.0 and trivial["TranslateX"][-1] == 32.0 and trivial["ShearY"][-1] == 0.99
    assert rand["Rotate"][-1] == 30.0 and rand["TranslateX"][-1] == pytest.approx(150 / 331 * 40)
    assert rand["TranslateY"][-1] == pytest.approx(150 / 331 * 20)
    # 8 - round(i / ((bins - 1) / 6)) and / 4: torch.round, half to even.
    assert trivial["Posterize"][[0, 2, 3, 12, 30]].tolist() == [8, 8, 7, 6, 2]
    assert rand["Posterize"][[0, 4, 30]].tolist() == [8, 7, 4]
    np.testing.assert_allclose(trivial["Solarize"][[0, 30]], [1.0, 0.0])


def test_trivial_augment_applies_one_drawn_operation_per_image(rng):
    images = np.repeat(rng.integers(0, 256, (1, 3, 10, 10), dtype=np.uint8), 300, axis=0)
    out = TrivialAugmentWide(generator=np.random.default_rng(0)).batch(images)
    generator = np.random.default_rng(0)
    chosen = generator.integers(14, size=300)
    level = generator.integers(31, size=300)
    negate = generator.integers(2, size=300) == 1
    names = list(auto_augment.OPERATIONS)
    space = auto_augment.trivial_augment_space(31, 10, 10)
    for n in (0, 1, 2, 77, 299):
        name = names[chosen[n]]
        magnitude = 0.0 if space[name] is None else space[name][level[n]]
        if name in auto_augment.SIGNED and negate[n]:
            magnitude = -magnitude
        expected = images[n] if name == "Identity" else _run(name, images[n : n + 1], magnitude)[0]
        np.testing.assert_array_equal(out[n], expected, err_msg=name)
    assert np.bincount(chosen, minlength=14).min() > 5  # every operation drawn
    changed = (out != images).any(axis=(1, 2, 3))
    assert 0.6 < changed.mean() < 1.0


def test_rand_augment_runs_num_ops_rounds_at_the_fixed_magnitude(rng):
    images = rng.random((8, 3, 12, 12)).astype(np.float32)
    transform = RandAugment(num_ops=2, magnitude=9, generator=np.random.default_rng(5))
    out = transform.batch(images)
    space = auto_augment.rand_augment_space(31, 12, 12)
    generator, expected = np.random.default_rng(5), images.copy()
    names = list(auto_augment.OPERATIONS)
    for _ in range(2):
        chosen = generator.integers(14, size=8)  # (no level drawn: it is fixed)
        negate = generator.integers(2, size=8) == 1
        for n in range(8):
            name = names[chosen[n]]
            if name == "Identity":
                continue
            magnitude = 0.0 if space[name] is None else space[name][9]
            magnitude = -magnitude if name in auto_augment.SIGNED and negate[n] else magnitude
            expected[n] = _run(name, expected[n : n + 1], magnitude)[0]
    np.testing.assert_allclose(out, expected, atol=1e-6)
    np.testing.assert_array_equal(RandAugment(num_ops=0)(images[0]), images[0])


def test_policies_keep_dtype_shape_and_follow_manual_seed(rng):
    for transform in (TrivialAugmentWide(interpolation="bilinear", fill=0), RandAugment(num_ops=3)):
        for image in (rng.integers(0, 256, (3, 9, 9), dtype=np.uint8), rng.random((1, 9, 9)).astype(np.float32)):
            out = transform(image)
            assert out.shape == image.shape and out.dtype == image.dtype
        runs = []
        for _ in range(2):
            cs.manual_seed(2)
            runs.append(transform.batch(cs.tensor(rng.random((5, 3, 9, 9)).astype(np.float32) * 0 + 0.5)))
        assert isinstance(runs[0], cs.Tensor)
        np.testing.assert_array_equal(runs[0].data, runs[1].data)


@pytest.mark.parametrize("build, message", [
    (lambda: TrivialAugmentWide(num_magnitude_bins=1), "TrivialAugmentWide: invalid value for argument `num_magnitude"),
    (lambda: RandAugment(magnitude=31), r"RandAugment: invalid value for argument `magnitude`: expected an integer in"),
    (lambda: RandAugment(num_ops=-1), "argument `num_ops`"),
    (lambda: TrivialAugmentWide(interpolation="cubic"), "argument `interpolation`"),
])
def test_constructor_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()
