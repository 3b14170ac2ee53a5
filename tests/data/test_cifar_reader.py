import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convstack.data import CIFAR10_CLASSES, DataFormatError, cifar10, cifar100, read_cifar_batch

RECORD10 = 1 + 3072
RECORD100 = 2 + 3072


def _records(labels, rng, label_bytes=1):
    labels = np.asarray(labels, np.uint8).reshape(len(labels), label_bytes)
    images = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    return np.concatenate([labels, images], axis=1).tobytes(), images.reshape(-1, 3, 32, 32)


def test_read_cifar10_batch(tmp_path, rng):
    data, images = _records([3, 0, 9], rng)
    (tmp_path / "b.bin").write_bytes(data)
    out_images, out_labels = read_cifar_batch(tmp_path / "b.bin")
    np.testing.assert_array_equal(out_images, images)
    np.testing.assert_array_equal(out_labels[:, 0], [3, 0, 9])


@pytest.mark.parametrize(
    "data, message",
    [(b"", "file size 0 bytes is not a positive multiple of the 3073-byte CIFAR record"),
     (bytes(RECORD10 + 1), "file size 3074 bytes is not a positive multiple"),
     (bytes(RECORD10 - 1), "3072 bytes is not a positive multiple"),
     (b"\x0a" + bytes(3072), "record 0 has label 10, expected 0..9")],
)
def test_malformed_cifar_files(tmp_path, data, message):
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(data)
    with pytest.raises(DataFormatError, match=message) as info:
        read_cifar_batch(path)
    assert str(info.value).startswith(str(path))


def test_size_limit(tmp_path):
    (tmp_path / "big.bin").write_bytes(bytes(RECORD10 * 2))
    with pytest.raises(DataFormatError, match="larger than the limit of 4000 bytes"):
        read_cifar_batch(tmp_path / "big.bin", max_bytes=4000)


@pytest.fixture(autouse=True)
def _no_user_data(tmp_path, monkeypatch):
    monkeypatch.delenv("CONVSTACK_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_cifar10_and_cifar100_folders(tmp_path, rng):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for i in range(1, 6):
        (folder / f"data_batch_{i}.bin").write_bytes(_records([i, 9], rng)[0])
    (folder / "test_batch.bin").write_bytes(_records([7], rng)[0])
    train = cifar10(root=tmp_path)
    assert len(train) == 10 and train.labels.tolist() == [1, 9, 2, 9, 3, 9, 4, 9, 5, 9]
    assert train.classes == CIFAR10_CLASSES and train[0][0].shape == (3, 32, 32)
    assert len(cifar10("test", folder)) == 1 and train.source == str(folder)
    c100 = tmp_path / "c100"
    c100.mkdir()
    (c100 / "train.bin").write_bytes(_records([[4, 99], [19, 0]], rng, label_bytes=2)[0])
    (c100 / "test.bin").write_bytes(_records([[0, 1]], rng, label_bytes=2)[0])
    assert cifar100(root=c100).labels.tolist() == [99, 0]
    assert cifar100(root=c100, label="coarse").labels.tolist() == [4, 19]
    (c100 / "test.bin").write_bytes(_records([[20, 1]], rng, label_bytes=2)[0])
    with pytest.raises(DataFormatError, match="test.bin: record 0 has label 20, expected 0..19"):
        cifar100("test", c100)


def test_cifar_found_through_environment(tmp_path, rng, monkeypatch):
    folder = tmp_path / "env" / "cifar10" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    (folder / "test_batch.bin").write_bytes(_records([2, 3], rng)[0])
    monkeypatch.setenv("CONVSTACK_DATA", str(tmp_path / "env"))
    assert cifar10("test").source == str(folder)


def test_pickled_cifar_is_refused_and_missing_is_explained(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(DataFormatError, match="pickled"):
        cifar10(root=tmp_path)
    with pytest.raises(FileNotFoundError, match="cifar10: no CIFAR binary files .test_batch.bin. in .*kriz/cifar"):
        cifar10(root=tmp_path / "cifar-10-batches-py" / "x")


@settings(max_examples=100, deadline=1000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=st.integers(1, 3),
    label_bytes=st.sampled_from([1, 2]),
    flips=st.lists(st.tuples(st.integers(0, 10000), st.integers(1, 255)), max_size=3),
    cut=st.one_of(st.none(), st.integers(0, 3 * RECORD100)),
    extra=st.binary(max_size=8),
)
def test_mutated_cifar_files_only_raise_data_format_error(tmp_path, records, label_bytes, flips, cut, extra):
    rng = np.random.default_rng(records)
    labels = [[1, 2]] * records if label_bytes == 2 else [1] * records
    data = bytearray(_records(labels, rng, label_bytes)[0])
    for position, mask in flips:
        if data:
            data[position % len(data)] ^= mask
    if cut is not None:
        del data[cut:]
    data += extra
    path = tmp_path / "fuzz.bin"
    path.write_bytes(bytes(data))
    classes = (10,) if label_bytes == 1 else (20, 100)
    try:
        images, out_labels = read_cifar_batch(path, label_bytes, classes, max_bytes=4 * RECORD100)
    except DataFormatError as error:
        assert str(path) in str(error)
        return
    assert images.shape[1:] == (3, 32, 32) and len(images) * (label_bytes + 3072) == len(data)
    assert all((out_labels[:, i] < c).all() for i, c in enumerate(classes))
