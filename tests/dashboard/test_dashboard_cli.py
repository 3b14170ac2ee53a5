"""`convstack train --live/--tensorboard` and `convstack dashboard` end to end on tiny data."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from tests.dashboard.conftest import recorded_trainer
from tests.helpers import write_band_dataset

from convstack.cli import build_parser, main, watch_options

SOURCE = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(scope="module")
def tiny_fashion(tmp_path_factory):
    """Fashion-MNIST-shaped files: 256 training and 64 test images whose class is a band's row."""
    return write_band_dataset(tmp_path_factory.mktemp("data"), (256, 64))


def train_args(data_root, out, *extra):
    return ["train", "--data-root", str(data_root), "--epochs", "2", "--batch-size", "32", "--out", str(out),
            "--no-progress", *extra]  # fmt: skip


def test_train_live_prints_the_url_records_and_stops_serving(tiny_fashion, tmp_path, capsys):
    out, board = tmp_path / "run", tmp_path / "tb"
    assert main(train_args(tiny_fashion, out, "--live", "--port", "0", "--tensorboard", str(board))) == 0
    err = capsys.readouterr().err
    url = re.search(r"live page: (http://127\.0\.0\.1:(\d+)/)", err)
    assert url, err
    assert f"TensorBoard: tensorboard --logdir {board}" in err
    events = [json.loads(line) for line in (out / "live" / "events.jsonl").read_text().splitlines()]
    assert events[0]["type"] == "start" and events[-1]["type"] == "end"
    assert events[0]["classes"][0] == "T-shirt/top" and events[0]["summary"] == "live/summary.txt"
    history = json.loads((out / "history.json").read_text())
    assert [e["val_acc"] for e in events if e["type"] == "epoch"] == [row["val_acc"] for row in history]
    assert len([e for e in events if e["type"] == "step"]) == 2 * 8  # 256 images in batches of 32
    assert list(board.glob("events.out.tfevents.*"))
    with pytest.raises(OSError):  # the page's server ended with the command
        socket.create_connection(("127.0.0.1", int(url.group(2))), timeout=2)


def test_without_live_or_tensorboard_nothing_is_added(tmp_path):
    parser = build_parser()
    args = parser.parse_args(["train"])
    watchers = watch_options.Watchers(args, tmp_path, test_set=[], images=None, class_names=[])
    assert watchers.callbacks == [] and watchers.server is None
    watchers.close()


def test_server_options_need_live(capsys):
    assert main(["train", "--port", "8000"]) == 2
    assert "--port and --host set the address of the live page: add --live" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_code:
        main(["train", "--live", "--port", "70000"])
    assert exit_code.value.code == 2
    assert "--port: expected a port number 0-65535, received '70000'" in capsys.readouterr().err


def test_a_port_in_use_is_named_and_the_default_falls_back(tmp_path, monkeypatch, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=f"--host 127.0.0.1 --port {port}: cannot listen there"):
            watch_options.open_server([tmp_path], None, port, "test")
        monkeypatch.setattr(watch_options, "DEFAULT_PORT", port)
        server = watch_options.open_server([tmp_path], None, None, "test")  # the default port is taken
        assert server.server_address[1] not in (0, port)
        server.close()


def test_another_address_warns_on_stderr(tmp_path, capsys):
    watch_options.open_server([tmp_path], "0.0.0.0", 0, "convstack dashboard").close()
    err = capsys.readouterr().err
    assert err.startswith("convstack dashboard: warning: the dashboard listens on 0.0.0.0, not on 127.0.0.1")


def test_dashboard_needs_existing_folders(tmp_path, capsys):
    assert main(["dashboard", str(tmp_path / "missing")]) == 2
    assert f"RUN_DIR {tmp_path / 'missing'}: no such folder" in capsys.readouterr().err


def test_dashboard_serves_several_runs_until_ctrl_c(tmp_path):
    for name in ("a", "b"):
        recorded_trainer(tmp_path / name, epochs=1)
    environment = dict(os.environ, PYTHONPATH=SOURCE)
    command = [sys.executable, "-m", "convstack", "dashboard", str(tmp_path / "a"), str(tmp_path / "b"), "--port", "0"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=environment)
    try:
        line = process.stderr.readline()
        url = re.search(r"dashboard of 2 run\(s\): (http://127\.0\.0\.1:\d+/)", line)
        assert url, line
        for index, name in enumerate("ab"):
            with urllib.request.urlopen(f"{url.group(1)}runs/{index}/history.json", timeout=10) as answer:
                assert json.load(answer) == json.loads((tmp_path / name / "history.json").read_text())
    finally:
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=20)
    assert process.returncode == 0 and "stopped" in rest and "Traceback" not in rest
