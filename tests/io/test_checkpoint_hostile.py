"""Hostile checkpoint files: every byte is covered by the checksum, and every JSON shape ends in CheckpointError.

A checksum only proves that a file is the one that was written; a file sealed with a
correct checksum around a hostile header (what a tool, a person or another program could
write) must still end in ``CheckpointError`` naming the file, never a Python traceback.
The hypothesis tests below build such files from valid ones: values at any depth replaced
by JSON of any shape, keys dropped or added, nesting far beyond Python's recursion limit.
"""

import json
import struct

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import convstack as cs  # noqa: E402
from convstack import nn, optim  # noqa: E402
from convstack.cli.common import load_run  # noqa: E402
from convstack.io import CheckpointError, load_checkpoint, load_model_checkpoint, save_checkpoint  # noqa: E402
from convstack.io.safetensors_file import seal  # noqa: E402
from convstack.models import lenet5  # noqa: E402
from convstack.train import Trainer  # noqa: E402

CONFIG = {
    "model": "lenet5",
    "model_options": {"num_classes": 10, "in_channels": 1, "input_size": 28},
    "dataset": "fashion-mnist",
    "classes": [str(i) for i in range(10)],
    "normalize": {"mean": [0.2860406], "std": [0.3530242]},
}


NEEDS = ("classes", "normalize", "input")  # what predict and visualize read


def training_state():
    """A real training checkpoint's state: LeNet-5, SGD with momentum buffers, a cosine schedule."""
    model = lenet5()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss = model(cs.randn(2, 1, 28, 28)).sum()
    loss.backward()
    optimizer.step()
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=3)
    trainer = Trainer(model, optimizer, scheduler=scheduler, progress=False, config=CONFIG)
    trainer.history = [{"epoch": 1, "loss": 0.5, "acc": 0.8}]
    trainer.epoch = 1
    return trainer.state_dict()


def header_and_data(path):
    blob = path.read_bytes()
    (length,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8 : 8 + length]), blob[8 + length :]


def write_sealed(path, header, data: bytes):
    """``header`` and ``data`` as a file whose checksum is correct (what a deliberate writer produces).

    A header without a metadata object cannot hold a checksum: it is written as it is (a plain
    safetensors file, whose entries are then checked without one).
    """
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    chunks = None
    if isinstance(metadata, dict):
        try:
            chunks = seal({**header, "__metadata__": {**metadata, "file_sha256": "0" * 64}}, [data])
        except CheckpointError:  # a hostile value spelling the placeholder: no single place to seal
            chunks = None
    if chunks is None:
        encoded = json.dumps(header).encode()
        chunks = [struct.pack("<Q", len(encoded)), encoded, data]
    path.write_bytes(b"".join(chunks))


@pytest.fixture(scope="module")
def valid_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("valid") / "run.ckpt"
    cs.manual_seed(0)
    save_checkpoint(path, training_state())
    return path


def assert_refused_naming(path, load):
    with pytest.raises(CheckpointError) as error:
        load(path)
    assert str(path) in str(error.value)
    return str(error.value)


# ----------------------------------------------------------------------------- every byte
def test_an_edited_normalisation_digit_in_the_header_fails_the_checksum(tmp_path, valid_file):
    blob = bytearray(valid_file.read_bytes())
    position = blob.index(b"0.2860406")
    blob[position + 4] = ord("9")  # 0.2869406: every prediction would shift
    path = tmp_path / "edited.ckpt"
    path.write_bytes(bytes(blob))
    assert "checksum mismatch" in assert_refused_naming(path, load_checkpoint)


def test_every_single_byte_of_a_file_is_covered(tmp_path):
    """Flip each byte of a small checkpoint in turn (length, header, padding, checksum, data): all refused."""
    path = tmp_path / "small.ckpt"
    save_checkpoint(path, {"w": np.arange(3, dtype=np.float32), "epoch": 2, "normalize": [0.5]})
    blob = path.read_bytes()
    load_checkpoint(path)
    damaged = tmp_path / "damaged.ckpt"
    for position in range(len(blob)):
        flipped = bytearray(blob)
        flipped[position] ^= 0x01
        damaged.write_bytes(bytes(flipped))
        with pytest.raises(CheckpointError, match="damaged.ckpt"):
            load_checkpoint(damaged)


def test_streams_are_sealed_and_checked_as_files():
    import io

    from convstack.io import load_safetensors, save_safetensors

    stream = io.BytesIO()
    save_safetensors({"w": np.arange(3, dtype=np.float32)}, stream, {"note": "x"})
    blob = bytearray(stream.getvalue())
    arrays, metadata = load_safetensors(io.BytesIO(bytes(blob)))
    np.testing.assert_array_equal(arrays["w"], [0, 1, 2])
    assert metadata["note"] == "x"
    blob[-2] ^= 1
    with pytest.raises(CheckpointError, match="<stream>: checksum mismatch"):
        load_safetensors(io.BytesIO(bytes(blob)))


def test_files_with_the_older_data_only_checksum_still_load(tmp_path):
    data = np.arange(4, dtype=np.float32).tobytes()
    import hashlib

    header = {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
              "__metadata__": {"format": "convstack", "sha256": hashlib.sha256(data).hexdigest(),
                               "state": json.dumps({"__dict__": [["w", {"__array__": "w"}]]})}}
    encoded = json.dumps(header).encode()
    path = tmp_path / "old.ckpt"
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)
    np.testing.assert_array_equal(load_checkpoint(path)["w"], np.arange(4))


def test_a_convstack_file_without_a_checksum_is_refused(tmp_path, valid_file):
    header, data = header_and_data(valid_file)
    del header["__metadata__"]["file_sha256"]
    encoded = json.dumps(header).encode()
    path = tmp_path / "stripped.ckpt"
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)
    assert "without its checksum" in assert_refused_naming(path, load_checkpoint)


# ----------------------------------------------------------------------------- hostile shapes
def deep(depth: int, opener="[", closer="]") -> str:
    return opener * depth + closer * depth


HOSTILE_HEADERS = {
    "nested 100,000 deep": deep(100_000),
    "__metadata__ a list": '{"__metadata__": [1, 2]}',
    "__metadata__ a string": '{"__metadata__": "x"}',
    "a metadata value a number": '{"__metadata__": {"sha256": 5}}',
    "an entry a list": '{"a": [1, 2]}',
    "a negative dimension": '{"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}',
    "absurd dimensions": '{"a": {"dtype": "F32", "shape": [1099511627776, 1099511627776], "data_offsets": [0, 0]}}',
    "zero-size absurd dimensions": '{"a": {"dtype": "F32", "shape": [0, 4611686018427387904, 4611686018427387904], '
    '"data_offsets": [0, 0]}}',
    "a fractional dimension": '{"a": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}',
    "boolean offsets": '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [true, 5]}}',
    "a dtype list": '{"a": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}',
    "an unknown dtype": '{"a": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}',
    "NaN as an entry": '{"a": NaN}',
    "a duplicate key": '{"a": 1, "a": 2}',
    "a top-level list": "[1, 2, 3]",
    "a top-level number": "7",
    "not UTF-8": b'{"\xff": 1}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_HEADERS))
def test_hostile_raw_headers(tmp_path, name):
    encoded = HOSTILE_HEADERS[name]
    encoded = encoded if isinstance(encoded, bytes) else encoded.encode()
    path = tmp_path / "hostile.ckpt"
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + b"\0" * 8)
    assert_refused_naming(path, load_checkpoint)


HOSTILE_STATES = {
    "nested 100,000 deep": deep(100_000),
    "an unknown node": json.dumps({"__weird__": 1}),
    "__dict__ a number": json.dumps({"__dict__": 5}),
    "a __dict__ item of one element": json.dumps({"__dict__": [[1]]}),
    "an unhashable key": json.dumps({"__dict__": [[[1], 2]]}),
    "an array marker holding a list": json.dumps({"__array__": [1]}),
    "a missing array": json.dumps({"__array__": "nowhere"}),
    "__tuple__ a string": json.dumps({"__tuple__": "abc"}),
    "the state a list": json.dumps([1, 2]),
    "two markers": json.dumps({"__array__": "a", "__tuple__": []}),
    "deep dict nesting": '{"__dict__": [["k", ' * 5000 + "1" + "]]}" * 5000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE_STATES))
def test_hostile_state_metadata_even_with_a_correct_checksum(tmp_path, name):
    header = {"__metadata__": {"format": "convstack", "state": HOSTILE_STATES[name]}}
    path = tmp_path / "hostile.ckpt"
    write_sealed(path, header, b"")
    assert_refused_naming(path, load_checkpoint)


# ----------------------------------------------------------------------------- hypothesis
_SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6)
JSON = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
HOSTILE_VALUE = st.one_of(
    JSON,
    st.integers(1, 200).map(lambda depth: json.loads(deep(depth))),
    st.sampled_from([{"__array__": "nowhere"}, {"__dict__": 1}, {"__tuple__": None}, [[[]]], -1, 2**64, 1e308]),
)


def mutate(data, tree, depth=0):
    """``tree`` with one place, reached by a random walk, replaced, removed, or given a new key."""
    containers = isinstance(tree, (dict, list)) and len(tree) > 0
    if not containers or data.draw(st.integers(0, 4), label=f"stop at depth {depth}") == 0:
        return data.draw(HOSTILE_VALUE, label="replacement")
    keys = sorted(tree) if isinstance(tree, dict) else list(range(len(tree)))
    key = data.draw(st.sampled_from(keys), label="key")
    action = data.draw(st.sampled_from(["descend", "descend", "delete", "add"]), label="action")
    copy = dict(tree) if isinstance(tree, dict) else list(tree)
    if action == "delete":
        del copy[key]
    elif action == "add" and isinstance(copy, dict):
        copy[data.draw(st.text(max_size=6), label="new key")] = data.draw(HOSTILE_VALUE, label="new value")
    else:
        copy[key] = mutate(data, tree[key], depth + 1)
    return copy


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])


@FAST
@given(data=st.data())
def test_mutated_headers_load_or_raise_checkpoint_error(tmp_path, valid_file, data):
    header, payload = header_and_data(valid_file)
    path = tmp_path / "mutated.ckpt"
    write_sealed(path, mutate(data, header), payload)
    try:
        load_checkpoint(path)
    except CheckpointError as error:
        assert str(path) in str(error)


@FAST
@given(data=st.data())
def test_mutated_state_json_loads_or_raises_checkpoint_error(tmp_path, valid_file, data):
    header, payload = header_and_data(valid_file)
    header["__metadata__"]["state"] = json.dumps(mutate(data, json.loads(header["__metadata__"]["state"])))
    path = tmp_path / "mutated.ckpt"
    write_sealed(path, header, payload)
    for load in (load_checkpoint, lambda p: load_model_checkpoint(p, lenet5())):
        try:
            load(path)
        except CheckpointError as error:
            assert str(path) in str(error)


def mutate_state(data, state):
    """A training state with one value anywhere (arrays included) replaced by hostile JSON or a stray array."""
    replacement = st.one_of(HOSTILE_VALUE, st.builds(np.zeros, st.lists(st.integers(0, 3), max_size=3)))

    def walk(tree, depth):
        containers = isinstance(tree, (dict, list, tuple)) and len(tree) > 0
        if not containers or data.draw(st.integers(0, 3), label=f"stop at {depth}") == 0:
            return data.draw(replacement, label="replacement")
        keys = list(tree) if isinstance(tree, dict) else list(range(len(tree)))
        key = data.draw(st.sampled_from(keys), label="key")
        copy = dict(tree) if isinstance(tree, dict) else list(tree)
        if isinstance(copy, dict) and data.draw(st.booleans(), label="delete"):
            del copy[key]
        else:
            copy[key] = walk(tree[key], depth + 1)
        return copy

    return walk(state, 0)


@FAST
@given(data=st.data())
def test_wrong_types_anywhere_in_a_training_state_end_in_checkpoint_error(tmp_path, data):
    """Well-formed files of ill-formed state: resuming, loading weights and the CLI's loader refuse them by name."""
    cs.manual_seed(0)
    path = tmp_path / "state.ckpt"
    save_checkpoint(path, mutate_state(data, training_state()))
    model = lenet5()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer = Trainer(model, optimizer, scheduler=optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=3),
                      progress=False)
    before = {name: value.numpy().copy() for name, value in model.state_dict().items()}
    try:
        trainer.load(path)
    except CheckpointError as error:
        assert str(path) in str(error)
        for name, value in model.state_dict().items():  # refused: nothing changed
            np.testing.assert_array_equal(value.numpy(), before[name])
    for load in (lambda p: load_model_checkpoint(p, lenet5()), lambda p: load_run(p, NEEDS)):
        try:
            load(path)
        except CheckpointError as error:
            assert str(path) in str(error)


def test_a_resumed_state_of_another_optimizer_is_refused_naming_the_hyperparameters(tmp_path):
    path = tmp_path / "sgd.ckpt"
    save_checkpoint(path, training_state())
    model = lenet5()
    trainer = Trainer(model, optim.Adam(model.parameters()), progress=False)
    message = assert_refused_naming(path, trainer.load)
    assert "missing" in message and "eps" in message and "betas" in message


def test_wrong_kinds_in_the_run_configuration_are_named(tmp_path):
    cases = {
        "normalize.mean": {"normalize": {"mean": "0.5", "std": [0.3]}},
        "normalize.std": {"normalize": {"mean": [0.5], "std": [0.0]}},
        "classes": {"classes": ["a", "b"]},  # fewer names than the 10 classes
        "model_options.input_size": {"model_options": {"num_classes": 10, "in_channels": 1, "input_size": "28"}},
        "model": {"model": ["lenet5"]},
    }
    for field, change in cases.items():
        state = training_state()
        state["config"] = {**CONFIG, **change}
        path = tmp_path / "config.ckpt"
        save_checkpoint(path, state)
        assert field in assert_refused_naming(path, lambda p: load_run(p, NEEDS))


def test_a_stored_size_beyond_memory_is_refused_before_building(tmp_path):
    state = training_state()
    state["config"] = {**CONFIG, "model_options": {"num_classes": 10, "in_channels": 1, "input_size": 10**7}}
    path = tmp_path / "huge.ckpt"
    save_checkpoint(path, state)
    with pytest.raises(MemoryError, match="huge.ckpt: one input image of the stored size would need"):
        load_run(path)


def test_scheduler_and_optimizer_states_round_trip_through_their_checks(tmp_path):
    """The structure checks refuse nothing a scheduler or optimizer of the same kind wrote (after steps)."""
    lr_scheduler = optim.lr_scheduler
    makers = {
        "StepLR": lambda o: lr_scheduler.StepLR(o, 2),
        "MultiStepLR": lambda o: lr_scheduler.MultiStepLR(o, [1, 3]),
        "ExponentialLR": lambda o: lr_scheduler.ExponentialLR(o, 0.9),
        "CosineAnnealingLR": lambda o: lr_scheduler.CosineAnnealingLR(o, 5),
        "OneCycleLR": lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=10),
        "ReduceLROnPlateau": lambda o: lr_scheduler.ReduceLROnPlateau(o),
        "SequentialLR": lambda o: lr_scheduler.SequentialLR(
            o, [lr_scheduler.LinearLR(o), lr_scheduler.CosineAnnealingLR(o, 5)], [2]),
    }
    optimizers = {
        "SGD": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
        "Adam": lambda p: optim.Adam(p, amsgrad=True),
        "AdamW": lambda p: optim.AdamW(p),
        "Adagrad": lambda p: optim.Adagrad(p),
        "RMSprop": lambda p: optim.RMSprop(p, momentum=0.5, centered=True),  # OneCycleLR cycles its momentum
    }
    for (sname, make_scheduler), (oname, make_optimizer) in zip(makers.items(), list(optimizers.items()) * 2):
        def build(make_optimizer=make_optimizer, make_scheduler=make_scheduler):
            weight = nn.Parameter(cs.tensor([1.0, -2.0, 3.0]))
            opt = make_optimizer([weight])
            return weight, opt, make_scheduler(opt)

        weight, opt, scheduler = build()
        for _ in range(4):
            (weight * weight).sum().backward()
            opt.step()
            scheduler.step(1.0) if sname == "ReduceLROnPlateau" else scheduler.step()
        save_checkpoint(tmp_path / "s.ckpt", {"s": scheduler.state_dict(), "o": opt.state_dict()})
        state = load_checkpoint(tmp_path / "s.ckpt")
        _, opt2, scheduler2 = build()
        scheduler2.load_state_dict(state["s"])
        opt2.load_state_dict(state["o"])
        assert scheduler2.state_dict() == scheduler.state_dict(), (sname, oname)
