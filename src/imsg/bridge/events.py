"""The helper's event log (``.imsg-events.jsonl``), tailed like the Swift readers tail it.

Each line is ``{"event":"<name>","data":{…},"ts":"<ISO-8601>"}`` (``started-typing`` and
``stopped-typing`` with ``data.chatGuid``, ``aliases-removed`` with IMCore's user info). The
helper renames the file over ``.imsg-events.jsonl.1`` at 1 MiB and starts a new one.

``EventTail`` starts at the current end (no replay: ``resumable`` is false), notices a
rotation by the path's inode changing, reads what is left of the old file through the
descriptor it already has, then the new file from offset 0. Lines are at most
``MAX_LINE_BYTES``; a longer one, a line that is not a JSON object with a string ``event``,
or a partial line still being written is skipped (the last is read once complete). Events are
``{"event", "ts"?, "data"}`` (``ts`` omitted when the line had none, ``data`` ``{}`` when
absent).

``open_tail`` fails with ``EventsUnavailable`` when the file is missing, is not a regular
file (a symlink is refused) or cannot be opened; ``poll`` raises ``EventsReadFailed`` when
reading fails later.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MAX_LINE_BYTES = 1024 * 1024
POLL_S = 0.1
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class EventsUnavailable(Exception):
    """The events file cannot be opened for streaming."""


class EventsReadFailed(Exception):
    """Reading the events file failed after it was opened."""


class EventTail:
    def __init__(self, path: Path, fd: int, inode: tuple[int, int]) -> None:
        self.path = path
        self._fd = fd
        self._inode = inode
        self._pending = b""
        self._skipping = False

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def poll(self) -> list[dict[str, Any]]:
        """Every complete new event since the last call (across a rotation)."""
        events = self._drain()
        current = _identity(self.path)
        if current is not None and current != self._inode:
            events += self._drain()  # the rest of the rotated file, then the new one
            try:
                fd, inode = _open(self.path)
            except EventsUnavailable:
                return events  # rotated but not yet recreated: look again next time
            os.close(self._fd)
            self._fd, self._inode, self._pending, self._skipping = fd, inode, b"", False
            events += self._drain()
        return events

    def follow(self, stop: threading.Event, poll_s: float = POLL_S) -> Iterator[dict[str, Any]]:
        """Events as they come, until ``stop`` is set."""
        while not stop.is_set():
            yield from self.poll()
            stop.wait(poll_s)

    def _drain(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError as exc:
                raise EventsReadFailed(f"cannot read {self.path}: {exc.strerror or exc}"
                                       ) from None
            if not chunk:
                return events
            self._pending += chunk
            *lines, self._pending = self._pending.split(b"\n")
            for line in lines:
                if self._skipping:
                    self._skipping = False
                    continue
                event = parse_line(line)
                if event is not None:
                    events.append(event)
            if len(self._pending) > MAX_LINE_BYTES:
                self._pending, self._skipping = b"", True


def open_tail(path: Path) -> EventTail:
    """A tail positioned at the file's current end; raises EventsUnavailable."""
    fd, inode = _open(path)
    os.lseek(fd, 0, os.SEEK_END)
    return EventTail(path, fd, inode)


def parse_line(line: bytes) -> dict[str, Any] | None:
    if not line.strip() or len(line) > MAX_LINE_BYTES:
        return None
    try:
        value = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or not isinstance(value.get("event"), str):
        return None
    event: dict[str, Any] = {"event": value["event"]}
    if isinstance(value.get("ts"), str):
        event["ts"] = value["ts"]
    data = value.get("data")
    event["data"] = data if isinstance(data, dict) else {}
    return event


def _open(path: Path) -> tuple[int, tuple[int, int]]:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise EventsUnavailable(f"the bridge event log {path} does not exist") from None
    except OSError as exc:
        raise EventsUnavailable(f"cannot inspect {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise EventsUnavailable(f"the bridge event log {path} is not a regular file")
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        raise EventsUnavailable(f"cannot open {path}: {exc.strerror or exc}") from None
    opened = os.fstat(fd)
    if not stat.S_ISREG(opened.st_mode):
        os.close(fd)
        raise EventsUnavailable(f"the bridge event log {path} is not a regular file")
    return fd, (opened.st_dev, opened.st_ino)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino
