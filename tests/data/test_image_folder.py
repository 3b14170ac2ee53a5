import sys

import numpy as np
import pytest

from convstack.data import DataFormatError, DataLoader, ImageFolder, read_image

Image = pytest.importorskip("PIL.Image")


@pytest.fixture
def folder(tmp_path, rng):
    for name, colour in (("cat", 10), ("ant", 200)):
        (tmp_path / name).mkdir()
        for i in range(3):
            array = np.full((5, 6, 3), colour + i, np.uint8)
            Image.fromarray(array).save(tmp_path / name / f"{i}.{'png' if i % 2 else 'jpg'}", quality=100)
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    return tmp_path


def test_classes_sorted_and_images_converted(folder):
    dataset = ImageFolder(folder, mode="L")
    assert dataset.classes == ("ant", "cat") and len(dataset) == 6
    assert dataset.targets.tolist() == [0, 0, 0, 1, 1, 1]
    image, label = dataset[4]
    assert image.shape == (1, 5, 6) and image.dtype == np.float32 and label == 1
    rgb, _ = ImageFolder(folder)[0]
    assert rgb.shape == (3, 5, 6)
    assert abs(float(rgb.data.mean()) * 255 - 200) < 2  # JPEG: nearly exact


def test_loader_over_image_folder(folder):
    images, labels = next(iter(DataLoader(ImageFolder(folder), batch_size=4)))
    assert images.shape == (4, 3, 5, 6) and labels.data.tolist() == [0, 0, 0, 1]


def test_corrupt_image_names_the_file(folder):
    bad = folder / "cat" / "9.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    dataset = ImageFolder(folder)
    with pytest.raises(DataFormatError, match=r"9\.png: cannot decode image"):
        dataset[len(dataset) - 1]


def test_empty_folders_refused(tmp_path):
    with pytest.raises(DataFormatError, match="no class sub-folders"):
        ImageFolder(tmp_path)
    (tmp_path / "a").mkdir()
    with pytest.raises(DataFormatError, match="no image files"):
        ImageFolder(tmp_path)
    with pytest.raises(FileNotFoundError):
        ImageFolder(tmp_path / "missing")


def test_missing_pillow_gives_clear_error(folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"needs Pillow.*pip install pillow"):
        read_image(folder / "cat" / "1.png")
