"""The run folders a dashboard serves: safe file look-up, and following a folder as it grows.

A run folder holds what the Trainer writes (``history.json``), what ``convstack train``
adds (``config.json``, ``results.json``, ``report.html``) and, with ``LiveRecorder``,
``live/`` (see ``convstack.dashboard.recorder``). ``RunReader`` turns all of it into one
stream of records for the page: ``live/events.jsonl`` line by line when the folder has
it, otherwise the epochs of ``history.json``, plus the configuration and final results.
"""

from __future__ import annotations

import json
import os
import posixpath
from pathlib import Path
from urllib.parse import unquote

from convstack.dashboard.recorder import EVENTS

# The only kinds of file served from a run folder; checkpoints and anything else are not.
MEDIA_TYPES = {
    ".png": "image/png",
    ".json": "application/json",
    ".jsonl": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}
MAX_READ = 4 << 20  # bytes of events.jsonl read per poll: a long run's backlog goes out in pieces


class RunFolder:
    """One folder served by the dashboard, under ``/runs/<index>/``.

    Args:
        path: the run folder (it may not exist yet: a run about to start).
        name: the name the page shows (default: the folder's name).
    """

    def __init__(self, path, name: str | None = None):
        self.path = Path(path)
        self.root = os.path.realpath(self.path)
        self.name = name or self.path.resolve().name or str(path)

    def resolve(self, encoded: str) -> str | None:
        """The real path of the file that the URL path ``encoded`` (percent-encoded, relative
        to the folder) names, or None when it is not a servable file inside the folder.

        Refused: ``.`` and ``..`` segments, empty segments, back-slashes and NUL bytes, a
        ``%`` left after decoding once (a double-encoded path), file types outside
        ``MEDIA_TYPES``, and anything whose real path (symbolic links followed) lies
        outside the folder's real path.
        """
        try:
            decoded = unquote(encoded, errors="strict")
        except UnicodeDecodeError:
            return None
        if not decoded or "%" in decoded or "\\" in decoded or "\x00" in decoded:
            return None
        parts = decoded.split("/")
        if any(part in ("", ".", "..") for part in parts):
            return None
        if posixpath.splitext(parts[-1])[1].lower() not in MEDIA_TYPES:
            return None
        candidate = os.path.realpath(os.path.join(self.root, *parts))
        if os.path.commonpath([self.root, candidate]) != self.root or not os.path.isfile(candidate):
            return None
        return candidate


class RunReader:
    """Follows one run folder for one client: each ``poll()`` returns the records not yet returned.

    Records are dicts with a ``type``: ``config`` (``config.json``), the lines of
    ``live/events.jsonl`` (``start``, ``step``, ``epoch``, ``end``) or, for a folder
    without them, one ``epoch`` record per row of ``history.json``; ``results``
    (``results.json``) and ``report`` (when ``report.html`` exists).
    """

    def __init__(self, run: RunFolder):
        self.run = run
        self._offset = 0
        self._history_rows = 0
        self._seen: dict[str, int] = {}

    def poll(self) -> list[dict]:
        records = []
        config = self._changed_json("config.json")
        if config is not None:
            records.append({"type": "config", "config": config})
        events = self.run.path / EVENTS
        if events.is_file():
            records += self._read_events(events)
        else:
            history = self._changed_json("history.json")
            if isinstance(history, list):
                rows = [row for row in history if isinstance(row, dict)]
                records += [{"type": "epoch", "source": "history", **row} for row in rows[self._history_rows :]]
                self._history_rows = len(rows)
        results = self._changed_json("results.json")
        if results is not None:
            records.append({"type": "results", "results": results})
        if "report.html" not in self._seen and (self.run.path / "report.html").is_file():
            self._seen["report.html"] = 0
            records.append({"type": "report", "path": "report.html"})
        return records

    def _changed_json(self, name: str):
        """The parsed content of ``name`` when it changed since the last call, else None."""
        path = self.run.path / name
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            return None
        if self._seen.get(name) == stamp:
            return None
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # being written: read again at the next poll
        self._seen[name] = stamp
        return content

    def _read_events(self, path: Path) -> list[dict]:
        try:
            size = path.stat().st_size
            if size < self._offset:  # the file was replaced: start over
                self._offset = 0
            if size == self._offset:
                return []
            with open(path, "rb") as stream:
                stream.seek(self._offset)
                chunk = stream.read(min(size - self._offset, MAX_READ))
        except OSError:
            return []
        end = chunk.rfind(b"\n") + 1  # only whole lines: the writer may be half-way through one
        if end == 0:
            if len(chunk) >= MAX_READ:  # one line longer than MAX_READ: skip it rather than stall
                self._offset += len(chunk)
            return []
        self._offset += end
        records = []
        for line in chunk[:end].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records
