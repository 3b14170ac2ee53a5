"""Resource bounds (issue 7, item 7): a buffer that cannot fit is refused with its size, before allocating."""

import pytest

from convstack import backend


@pytest.fixture(autouse=True)
def no_limit(monkeypatch):
    monkeypatch.delenv("CONVSTACK_MEMORY_LIMIT", raising=False)
    yield
    backend.set_memory_limit(None)


def test_a_buffer_beyond_available_memory_is_refused_with_its_estimate():
    available, source = backend.available_memory()
    assert available is None or available > 0
    if available is None:
        pytest.skip("this platform does not say how much memory is available")
    nbytes = 40 * 2**40  # 40 TiB: more than any machine this runs on has free
    with pytest.raises(MemoryError) as caught:
        backend.check_allocation(nbytes, "conv2d: the im2col buffer", "input shape (4096, 512, 224, 224), "
                                 "weight shape (512, 512, 3, 3)")
    assert str(caught.value).startswith(
        "conv2d: the im2col buffer would need 40.0 TiB (input shape (4096, 512, 224, 224), weight shape "
        f"(512, 512, 3, 3)), more than {source} ("
    )
    assert str(caught.value).endswith("); reduce the batch size or the input size")


def test_small_buffers_pass_without_looking():
    backend.check_allocation(1024, "tiny")
    backend.check_allocation(64 * 2**20, "at the threshold")


def test_a_configured_limit_applies_to_any_size():
    backend.set_memory_limit(1000)
    backend.check_allocation(1000, "x: exactly the limit")
    with pytest.raises(MemoryError, match=r"^pool: the window buffer would need 1\.0 KiB, more than the memory limit "
                       r"\(convstack\.backend\.set_memory_limit\) \(1000 B\); use a smaller window$"):
        backend.check_allocation(1024, "pool: the window buffer", hint="use a smaller window")
    backend.set_memory_limit(None)
    backend.check_allocation(1024, "x: no limit again")


def test_limit_from_the_environment(monkeypatch):
    monkeypatch.setenv("CONVSTACK_MEMORY_LIMIT", "1.5GiB")
    assert backend.memory_limit() == (int(1.5 * 2**30), "the memory limit (CONVSTACK_MEMORY_LIMIT)")
    with pytest.raises(MemoryError, match=r"would need 2\.0 GiB, more than the memory limit \(CONVSTACK_MEMORY_LIMIT\) "
                       r"\(1\.5 GiB\)"):
        backend.check_allocation(2 * 2**30, "matmul: the output")
    monkeypatch.setenv("CONVSTACK_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="CONVSTACK_MEMORY_LIMIT: expected a size such as 8GiB or 1000000, "
                       "received 'lots'"):
        backend.check_allocation(2 * 2**30, "matmul: the output")


@pytest.mark.parametrize("value", [0, -5, 1.5, True, "8GiB"])
def test_set_memory_limit_refuses_nonsense(value):
    with pytest.raises(ValueError, match="set_memory_limit: invalid value for argument `nbytes`"):
        backend.set_memory_limit(value)


@pytest.mark.parametrize("nbytes,text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (37.2 * 2**30, "37.2 GiB")])
def test_format_bytes(nbytes, text):
    assert backend.format_bytes(nbytes) == text
