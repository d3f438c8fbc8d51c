"""File IPC v1 (legacy), client side, used only when ``IMSG_BRIDGE_LEGACY_IPC`` is ``1`` or
``true`` (helpers older than the v2 inbox).

The command ``{"id":<ms>,"action":…,"params":{…}}`` is written to ``.imsg-command.json``; the
helper (which polls that file's mtime every 100 ms) empties it and writes
``.imsg-response.json``. The client polls every 50 ms until the response holds more than 2
bytes **and** the command file holds at most 2, then reads the response and empties it.

Outcomes (the Swift tool's): a failure before the command was written raises
``Unpublished``; the deadline or a cancellation raises ``Unanswered("still_in_flight")``
(the helper reads the command whenever it likes: nothing can withdraw it), settled once the
helper emptied the command and answered; an invalid response raises ``Malformed``. Neither
file may be a symbolic link.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

from imsg.bridge.container import Container, UnsafePath, safe_dir
from imsg.bridge.envelope import (
    MAX_RESPONSE_BYTES,
    Malformed,
    Response,
    legacy_bytes,
    parse_response,
)
from imsg.bridge.outcome import Unanswered, Unpublished

POLL_S = 0.05
_EMPTY_AT_MOST = 2
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_ids_lock = threading.Lock()
_last_id = 0


def enabled() -> bool:
    return os.environ.get("IMSG_BRIDGE_LEGACY_IPC", "").strip().lower() in ("1", "true")


def next_id() -> int:
    """Milliseconds since the epoch, strictly increasing within this process."""
    global _last_id
    with _ids_lock:
        _last_id = max(int(time.time() * 1000), _last_id + 1)
        return _last_id


def exchange(container: Container, action: str, params: dict[str, object], *,
             timeout_s: float, poll_s: float = POLL_S,
             cancel: threading.Event | None = None) -> Response:
    """One v1 command and its response (module docstring)."""
    try:
        safe_dir(container.root, create=False)
    except UnsafePath as exc:
        raise Unpublished(str(exc)) from None
    command, response = container.legacy_command, container.legacy_response
    rid = next_id()
    try:
        _write(command, legacy_bytes(rid, action, params))
    except OSError as exc:
        raise Unpublished(f"the command could not be written to {command} "
                          f"({exc.strerror or exc})") from None
    deadline = time.monotonic() + timeout_s
    while True:
        if _size(response) > _EMPTY_AT_MOST and _size(command) <= _EMPTY_AT_MOST:
            raw = _read(response)
            _clear(response)
            return parse_response(raw, rid, version=None)
        cancelled = cancel is not None and cancel.is_set()
        if cancelled or time.monotonic() >= deadline:
            why = "the request was cancelled" if cancelled else f"no response within {timeout_s:g}s"
            raise Unanswered("still_in_flight", f"{why}: the legacy helper did not answer",
                             lambda: _settled(command, response), cancelled=cancelled)
        if cancel is not None:
            cancel.wait(poll_s)
        else:
            time.sleep(poll_s)


def _settled(command: Path, response: Path) -> bool:
    if _size(command) <= _EMPTY_AT_MOST and _size(response) > _EMPTY_AT_MOST:
        _clear(response)
        return True
    return False


def _write(path: Path, body: bytes) -> None:
    fd = os.open(path, _WRITE_FLAGS, 0o600)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        view = memoryview(body)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _size(path: Path) -> int:
    try:
        info = os.lstat(path)
    except OSError:
        return 0
    return info.st_size if stat.S_ISREG(info.st_mode) else 0


def _read(path: Path) -> bytes:
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        raise Malformed(f"the response file could not be read ({exc.strerror or exc})") from None
    try:
        return os.read(fd, MAX_RESPONSE_BYTES + 1)
    finally:
        os.close(fd)


def _clear(path: Path) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
    except OSError:
        return
    os.close(fd)
