"""The dashboard's server: the page, the files of the run folders and nothing else, and the event stream."""

import json
import re
import shutil
import socket
import struct
import threading
import time
import warnings

import pytest

from convstack.dashboard import DashboardExposedWarning, DashboardServer


@pytest.fixture
def run_folder(recorded_run):
    """The recorded run, next to a file that must never be served."""
    out, _ = recorded_run
    (out.parent / "secret.json").write_text('{"secret": "outside the run folder"}')
    return out


@pytest.fixture
def server(run_folder):
    with DashboardServer([run_folder], port=0, poll_interval=0.05) as server:
        yield server


def request(server, path, method="GET", host=None, read=True):
    """Send one raw HTTP request (the path exactly as given) and return (status, headers, body)."""
    port = server.server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        host_line = f"Host: {host or f'127.0.0.1:{port}'}\r\n" if host != "" else ""
        connection.sendall(f"{method} {path} HTTP/1.1\r\n{host_line}Connection: close\r\n\r\n".encode())
        answer = b""
        while read and (chunk := connection.recv(1 << 16)):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def test_the_page_and_its_assets(server):
    status, headers, body = request(server, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"] and headers["X-Content-Type-Options"] == "nosniff"
    page = body.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sorted(assets) == ["/static/charts.js", "/static/dashboard.css", "/static/dashboard.js"]
    for asset in assets:
        status, headers, content = request(server, asset)
        assert status == 200 and len(content) == int(headers["Content-Length"]) > 500
        assert "://" not in content.decode()  # nothing fetched from elsewhere: it works offline
    assert "://" not in page
    assert request(server, "/static/../server.py")[0] == 404
    assert request(server, "/static/nothing.js")[0] == 404


def test_run_files_are_served_read_only(server, run_folder):
    status, headers, body = request(server, "/runs/0/history.json")
    assert status == 200 and json.loads(body) == json.loads((run_folder / "history.json").read_text())
    assert headers["Cache-Control"] == "no-store"
    status, headers, body = request(server, "/runs/0/live/epoch-001/filters.png?t=123")
    assert status == 200 and headers["Content-Type"] == "image/png" and body[:4] == b"\x89PNG"
    status, headers, _ = request(server, "/runs/0/report.html")
    if status == 200:  # the Trainer alone writes no report; serve one if there
        assert "script" not in headers["Content-Security-Policy"]
    status, headers, body = request(server, "/runs/0/history.json", method="HEAD")
    assert status == 200 and int(headers["Content-Length"]) > 0 and body == b""
    before = sorted(p.name for p in run_folder.rglob("*"))
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert request(server, "/runs/0/history.json", method=method)[0] == 501
    assert sorted(p.name for p in run_folder.rglob("*")) == before


@pytest.mark.parametrize(
    "path",
    [
        "/runs/0/../secret.json",
        "/runs/0/%2e%2e/secret.json",
        "/runs/0/%2E%2E%2Fsecret.json",
        "/runs/0/%252e%252e%252fsecret.json",
        "/runs/0/..%5csecret.json",
        "/runs/0/%2fetc%2fpasswd",
        "/runs/0//etc/passwd",
        "/runs/0/last.ckpt",
        "/runs/1/history.json",
        "/runs/-1/history.json",
        "/runs/00000000/history.json",
        "/runs/../runs/0/../../secret.json",
        "/../../etc/passwd",
        "/runs/0/live/%00.png",
    ],
)
def test_traversal_is_refused(server, path):
    status, _, body = request(server, path)
    assert status == 404 and b"secret" not in body and b"root:" not in body


def test_a_foreign_host_name_is_refused(server):
    port = server.server_address[1]
    assert request(server, "/", host=f"attacker.example:{port}")[0] == 403  # DNS rebinding
    assert request(server, "/runs/0/history.json", host="attacker.example")[0] == 403
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", ""):
        assert request(server, "/", host=host)[0] == 200


class _Bound:
    """Stands for a server bound to ``host`` (its ``url`` reads only ``server_address``)."""

    def __init__(self, host):
        self.server_address = (host, 8765)


def test_an_address_beyond_this_machine_warns():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        DashboardServer(["."], host="0.0.0.0", port=0).server_close()
    assert [w.category for w in caught] == [DashboardExposedWarning]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", DashboardServer.url.fget(_Bound("0.0.0.0")))
    assert re.fullmatch(r"http://\[::1\]:\d+/", DashboardServer.url.fget(_Bound("::")))
    assert "anyone who can reach" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DashboardServer(["."], port=0).server_close()  # 127.0.0.1: silent


@pytest.mark.parametrize(
    "options, message",
    [
        ({"port": 70000}, "`port`: expected 0-65535"),
        ({"poll_interval": 0}, "`poll_interval`"),
        ({"runs": []}, "`runs`"),
    ],
)
def test_bad_arguments_are_named(options, message):
    arguments = {"runs": ["."], "port": 0, **options}
    with pytest.raises(ValueError, match=message):
        DashboardServer(**arguments)


def open_stream(server):
    connection = socket.create_connection(server.server_address[:2], timeout=10)
    connection.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return connection


def read_events_until(connection, predicate, limit=15.0):
    """The server-sent events [(name, data)] read until ``predicate(events)`` holds."""
    buffer, events, deadline = b"", [], time.monotonic() + limit
    while time.monotonic() < deadline and not predicate(events):
        chunk = connection.recv(1 << 16)
        if not chunk:
            break
        buffer += chunk
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            fields = dict(line.split(": ", 1) for line in block.decode().split("\n") if ": " in line)
            if "event" in fields:
                events.append((fields["event"], json.loads(fields["data"])))
    return events


def records(events):
    return [record for name, data in events if name == "records" for record in data]


def test_the_stream_replays_then_follows_the_folder(run_folder, tmp_path):
    run_folder = shutil.copytree(run_folder, tmp_path / run_folder.name)  # this test adds to it
    with DashboardServer([run_folder], port=0, poll_interval=0.05) as server, open_stream(server) as connection:
        events = read_events_until(connection, lambda e: any(r["type"] == "end" for r in records(e)))
        assert events[0] == ("hello", {"runs": [{"index": 0, "name": run_folder.name}]})
        kinds = [r["type"] for r in records(events)]
        assert kinds.count("step") == 18 and kinds.count("epoch") == 3 and kinds[0] == "config"
        assert all(r["run"] == 0 for r in records(events))
        with open(run_folder / "live" / "events.jsonl", "a") as stream:  # training goes on
            stream.write('{"type": "step", "epoch": 4, "batch": 1, "loss": 0.25}\n')
        more = read_events_until(connection, lambda e: bool(records(e)))
        assert records(more) == [{"type": "step", "epoch": 4, "batch": 1, "loss": 0.25, "run": 0}]


def test_clients_that_go_away_mid_stream_harm_nothing(server, capfd):
    for index in range(12):
        connection = open_stream(server)
        connection.recv(100)  # part of the stream, then gone
        if index % 2:  # half of them reset the connection instead of closing it
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()
    half_request = socket.create_connection(server.server_address[:2], timeout=10)
    half_request.sendall(b"GET /eve")  # and one that never finishes its request
    half_request.close()
    assert request(server, "/")[0] == 200
    deadline = time.monotonic() + 10
    while server.open_streams and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.open_streams == 0
    assert "Traceback" not in capfd.readouterr().err


def test_too_many_pages_get_503(run_folder):
    with DashboardServer([run_folder], port=0, max_streams=1) as server:
        first = open_stream(server)
        read_events_until(first, lambda e: bool(e))
        assert request(server, "/events")[0] == 503
        first.close()


def test_closing_ends_every_stream_with_bye_then_answers_the_last_requests(run_folder):
    server = DashboardServer([run_folder], port=0, poll_interval=0.05).start()
    connection = open_stream(server)
    read_events_until(connection, lambda e: bool(records(e)))
    started = time.monotonic()
    closing = threading.Thread(target=server.close)
    closing.start()
    events = read_events_until(connection, lambda e: any(name == "bye" for name, _ in e))
    assert events[-1] == ("bye", {})
    connection.close()
    # the page asks for the last pictures after the bye: still answered
    assert request(server, "/runs/0/live/epoch-003/filters.png")[0] == 200
    closing.join()
    assert time.monotonic() - started < 2.5
    with pytest.raises(OSError):
        socket.create_connection(server.server_address[:2], timeout=2)
