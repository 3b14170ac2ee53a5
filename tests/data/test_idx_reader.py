import gzip

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convstack.data import DataFormatError, read_idx, write_idx
from convstack.data.idx import DTYPE_CODES

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip(tmp_path, rng, dtype, suffix):
    array = (rng.random((3, 4, 5)) * 100).astype(dtype)
    path = write_idx(tmp_path / f"a-idx3{suffix}", array)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_gzip_detected_by_magic_not_name(tmp_path):
    array = np.arange(6, dtype=np.uint8)
    write_idx(tmp_path / "labels", array, compress=True)
    write_idx(tmp_path / "labels.gz", array, compress=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "labels.gz"), array)


def _header(code=0x08, dims=(2, 3)):
    return bytes([0, 0, code, len(dims)]) + np.asarray(dims, ">u4").tobytes()


VALID = _header() + bytes(range(6))


@pytest.mark.parametrize(
    "data, raw_message, gzip_message",
    [
        (b"", "file ends inside the IDX magic number", "data ends inside the IDX magic number"),
        (b"\x01\x02\x08\x01\x00\x00\x00\x01\x05", "not an IDX file: magic number 01020801", None),
        (_header(code=0x0A) + bytes(6), "unknown IDX dtype code 0x0a", None),
        (b"\x00\x00\x08\x00", "declares 0 dimensions", None),
        (b"\x00\x00\x08\x03\x00\x00", "file ends inside the IDX dimensions", "data ends inside the IDX dimensions"),
        (VALID[:-1], "file size 17 bytes disagrees with the header, which describes 18 bytes",
         "data ends after 5 of the 6 bytes the header describes"),
        (VALID + b"\x00", "file size 19 bytes disagrees with the header", "more data than the 6 bytes"),
        (_header(dims=(60000, 60000, 60000)) + bytes(8), "more than the limit", None),
        (_header(code=0x0E, dims=(0, 2**32 - 1, 2**32 - 1, 2**32 - 1, 2**32 - 1)), "cannot allocate", None),
    ],
)
@pytest.mark.parametrize("compressed", [False, True])
def test_malformed_files_raise_naming_the_file(tmp_path, data, raw_message, gzip_message, compressed):
    path = tmp_path / "bad-file.idx"
    path.write_bytes(gzip.compress(data) if compressed else data)
    message = (gzip_message or raw_message) if compressed else raw_message
    with pytest.raises(DataFormatError, match=message) as info:
        read_idx(path)
    assert str(info.value).startswith(f"{path}: ") and info.value.path == str(path)
    assert isinstance(info.value, ValueError)


def test_size_limit_is_checked_before_allocating(tmp_path):
    path = tmp_path / "huge.gz"
    path.write_bytes(gzip.compress(_header(dims=(1000, 1000))))  # claims 1 MB, holds nothing
    with pytest.raises(DataFormatError, match="1000000 bytes.*limit of 1000 bytes"):
        read_idx(path, max_bytes=1000)


def test_truncated_gzip(tmp_path):
    data = gzip.compress(_header(dims=(100,)) + bytes(range(100)))
    path = tmp_path / "cut.gz"
    path.write_bytes(data[:-5])
    with pytest.raises(DataFormatError, match="cut.gz: truncated gzip stream"):
        read_idx(path)


def test_corrupt_gzip_and_trailing_bytes(tmp_path):
    data = bytearray(gzip.compress(VALID))
    data[-6] ^= 0xFF  # inside the CRC trailer
    (tmp_path / "crc.gz").write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match="crc.gz: corrupt gzip stream"):
        read_idx(tmp_path / "crc.gz")
    (tmp_path / "tail.gz").write_bytes(gzip.compress(VALID) + b"junk")
    with pytest.raises(DataFormatError, match="tail.gz: unexpected bytes after the end of the gzip stream"):
        read_idx(tmp_path / "tail.gz")


def test_write_idx_refuses_unsupported_arrays(tmp_path):
    with pytest.raises(ValueError, match="write_idx: invalid value for argument `array`"):
        write_idx(tmp_path / "x", np.zeros(3, np.uint16))


# ----------------------------------------------------------------------------- property tests
LIMIT = 1 << 16  # bytes: keeps every array the fuzzed reader may allocate small


@st.composite
def idx_files(draw):
    dtype = draw(st.sampled_from(list(DTYPE_CODES.values())))
    shape = draw(st.lists(st.integers(0, 6), min_size=1, max_size=3))
    payload = draw(st.binary(min_size=int(np.prod(shape)) * dtype.itemsize,
                             max_size=int(np.prod(shape)) * dtype.itemsize))
    code = {v: k for k, v in DTYPE_CODES.items()}[dtype]
    raw = _header(code, shape) + payload
    return gzip.compress(raw, mtime=0) if draw(st.booleans()) else raw


@st.composite
def mutated(draw):
    data = bytearray(draw(idx_files()))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["flip", "truncate", "extend"]))
        if kind == "flip" and data:
            position = draw(st.integers(0, len(data) - 1))
            data[position] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[draw(st.integers(0, len(data))):]
        else:
            data += draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


def _read_or_refuse(tmp_path, data):
    path = tmp_path / "fuzz.idx"
    path.write_bytes(data)
    try:
        array = read_idx(path, max_bytes=LIMIT)
    except DataFormatError as error:
        assert str(path) in str(error)
        return None
    assert array.nbytes <= LIMIT
    return array


@settings(max_examples=150, deadline=1000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mutated())
def test_mutated_files_only_raise_data_format_error(tmp_path, data):
    _read_or_refuse(tmp_path, data)


@settings(max_examples=100, deadline=1000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.sampled_from([b"", b"\x1f\x8b", b"\x1f\x8b\x08\x00", b"\x00\x00\x08\x03"]),
       tail=st.binary(max_size=64))
def test_random_bytes_only_raise_data_format_error(tmp_path, prefix, tail):
    _read_or_refuse(tmp_path, prefix + tail)


@settings(max_examples=50, deadline=1000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=idx_files())
def test_valid_files_always_read(tmp_path, data):
    assert _read_or_refuse(tmp_path, data) is not None
