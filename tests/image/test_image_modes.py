"""Every mode Pillow reads comes out as the right 8-bit picture, or is refused naming the file (issue 15).

Each file is written by Pillow itself in the mode under test; the expected pixels are
computed from the values written, not from convstack's own conversion.
"""

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from convstack.data import DataFormatError  # noqa: E402
from convstack.data import read_image as read_dataset_image  # noqa: E402
from convstack.image.decode import ImageDecodeError, decode  # noqa: E402
from convstack.image.io import read_image  # noqa: E402

RAMP8 = np.arange(256, dtype=np.uint8).reshape(16, 16)


def scaled(values, top):
    """round(values * 255 / top), the exact expectation for an integer image of full scale ``top``."""
    return np.floor(np.asarray(values, dtype=np.float64) * 255 / top + 0.5).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_gray_is_scaled_not_clipped(tmp_path, suffix):
    values = (RAMP8.astype(np.uint16) * 257)  # the 8-bit ramp at 16 bits: k -> 257 k
    values[0, 1], values[0, 2] = 1, 65534
    path = tmp_path / f"gray16{suffix}"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "I;16"
    expected = scaled(values, 65535)
    np.testing.assert_array_equal(read_image(path), expected)
    np.testing.assert_array_equal(expected[1:], RAMP8[1:])  # not binarised: the ramp survives
    np.testing.assert_array_equal(read_dataset_image(path, "RGB"), np.repeat(expected[..., None], 3, axis=-1))


def test_big_endian_sixteen_bit(tmp_path):
    values = RAMP8.astype(np.uint16) * 257 + 3
    path = tmp_path / "big.tif"
    Image.frombytes("I;16B", (16, 16), values.astype(">u2").tobytes()).save(path)
    assert Image.open(path).mode == "I;16B"
    np.testing.assert_array_equal(read_image(path), scaled(values, 65535))


def test_sixteen_bit_netpbm_with_another_maxval(tmp_path):
    """A 12-bit PGM (maxval 4095): Pillow scales it to 16 bits in mode I; convstack then to 8."""
    values = (RAMP8.astype(np.uint16) * 4095 // 255)
    path = tmp_path / "twelve.pgm"
    path.write_bytes(b"P5\n16 16\n4095\n" + values.astype(">u2").tobytes())
    assert Image.open(path).mode == "I"
    np.testing.assert_array_equal(read_image(path), scaled(values, 4095))


def test_thirty_two_bit_signed_tiff_uses_its_positive_range(tmp_path):
    values = np.array([[0, 1, 2**30, 2**31 - 1]], dtype=np.int32)
    path = tmp_path / "i32.tif"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "I"
    np.testing.assert_array_equal(read_image(path), scaled(values, 2**31 - 1))  # [0, 0, 128, 255]


def test_negative_integer_pixels_are_refused(tmp_path):
    path = tmp_path / "negative.tif"
    Image.fromarray(np.array([[-5, 7]], dtype=np.int32)).save(path)
    with pytest.raises(ImageDecodeError, match=r"negative\.tif: a signed integer image with negative values \(-5..7\)"):
        read_image(path)


def test_float_images_in_the_unit_interval(tmp_path):
    values = np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16)
    path = tmp_path / "float.tif"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "F"
    np.testing.assert_array_equal(read_image(path), np.rint(values.astype(np.float64) * 255).astype(np.uint8))


@pytest.mark.parametrize("values,message", [
    (np.array([[0.0, 200.0]], np.float32), r"values in \[0, 200\]; convstack reads float images in \[0, 1\]"),
    (np.array([[np.nan, 0.5]], np.float32), "NaN or infinite values"),
    (np.array([[-0.5, 0.5]], np.float32), r"values in \[-0.5, 0.5\]"),
])
def test_float_images_outside_the_unit_interval_are_refused(tmp_path, values, message):
    path = tmp_path / "float.tif"
    Image.fromarray(values).save(path)
    with pytest.raises(ImageDecodeError, match=r"float\.tif: .*" + message):
        read_image(path)
    with pytest.raises(DataFormatError, match="float.tif"):  # the dataset readers' exception, too
        read_dataset_image(path, "L")


def test_palette_with_transparency(tmp_path):
    picture = Image.new("P", (3, 1))
    picture.putpalette([200, 10, 10, 10, 200, 10] + [0] * 762)
    picture.putdata([0, 1, 1])
    picture.info["transparency"] = 0  # index 0 (red) is transparent
    path = tmp_path / "palette.png"
    picture.save(path, transparency=0)
    assert Image.open(path).mode == "P"
    np.testing.assert_array_equal(read_image(path), [[[0, 0, 0], [10, 200, 10], [10, 200, 10]]])
    np.testing.assert_array_equal(decode(path, "RGB", background=255)[0, 0], [255, 255, 255])


def test_palette_without_transparency(tmp_path):
    picture = Image.new("P", (2, 1))
    picture.putpalette([1, 2, 3, 250, 251, 252] + [0] * 762)
    picture.putdata([1, 0])
    picture.save(tmp_path / "palette.gif")
    np.testing.assert_array_equal(read_image(tmp_path / "palette.gif"), [[[250, 251, 252], [1, 2, 3]]])


@pytest.mark.parametrize("mode,pixel,expected", [
    ("LA", (200, 255), 200),
    ("LA", (200, 0), 0),
    ("LA", (200, 51), 40),  # 200 * 51 / 255
    ("RGBA", (100, 200, 250, 102), (40, 80, 100)),
    ("RGBA", (100, 200, 250, 0), (0, 0, 0)),
])
def test_alpha_is_composited_over_black(tmp_path, mode, pixel, expected):
    path = tmp_path / "alpha.png"
    Image.new(mode, (2, 2), pixel).save(path)
    np.testing.assert_array_equal(read_image(path)[0, 0], expected)


def test_alpha_over_another_background(tmp_path):
    path = tmp_path / "alpha.png"
    Image.new("LA", (1, 1), (0, 0)).save(path)
    assert decode(path, "L", background=255)[0, 0] == 255
    with pytest.raises(ValueError, match="`background`: expected an integer in 0..255, received 300"):
        decode(path, "L", background=300)


def test_cmyk(tmp_path):
    picture = Image.new("CMYK", (4, 1))
    picture.putdata([(0, 0, 0, 0), (255, 0, 0, 0), (0, 0, 0, 255), (0, 255, 255, 0)])
    picture.save(tmp_path / "cmyk.tif")
    assert Image.open(tmp_path / "cmyk.tif").mode == "CMYK"
    np.testing.assert_array_equal(read_image(tmp_path / "cmyk.tif"),
                                  [[[255, 255, 255], [0, 255, 255], [0, 0, 0], [255, 0, 0]]])
    picture.save(tmp_path / "cmyk.jpg", quality=100)
    assert np.abs(read_image(tmp_path / "cmyk.jpg").astype(int) - read_image(tmp_path / "cmyk.tif")).max() <= 40


def test_bilevel_and_gray_of_colour(tmp_path, rng):
    Image.fromarray(np.array([[True, False]])).save(tmp_path / "bits.png")
    assert Image.open(tmp_path / "bits.png").mode == "1"
    np.testing.assert_array_equal(read_image(tmp_path / "bits.png"), [[255, 0]])
    rgb = rng.integers(0, 256, (9, 7, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(decode(tmp_path / "rgb.png", "L"), np.asarray(Image.fromarray(rgb).convert("L")))


def test_lab_is_refused_naming_the_mode(tmp_path):
    Image.new("LAB", (2, 2), (50, 128, 128)).save(tmp_path / "lab.tif")
    with pytest.raises(ImageDecodeError, match="lab.tif: images of mode LAB are not supported"):
        read_image(tmp_path / "lab.tif")


def test_exif_orientation_is_applied(tmp_path):
    picture = Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4) * 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    picture.save(tmp_path / "portrait.jpg", exif=exif, quality=100)
    from PIL import ImageOps

    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "portrait.jpg")).convert("L"))
    read = read_image(tmp_path / "portrait.jpg")
    assert read.shape == (4, 3)
    np.testing.assert_array_equal(read, expected)


def test_predict_answers_the_same_for_8_and_16_bit_files(tmp_path, capsys):
    """The issue's symptom: a 16-bit PNG was read as binary and predicted with confidence."""
    from convstack import models
    from convstack.cli import main
    from convstack.io import save_checkpoint

    config = {"model": "lenet5", "model_options": {"num_classes": 10, "in_channels": 1, "input_size": 28},
              "classes": [str(i) for i in range(10)], "normalize": {"mean": [0.3], "std": [0.3]}}
    save_checkpoint(tmp_path / "run.ckpt", {"model": dict(models.get_model("lenet5").state_dict()),
                                            "config": config, "epoch": 1})
    picture = np.zeros((28, 28), np.uint8)
    picture[6:22, 9:19] = np.arange(10, dtype=np.uint8) * 25
    Image.fromarray(picture).save(tmp_path / "eight.png")
    Image.fromarray(picture.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")
    Image.fromarray(picture.astype(np.float32) / 255).save(tmp_path / "float.tif")
    answers = []
    for name in ("eight.png", "sixteen.png", "float.tif"):
        assert main(["predict", str(tmp_path / "run.ckpt"), str(tmp_path / name), "--top-k", "3"]) == 0
        answers.append(capsys.readouterr().out.split(":", 1)[1])
    assert answers[0] == answers[1] == answers[2]


def test_filter_gives_the_same_picture_for_8_and_16_bit_files(tmp_path):
    from convstack.cli import main

    picture = (np.arange(24 * 24).reshape(24, 24) % 251).astype(np.uint8)
    Image.fromarray(picture).save(tmp_path / "eight.png")
    Image.fromarray(picture.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")
    for name in ("eight", "sixteen"):
        assert main(["filter", str(tmp_path / f"{name}.png"), "--kernel", "sobel_x", "--out",
                     str(tmp_path / f"{name}-out.png")]) == 0
    np.testing.assert_array_equal(read_image(tmp_path / "eight-out.png"), read_image(tmp_path / "sixteen-out.png"))


# ----------------------------------------------------------------------------- hostile files
def sample_files(folder):
    """Small valid files in several formats and modes, as bytes."""
    pictures = {
        "gray.png": Image.fromarray(RAMP8),
        "sixteen.png": Image.fromarray(RAMP8.astype(np.uint16) * 257),
        "rgb.jpg": Image.fromarray(np.stack([RAMP8] * 3, axis=-1)),
        "float.tif": Image.fromarray(RAMP8.astype(np.float32) / 255),
        "rgba.png": Image.new("RGBA", (8, 8), (1, 2, 3, 4)),
        "palette.gif": Image.fromarray(RAMP8).convert("P"),
        "bmp.bmp": Image.fromarray(RAMP8),
    }
    blobs = {}
    for name, picture in pictures.items():
        picture.save(folder / name)
        blobs[name] = (folder / name).read_bytes()
    return blobs


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return sample_files(tmp_path_factory.mktemp("samples"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_image_files_decode_or_raise_naming_the_file(tmp_path, samples, data):
    name = data.draw(st.sampled_from(sorted(samples)), label="file")
    blob = bytearray(samples[name])
    action = data.draw(st.sampled_from(["flip", "cut", "random"]), label="action")
    if action == "flip":
        for _ in range(data.draw(st.integers(1, 8), label="flips")):
            position = data.draw(st.integers(0, len(blob) - 1), label="position")
            blob[position] ^= data.draw(st.integers(1, 255), label="mask")
    elif action == "cut":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1), label="length")]
    else:
        blob = bytearray(blob[:8]) + bytearray(data.draw(st.binary(max_size=300), label="bytes"))
    path = tmp_path / f"damaged-{name}"
    path.write_bytes(bytes(blob))
    for mode in (None, "L", "RGB"):
        try:
            image = decode(path, mode)
        except ImageDecodeError as error:
            assert str(error).startswith(str(path))
        else:
            assert image.dtype == np.uint8 and image.ndim in (2, 3)
