"""`convstack filter`: PNG/JPEG round trips (gray and RGB), output sizes and display scales, one-line errors."""

import sys

import numpy as np
import pytest

import convstack.cli as cli
from convstack.cli import filter_command
from convstack.image import correlate, get_kernel, io

Image = pytest.importorskip("PIL.Image")


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    """`main` with the filter command among its subcommands (whether or not cli/__init__ lists it yet)."""
    if filter_command not in cli.COMMANDS:
        monkeypatch.setattr(cli, "COMMANDS", cli.COMMANDS + (filter_command,))


@pytest.fixture
def pictures(tmp_path):
    """A gray PNG with a vertical step edge and a random RGB PNG."""
    gray = np.zeros((12, 16), dtype=np.uint8)
    gray[:, 8:] = 200
    rgb = np.random.default_rng(0).integers(0, 256, (10, 14, 3)).astype(np.uint8)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    return tmp_path, gray, rgb


def test_gray_blur_round_trip(pictures, capsys):
    folder, gray, _ = pictures
    out = folder / "blurred.png"
    assert cli.main(["filter", str(folder / "gray.png"), "--kernel", "box:3", "--out", str(out)]) == 0
    written = np.asarray(Image.open(out))
    assert written.shape == gray.shape and written.dtype == np.uint8
    expected = np.rint(correlate(gray, get_kernel("box:3"), boundary="reflect"))
    np.testing.assert_allclose(written, expected, atol=1)
    assert (
        "blurred.png: 16x12 gray, kernel box:3 (3x3), mode same, boundary reflect, scale clip"
        in capsys.readouterr().out
    )


@pytest.mark.parametrize("mode, size", [("same", (10, 14)), ("valid", (6, 10)), ("full", (14, 18))])
def test_rgb_output_size_follows_the_mode(pictures, mode, size):
    folder, _, _ = pictures
    out = folder / f"rgb_{mode}.jpg"
    argv = ["filter", str(folder / "rgb.png"), "--kernel", "gaussian:1,5", "--out", str(out), "--mode", mode]
    assert cli.main(argv + ["--boundary", "zero", "--convolve"]) == 0
    with Image.open(out) as written:
        assert written.mode == "RGB" and written.size == (size[1], size[0]) and written.format == "JPEG"


def test_edge_kernels_are_made_visible(pictures):
    folder, gray, _ = pictures
    sobel, emboss = folder / "sobel.png", folder / "emboss.png"
    assert cli.main(["filter", str(folder / "gray.png"), "--kernel", "sobel_x", "--out", str(sobel)]) == 0
    edges = io.read_image(sobel)
    np.testing.assert_array_equal(edges[:, [7, 8]], 255)  # |response| scaled: the edge is white
    np.testing.assert_array_equal(np.delete(edges, [7, 8], axis=1), 0)  # flat regions black
    assert cli.main(["filter", str(folder / "gray.png"), "--kernel", "emboss", "--out", str(emboss)]) == 0
    relief = io.read_image(emboss)
    np.testing.assert_array_equal(relief[:, :5], 128)  # flat regions mid-grey
    assert relief[:, 7].min() > 128


@pytest.mark.parametrize(
    "image, out, options, message",
    [
        (
            "rgb.png",
            "out.png",
            ["--kernel", "blur"],
            "unknown kernel 'blur' in 'blur': expected one of identity, shift",
        ),
        ("rgb.png", "out.png", ["--kernel", "box:x"], "kernel 'box:x': expected an integer for `n` (box[:n])"),
        (
            "rgb.png",
            "out.png",
            ["--kernel", "box:11", "--mode", "valid"],
            "correlate: invalid value for argument `kernel`: expected a kernel no larger than the image",
        ),
        ("rgb.png", "out.bmpx", ["--kernel", "box"], "out.bmpx: cannot write image"),
        ("missing.png", "out.png", ["--kernel", "box"], "[Errno 2] no such image file"),
        ("junk.png", "out.png", ["--kernel", "box"], "junk.png: cannot decode image"),
    ],
)
def test_one_line_errors(pictures, capsys, image, out, options, message):
    folder, _, _ = pictures
    (folder / "junk.png").write_bytes(b"not a png")
    assert cli.main(["filter", str(folder / image), "--out", str(folder / out)] + options) == 2
    error = capsys.readouterr().err
    assert error.startswith("convstack filter: error: ") and message in error and error.count("\n") == 1


def test_argument_errors(pictures, capsys):
    folder, _, _ = pictures
    with pytest.raises(SystemExit) as caught:
        cli.main(["filter", str(folder / "rgb.png"), "--kernel", "box", "--out", "x.png", "--boundary", "edge"])
    assert caught.value.code == 2
    assert "argument --boundary: invalid choice: 'edge'" in capsys.readouterr().err


def test_missing_pillow_is_one_line(pictures, capsys, monkeypatch):
    folder, _, _ = pictures
    monkeypatch.setitem(sys.modules, "PIL", None)  # `from PIL import Image` now raises ImportError
    assert cli.main(["filter", str(folder / "rgb.png"), "--kernel", "box", "--out", str(folder / "out.png")]) == 2
    error = capsys.readouterr().err
    assert error == (
        "convstack filter: error: reading and writing image files needs Pillow, a dependency of convstack that is "
        "missing here: pip install pillow\n"
    )
