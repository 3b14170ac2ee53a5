import hashlib
import importlib
from pathlib import Path

import numpy as np
import pytest

from convstack.data import (
    BUNDLED_SAMPLE,
    CLASSES,
    ChecksumError,
    DataFormatError,
    DataLoader,
    download_file,
    fashion_mnist,
    mnist,
    write_idx,
)

# The module, not the function of the same name that convstack.data exports.
fm = importlib.import_module("convstack.data.fashion_mnist")
DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def _write_split(folder, split, count, fill, gz=True):
    """Fake Fashion-MNIST files: ``count`` images all equal to ``fill`` (so tests can tell sources apart)."""
    folder.mkdir(parents=True, exist_ok=True)
    images_name, labels_name = fm.FILES[split]
    suffix = ".gz" if gz else ""
    write_idx(folder / f"{images_name}{suffix}", np.full((count, 28, 28), fill, np.uint8))
    write_idx(folder / f"{labels_name}{suffix}", (np.arange(count) % 10).astype(np.uint8))
    return folder


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Every place the finder looks redirected into tmp_path; downloads go to an empty file:// folder."""
    server = tmp_path / "server"
    server.mkdir()
    monkeypatch.delenv("CONVSTACK_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(fm, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setattr(fm, "BASE_URL", server.as_uri() + "/")
    return {
        "root": tmp_path / "root",
        "env": tmp_path / "env",
        "cache": tmp_path / "cache" / "convstack" / "fashion-mnist",
        "system": tmp_path / "system",
        "server": server,
    }


ORDER = ["root", "env", "cache", "system"]


@pytest.mark.parametrize("first", ORDER)
def test_finder_order(places, monkeypatch, first):
    monkeypatch.setenv("CONVSTACK_DATA", str(places["env"]))
    for fill, name in enumerate(ORDER[ORDER.index(first):], start=1):
        _write_split(places[name], "train", 20, fill)
    dataset = fashion_mnist("train", root=places["root"], download=False)
    assert dataset.source == str(places[first]) and len(dataset) == 20
    assert float(dataset[0][0].data.max()) == pytest.approx(1 / 255)  # the first place's files


def test_dataset_subfolder_and_raw_files_accepted(places, monkeypatch):
    _write_split(places["env"] / "fashion-mnist", "test", 10, 5, gz=False)
    monkeypatch.setenv("CONVSTACK_DATA", str(places["env"]))
    dataset = fashion_mnist("test", download=False)
    assert dataset.source == str(places["env"] / "fashion-mnist") and dataset.classes == CLASSES


def test_a_folder_needs_both_files_of_the_split(places):
    _write_split(places["root"], "train", 20, 1)
    (places["root"] / "train-labels-idx1-ubyte.gz").unlink()
    _write_split(places["system"], "train", 30, 2)
    assert fashion_mnist("train", root=places["root"], download=False).source == str(places["system"])


def _serve(places, split, monkeypatch, corrupt=None):
    """Put gzipped files on the file:// server and publish their MD5s (one of them wrong if asked)."""
    _write_split(places["server"], split, 20, 9)
    checksums = {}
    for stem in fm.FILES[split]:
        name = f"{stem}.gz"
        checksums[name] = hashlib.md5((places["server"] / name).read_bytes()).hexdigest()
    if corrupt:
        checksums[corrupt] = "0" * 32
    monkeypatch.setattr(fm, "MD5", checksums)


def test_download_into_cache_with_progress(places, monkeypatch, capsys):
    _serve(places, "train", monkeypatch)
    dataset = fashion_mnist("train")
    assert dataset.source == str(places["cache"]) and len(dataset) == 20
    assert sorted(p.name for p in places["cache"].iterdir()) == ["train-images-idx3-ubyte.gz",
                                                                 "train-labels-idx1-ubyte.gz"]
    err = capsys.readouterr().err
    assert "downloading train-images-idx3-ubyte.gz: 100%" in err and "not found in" in err
    assert fashion_mnist("train").source == str(places["cache"])  # found there next time


def test_checksum_mismatch_leaves_nothing_and_falls_back(places, monkeypatch):
    _serve(places, "test", monkeypatch, corrupt="t10k-images-idx3-ubyte.gz")
    url = fm.BASE_URL + "t10k-images-idx3-ubyte.gz"
    with pytest.raises(ChecksumError, match="t10k-images-idx3-ubyte.gz: MD5 checksum [0-9a-f]{32} differs"):
        download_file(url, places["cache"] / "x.gz", md5="0" * 32, progress=False)
    with pytest.warns(UserWarning, match="MD5 checksum.*using the bundled sample"):
        dataset = fashion_mnist("test")
    assert dataset.source == BUNDLED_SAMPLE
    assert not any(p.name.startswith("t10k-images") for p in places["cache"].iterdir())
    assert not list(places["cache"].glob(".*"))  # no temporary file left behind


def test_offline_falls_back_to_bundled_sample(places):
    with pytest.warns(UserWarning, match="fashion-mnist \\(train\\) not found in .*download failed.*bundled sample"):
        dataset = fashion_mnist("train")
    assert dataset.source == BUNDLED_SAMPLE and len(dataset) == 10000


def test_no_download_falls_back_without_trying(places, capsys):
    with pytest.warns(UserWarning, match="not found in"):
        assert fashion_mnist("test", download=False).source == BUNDLED_SAMPLE
    assert "downloading" not in capsys.readouterr().err


@pytest.mark.parametrize("split, per_class", [("train", 1000), ("test", 200)])
def test_bundled_sample_is_stratified(split, per_class):
    dataset = fashion_mnist(split, sample=True)
    assert dataset.source == BUNDLED_SAMPLE and dataset.images.shape == (10 * per_class, 28, 28)
    assert np.bincount(dataset.labels, minlength=10).tolist() == [per_class] * 10
    assert dataset.images.dtype == np.uint8 and 0.2 < dataset.images.mean() / 255 < 0.4


def test_bundled_sample_is_small_and_licensed():
    files = list(fm.SAMPLE_DIR.iterdir())
    assert sum(p.stat().st_size for p in files) < 8 * 2**20
    assert "Zalando SE" in (fm.SAMPLE_DIR / "LICENSE-fashion-mnist.txt").read_text()


def test_label_count_disagreement_names_labels_file(places):
    _write_split(places["root"], "train", 20, 1)
    write_idx(places["root"] / "train-labels-idx1-ubyte.gz", np.zeros(19, np.uint8))
    with pytest.raises(DataFormatError, match="train-labels-idx1-ubyte.gz: 19 labels for the 20 images"):
        fashion_mnist("train", root=places["root"])


def test_bad_labels_and_shapes(places):
    _write_split(places["root"], "train", 4, 1)
    write_idx(places["root"] / "train-labels-idx1-ubyte.gz", np.array([0, 1, 2, 10], np.uint8))
    with pytest.raises(DataFormatError, match="label 10 out of range 0..9"):
        fashion_mnist("train", root=places["root"])
    write_idx(places["root"] / "train-images-idx3-ubyte.gz", np.zeros((4, 784), np.uint8))
    with pytest.raises(DataFormatError, match=r"train-images-idx3-ubyte.gz: expected uint8 images \(N, H, W\)"):
        fashion_mnist("train", root=places["root"])


def test_truncated_found_file_is_an_error_not_a_fallback(places):
    _write_split(places["root"], "test", 10, 1)
    path = places["root"] / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataFormatError, match="t10k-images-idx3-ubyte.gz: truncated gzip stream"):
        fashion_mnist("test", root=places["root"])


def test_invalid_split():
    with pytest.raises(ValueError, match="argument `split`"):
        fashion_mnist("validation", sample=True)


def test_mnist_download_and_not_found(places, monkeypatch, tmp_path):
    monkeypatch.setattr(fm, "MNIST_SYSTEM_DIR", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="mnist \\(test\\) not found in .*download failed"):
        mnist("test", base_url=places["server"].as_uri() + "/")
    _write_split(places["server"], "test", 10, 3)
    monkeypatch.setattr(fm, "MNIST_MD5", {})
    dataset = mnist("test", base_url=places["server"].as_uri() + "/")
    assert len(dataset) == 10 and dataset.classes[3] == "3"
    assert dataset.source == str(tmp_path / "cache" / "convstack" / "mnist")


@pytest.mark.skipif(not DEBIAN.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_full_dataset_from_debian():
    train, test = fashion_mnist("train", root=DEBIAN), fashion_mnist("test", root=DEBIAN, download=False)
    assert (len(train), len(test)) == (60000, 10000) and train.source == str(DEBIAN)
    assert np.bincount(test.labels).tolist() == [1000] * 10
    images, labels = next(iter(DataLoader(train, batch_size=64)))
    assert images.shape == (64, 1, 28, 28) and CLASSES[int(labels.data[0])] == "Ankle boot"

