"""Atomic file writes: a temporary file beside the target, flushed, fsync'ed, renamed over it.

Every file convstack writes (checkpoints, exported models, images, histories, reports) goes
through ``atomic_write``, so that a crash, a kill or a full disk leaves either the old file
or the new one, never half of one, and so that an OS error always names the file.

A temporary file is named ``.<target name>.<host>-<pid>-<token>.tmp``. A writer killed
before its rename (SIGKILL, power loss) leaves it behind; the next write to the same
target, and ``remove_stale_temporaries(folder)`` (which ``Trainer.fit(resume=True)``
calls), delete the temporaries of that host whose process no longer exists. Temporaries
of a live process, or of another host sharing the folder, are left alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
from pathlib import Path

_SUFFIX = ".tmp"
_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:40] or "host"
_TEMPORARY = re.compile(r"^\.(?P<target>.+)\.(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")


def temporary_name(target: str) -> str:
    """The name of a fresh temporary file for ``target`` (a file name, not a path)."""
    return f".{target}.{_HOST}-{os.getpid()}-{secrets.token_hex(4)}{_SUFFIX}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a live process of another user
        return True
    except OSError:
        return True
    return True


def remove_stale_temporaries(folder, target: str | None = None) -> list:
    """Delete the temporaries that dead writers of this host left in ``folder`` (for ``target`` only, if given).

    Returns the paths removed. A folder that cannot be listed is left alone.
    """
    folder = Path(folder)
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match is None or match["host"] != _HOST or (target is not None and match["target"] != target):
            continue
        if _alive(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def named_os_error(error: OSError, path, temporary=None) -> OSError:
    """``error`` naming ``path``: a full disk (ENOSPC) names no file, a failed temporary names the temporary."""
    if error.filename is not None and os.fspath(error.filename) != os.fspath(temporary or ""):
        return error
    if error.errno is None:
        return type(error)(f"{os.fspath(path)}: {error}")
    return type(error)(error.errno, error.strerror, os.fspath(path))


def atomic_write(path, write) -> Path:
    """Write ``path`` atomically: ``write(stream)`` fills a temporary binary file, renamed over ``path`` once complete.

    ``write`` is a callable taking the open binary stream, or ``bytes`` (or a list of byte
    chunks) to write as they are. The folder is created if missing. On any error the
    temporary file is removed and the previous ``path`` (if any) is untouched; an
    ``OSError`` names ``path``.

    Returns ``path`` as a ``Path``.
    """
    path = Path(path)
    if isinstance(write, (bytes, bytearray, memoryview, list, tuple)):
        chunks = [write] if not isinstance(write, (list, tuple)) else write

        def write(stream, chunks=chunks):
            for chunk in chunks:
                stream.write(chunk)

    temporary = path.parent / temporary_name(path.name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path.parent, path.name)
        with open(temporary, "xb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise named_os_error(error, path, temporary) from error
        raise
    _sync_folder(path.parent)
    return path


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform allows opening a folder)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def write_text(path, text: str, encoding: str = "utf-8") -> Path:
    """``atomic_write`` of ``text``, encoded."""
    return atomic_write(path, text.encode(encoding))
