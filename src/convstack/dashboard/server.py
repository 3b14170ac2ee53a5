"""``DashboardServer``: a local, read-only HTTP server for the live page and its run folders.

Routes (GET and HEAD only; any other method is refused):

    /                      the page (``static/index.html``)
    /static/NAME           the page's script and style sheet, from inside the package
    /events                server-sent events: every record of every run, then new ones
                           as the folders grow (``convstack.dashboard.runs.RunReader``)
    /runs/I/PATH           a file of run I (only PNG, JSON, JSON lines, CSV, text, HTML;
                           never outside the folder: see ``RunFolder.resolve``)

Safe by default: it binds 127.0.0.1 (another address warns: anyone who reaches it reads
the runs), answers loopback requests only for a loopback ``Host`` (no DNS rebinding),
sends a strict Content-Security-Policy, writes nothing, and each stream is one daemon
thread that ends quietly when its client goes away.
"""

from __future__ import annotations

import ipaddress
import math
import os
import select
import shutil
import socket
import sys
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import urlsplit

from convstack.dashboard.recorder import json_line
from convstack.dashboard.runs import MEDIA_TYPES, RunFolder, RunReader

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
_STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css"}
_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# report.html inlines its style sheet and its pictures (data: URIs) and has no script.
_REPORT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
_DISCONNECTED = (ConnectionError, TimeoutError)  # BrokenPipeError and ConnectionResetError are ConnectionErrors
QUIET = 0.4  # seconds without a request after which a closing server stops


class DashboardExposedWarning(UserWarning):
    """The dashboard listens on an address other machines may reach."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) means this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _static_assets() -> dict:
    """{name: (bytes, media type)} of every file in the package's ``static`` folder, read once."""
    folder = resources.files("convstack.dashboard").joinpath("static")
    assets = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _STATIC_TYPES:
            assets[entry.name] = (entry.read_bytes(), _STATIC_TYPES[suffix])
    return assets


class DashboardServer(ThreadingHTTPServer):
    """Serve the live page over ``runs`` at ``http://host:port/``, from a daemon thread.

    Args:
        runs: run folders (paths or ``RunFolder``), shown overlaid on one page.
        host: the address to listen on (default 127.0.0.1; others warn).
        port: the port (0: any free port; ``url`` tells which).
        poll_interval: seconds between two looks at the folders, per open page.
        keepalive: seconds of silence after which a stream sends a comment line.
        max_streams: open pages served at once; more get 503.

    Examples:
        >>> with DashboardServer(["runs/a"], port=0) as server:   # doctest: +SKIP
        ...     print(server.url)                                  # the page, while training runs
        ...     trainer.fit(train_loader, val_loader, epochs=10)
    """

    daemon_threads = True
    allow_reuse_address = True  # SO_REUSEADDR: rebind at once after a restart (a port in use still fails)

    def __init__(
        self,
        runs,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        poll_interval: float = 0.25,
        keepalive: float = 15.0,
        max_streams: int = 16,
    ):
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"DashboardServer: invalid value for argument `port`: expected 0-65535, received {port!r}")
        if not poll_interval > 0:
            raise ValueError(
                f"DashboardServer: invalid value for argument `poll_interval`: expected a positive number, "
                f"received {poll_interval!r}"
            )
        self.runs = [run if isinstance(run, RunFolder) else RunFolder(run) for run in runs]
        if not self.runs:
            raise ValueError("DashboardServer: invalid value for argument `runs`: expected at least one run folder")
        self.poll_interval, self.keepalive, self.max_streams = poll_interval, keepalive, max_streams
        self.assets = _static_assets()
        self.stopping = threading.Event()
        self._streams = self._requests = 0
        self._last_request = -math.inf
        self._lock = threading.Lock()
        self._thread = None
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host.strip("[]"), port), DashboardHandler)
        self.loopback = is_loopback(host)
        if not self.loopback:
            warnings.warn(
                f"the dashboard listens on {host}, not on 127.0.0.1: anyone who can reach {self.url} "
                "can read these runs' metrics, pictures and configuration",
                DashboardExposedWarning,
                stacklevel=2,
            )

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)  # "any address": this machine
        return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"

    def start(self) -> DashboardServer:
        """Serve from a daemon thread (training goes on in the caller's); returns self."""
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.2}, name="convstack-dashboard", daemon=True
        )
        self._thread.start()
        return self

    def close(self, drain: float = 2.0) -> None:
        """Stop: open pages get what is left in the folders and an end event, then the server
        answers what they ask for next (the last pictures) until it has been asked nothing for
        ``QUIET`` seconds, ``drain`` seconds at most; then it stops listening."""
        self.stopping.set()
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline and (
            self._streams or self._requests or time.monotonic() - self._last_request < QUIET
        ):
            time.sleep(0.02)
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.close()

    @property
    def open_streams(self) -> int:
        return self._streams

    def _enter_stream(self) -> bool:
        with self._lock:
            if self._streams >= self.max_streams:
                return False
            self._streams += 1
            return True

    def _leave_stream(self) -> None:
        with self._lock:
            self._streams -= 1

    def _count_request(self, change: int) -> None:
        with self._lock:
            self._requests += change
            self._last_request = time.monotonic()

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], _DISCONNECTED):
            return  # a client that went away is no error of ours
        super().handle_error(request, client_address)


class DashboardHandler(BaseHTTPRequestHandler):
    server_version = "convstack-dashboard"
    sys_version = ""
    timeout = 30  # seconds a socket may block: a client that stops reading is dropped

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format, *args):
        pass  # training's console is not a web server's access log

    def do_GET(self):
        self._counted(body=True)

    def do_HEAD(self):
        self._counted(body=False)

    def _counted(self, body: bool) -> None:
        self.server._count_request(+1)
        try:
            self._answer(body)
        finally:
            self.server._count_request(-1)

    # --------------------------------------------------------------- routing
    def _answer(self, body: bool) -> None:
        if not self._host_allowed():
            self._error(403, "unexpected Host header")
            return
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            self._asset("index.html", body)
        elif path == "/favicon.ico":
            self._headers(204, "image/x-icon", 0)  # no icon, and no error in the browser's console
        elif path.startswith("/static/"):
            self._asset(path[len("/static/") :], body)
        elif path == "/events" and body:
            self._events()
        elif path == "/events":
            self._headers(200, "text/event-stream; charset=utf-8", None)
        elif path.startswith("/runs/"):
            self._run_file(path[len("/runs/") :], body)
        else:
            self._error(404, "not found")

    def _host_allowed(self) -> bool:
        """On a loopback address, only requests naming a loopback host: a web page whose own
        name was pointed at 127.0.0.1 (DNS rebinding) sends its own name and is refused."""
        host = self.headers.get("Host")
        if not self.server.loopback or host is None:
            return True
        name = host[: host.find("]") + 1] if host.startswith("[") else host.rsplit(":", 1)[0]
        return is_loopback(name.lower())

    def _headers(self, status: int, media_type: str, length: int | None, policy: str = _PAGE_POLICY) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Content-Security-Policy", policy)
        self.end_headers()

    def _error(self, status: int, message: str) -> None:
        content = f"{status} {message}\n".encode()
        self._headers(status, "text/plain; charset=utf-8", len(content))
        if self.command != "HEAD":
            self.wfile.write(content)

    def _asset(self, name: str, body: bool) -> None:
        asset = self.server.assets.get(name)
        if asset is None:
            self._error(404, "not found")
            return
        content, media_type = asset
        self._headers(200, media_type, len(content))
        if body:
            self.wfile.write(content)

    def _run_file(self, rest: str, body: bool) -> None:
        index, _, relative = rest.partition("/")
        runs = self.server.runs
        path = None
        if index.isdigit() and len(index) < 6 and int(index) < len(runs):
            path = runs[int(index)].resolve(relative)
        if path is None:
            self._error(404, "not found")
            return
        try:
            stream = open(path, "rb")
        except OSError:
            self._error(404, "not found")
            return
        with stream:
            length = os.fstat(stream.fileno()).st_size
            suffix = path[path.rfind(".") :].lower()
            policy = _REPORT_POLICY if suffix == ".html" else _PAGE_POLICY
            self._headers(200, MEDIA_TYPES[suffix], length, policy)
            if body:
                shutil.copyfileobj(stream, self.wfile, 1 << 16)

    # ---------------------------------------------------------------- events
    def _client_gone(self) -> bool:
        """Whether the client closed its end: an event stream's client sends nothing after its
        request, so a readable socket means end of file (or a reset), found without waiting
        for the next write to fail."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _send(self, event: str, data) -> None:
        self.wfile.write(f"event: {event}\ndata: {json_line(data)}\n".encode())

    def _events(self) -> None:
        server = self.server
        if not server._enter_stream():
            self._error(503, "too many open pages")
            return
        try:
            self._headers(200, "text/event-stream; charset=utf-8", None)
            readers = [RunReader(run) for run in server.runs]
            self._send("hello", {"runs": [{"index": i, "name": run.name} for i, run in enumerate(server.runs)]})
            quiet_since = time.monotonic()
            while True:
                stopping = server.stopping.is_set()  # read first: the last poll below still sees everything
                records = []
                for index, reader in enumerate(readers):
                    records += [dict(record, run=index) for record in reader.poll()]
                for start in range(0, len(records), 2000):
                    self._send("records", records[start : start + 2000])
                if records:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > server.keepalive:
                    self.wfile.write(b": keep-alive\n\n")  # finds out, by failing, that a client has gone
                    quiet_since = time.monotonic()
                if stopping:
                    self._send("bye", {})
                    return
                if self._client_gone():
                    return
                server.stopping.wait(server.poll_interval)
        except _DISCONNECTED:
            return
        finally:
            server._leave_stream()
