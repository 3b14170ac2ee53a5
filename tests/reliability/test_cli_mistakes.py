"""A user's mistake on the command line: one line on stderr, exit code 2, no traceback (issue 7, item 5).
More cases: tests/cli/test_cli.py::test_user_mistakes_give_one_line_and_exit_code_2."""

import pytest

from convstack import models
from convstack.cli import main
from convstack.io import load_checkpoint, save_checkpoint


@pytest.fixture
def checkpoint(tmp_path):
    """A small training checkpoint as `convstack train` writes it (config + model)."""
    path = tmp_path / "run.ckpt"
    config = {"model": "lenet5", "model_options": {"num_classes": 10, "in_channels": 1, "input_size": 28},
              "classes": [str(i) for i in range(10)], "normalize": {"mean": [0.5], "std": [0.25]}}
    state = {"model": dict(models.get_model("lenet5").state_dict()), "config": config, "epoch": 1}
    save_checkpoint(path, state)
    return path


def one_line_error(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--batch-size", "abc"], "--batch-size: expected a positive integer, received 'abc'"),
        (["train", "--batch-size", "0"], "--batch-size: expected a positive integer, received '0'"),
        (["train", "--limit-train", "-3"], "--limit-train: expected a positive integer, received '-3'"),
        (["train", "--seed", "-1"], "--seed: expected a non-negative integer, received '-1'"),
        (["train", "--seed", "1.5"], "--seed: expected a non-negative integer, received '1.5'"),
        (["train", "--lr", "nan"], "--lr: expected a positive number, received 'nan'"),
        (["train", "--lr", "inf"], "--lr: expected a positive number, received 'inf'"),
        (["train", "--momentum", "1.5"], "--momentum: expected a number in [0, 1), received '1.5'"),
        (["train", "--weight-decay", "-0.1"], "--weight-decay: expected a non-negative number, received '-0.1'"),
        (["train", "--optimizer", "lbfgs"], "--optimizer: invalid choice: 'lbfgs'"),
        (["train", "--scheduler", "warm"], "--scheduler: invalid choice: 'warm'"),
        (["train", "--epochz", "3"], "unrecognized arguments: --epochz 3"),
        (["train", "--epochs"], "--epochs: expected one argument"),
        (["bogus"], "invalid choice: 'bogus'"),
        (["summary", "lenet5", "--input-size", "1x0x28"], "expected a shape like 1x28x28"),
        (["lr-find", "--steps", "x"], "--steps: expected a positive integer, received 'x'"),
    ],
)
def test_bad_arguments(argv, message, capsys):
    assert message in one_line_error(argv, capsys)


def test_resume_without_a_checkpoint(tmp_path, capsys):
    err = one_line_error(["train", "--resume", "--out", str(tmp_path / "nothing")], capsys)
    assert "--resume needs" in err and "last.ckpt, which does not exist" in err


def test_predict_with_a_missing_or_undecodable_image(checkpoint, tmp_path, capsys):
    err = one_line_error(["predict", str(checkpoint), str(tmp_path / "missing.png")], capsys)
    assert "missing.png" in err
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    assert "notes.png: cannot decode image" in one_line_error(["predict", str(checkpoint), str(text)], capsys)


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_evaluate_and_predict_refuse_a_damaged_checkpoint(checkpoint, tmp_path, damage, capsys):
    blob = bytearray(checkpoint.read_bytes())
    if damage == "truncate":
        blob = blob[: len(blob) - 100]
    elif damage == "flip":
        blob[-5] ^= 0xFF
    else:
        blob = bytearray(b"PK\x03\x04 not a checkpoint at all")
    checkpoint.write_bytes(bytes(blob))
    for argv in (["evaluate", str(checkpoint)], ["predict", str(checkpoint), str(tmp_path / "x.png")],
                 ["summary", str(checkpoint)]):
        err = one_line_error(argv, capsys)
        assert str(checkpoint) in err, err


def test_a_checkpoint_is_not_code(tmp_path, capsys):
    """A pickle that would run code when unpickled is refused as a corrupted checkpoint; nothing runs."""
    import pickle

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps(Payload()))
    err = one_line_error(["evaluate", str(path)], capsys)
    assert "evil.ckpt" in err and not marker.exists()


def test_evaluate_a_checkpoint_whose_weights_do_not_fit_its_config(checkpoint, capsys):
    state = load_checkpoint(checkpoint)
    state["config"]["model_options"]["num_classes"] = 5
    save_checkpoint(checkpoint, state)
    err = one_line_error(["evaluate", str(checkpoint)], capsys)
    assert "size mismatch for classifier.5.weight" in err
