"""Run folders: only files inside them are served, and a reader follows them as they grow."""

import json
import os

import pytest

from convstack.dashboard import RunFolder, RunReader


@pytest.fixture
def folder(tmp_path):
    run = tmp_path / "runs" / "a"
    (run / "live" / "epoch-001").mkdir(parents=True)
    (run / "history.json").write_text("[]")
    (run / "live" / "epoch-001" / "filters.png").write_bytes(b"png")
    (run / "last.ckpt").write_bytes(b"weights")
    (tmp_path / "runs" / "secret.json").write_text('{"secret": 1}')
    (tmp_path / "secret.txt").write_text("secret")
    return run


@pytest.mark.parametrize("path", ["history.json", "live/epoch-001/filters.png", "live%2Fepoch-001%2Ffilters.png"])
def test_files_inside_are_found(folder, path):
    assert RunFolder(folder).resolve(path) == os.path.realpath(folder / path.replace("%2F", "/"))


@pytest.mark.parametrize(
    "path",
    [
        "../secret.json",
        "../../secret.txt",
        "live/../../secret.json",
        "%2e%2e/secret.json",  # percent-encoded dots
        "%2E%2E%2Fsecret.json",  # ... and slash
        "..%2f..%2fsecret.txt",
        "%252e%252e/secret.json",  # double-encoded: decoded once, '%2e%2e' is refused, never decoded again
        "%252e%252e%252fsecret.json",
        "..%5csecret.json",  # back-slash
        "/etc/passwd",  # an absolute path (empty first segment)
        "%2fetc%2fpasswd",
        "live//epoch-001/filters.png",
        "./history.json",
        "history.json%00.png",  # NUL byte
        "%c0%ae%c0%ae/secret.json",  # overlong UTF-8 dots: not valid UTF-8
        "last.ckpt",  # inside, but not a kind of file that is served
        "live",  # a folder
        "missing.json",
        "",
    ],
)
def test_paths_out_of_the_folder_are_refused(folder, path):
    assert RunFolder(folder).resolve(path) is None


def test_symbolic_links_out_of_the_folder_are_refused(folder, tmp_path):
    (folder / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (folder / "live" / "up").symlink_to(tmp_path)
    (folder / "inside.json").symlink_to(folder / "history.json")
    run = RunFolder(folder)
    assert run.resolve("leak.txt") is None
    assert run.resolve("live/up/secret.txt") is None
    assert run.resolve("inside.json") == os.path.realpath(folder / "history.json")  # a link that stays inside


def test_a_run_folder_that_is_a_link_serves_its_target(folder, tmp_path):
    link = tmp_path / "alias"
    link.symlink_to(folder)
    assert RunFolder(link).resolve("history.json") == os.path.realpath(folder / "history.json")
    assert RunFolder(link).resolve("../secret.json") is None


def test_reader_without_live_records_reads_the_history(folder):
    reader = RunReader(RunFolder(folder))
    rows = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4}]
    (folder / "history.json").write_text(json.dumps(rows[:1]))
    (folder / "config.json").write_text('{"model": "lenet5"}')
    first = reader.poll()
    assert first == [
        {"type": "config", "config": {"model": "lenet5"}},
        {"type": "epoch", "source": "history", "epoch": 1, "loss": 0.5},
    ]
    assert reader.poll() == []  # nothing new
    (folder / "history.json").write_text(json.dumps(rows))
    os.utime(folder / "history.json", ns=(1, 1))  # a new modification time, however coarse the clock
    (folder / "results.json").write_text('{"test_accuracy": 0.9}')
    (folder / "report.html").write_text("<html></html>")
    assert reader.poll() == [
        {"type": "epoch", "source": "history", "epoch": 2, "loss": 0.4},
        {"type": "results", "results": {"test_accuracy": 0.9}},
        {"type": "report", "path": "report.html"},
    ]


def test_reader_follows_the_events_file_line_by_line(folder):
    events = folder / "live" / "events.jsonl"
    reader = RunReader(RunFolder(folder))
    events.write_text('{"type": "start"}\n{"type": "step", "batch": 1}\n{"type": "st')  # a line being written
    assert [r["type"] for r in reader.poll()] == ["start", "step"]
    assert reader.poll() == []
    with open(events, "a") as stream:
        stream.write('ep", "batch": 2}\nnot json\n{"type": "epoch", "epoch": 1}\n')
    assert reader.poll() == [{"type": "step", "batch": 2}, {"type": "epoch", "epoch": 1}]  # bad line skipped
    events.write_text('{"type": "start"}\n')  # replaced (shorter): read from the start again
    assert reader.poll() == [{"type": "start"}]


def test_a_half_written_json_file_is_read_at_the_next_poll(folder):
    reader = RunReader(RunFolder(folder))
    (folder / "results.json").write_text('{"test_acc')
    assert all(r["type"] != "results" for r in reader.poll())
    (folder / "results.json").write_text('{"test_accuracy": 1.0}')
    assert {"type": "results", "results": {"test_accuracy": 1.0}} in reader.poll()
