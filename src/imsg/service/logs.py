"""``imsg service logs``: the end of the service's log, and following it as it grows.

The service writes one size-capped file (``imsg.rpc.logsetup.CappedLog``), rotated to
``<file>.1``. ``tail`` reads the last lines (reaching into ``<file>.1`` when the current file
is short); ``follow`` yields lines as they are appended, reopening the file when it is
rotated or truncated, until ``stop`` is set.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

BLOCK = 64 * 1024


def size(path: str) -> int:
    """The log's current size (0 when absent): where ``tail`` may stop and ``follow``
    start, so no line falls between them."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def tail(path: str, lines: int = 50, end: int | None = None) -> list[str]:
    """The last ``lines`` lines of the log before offset ``end`` (default: its end), older
    ones from ``<path>.1``; [] when none."""
    found = _last_lines(path, lines, end)
    if len(found) < lines:
        found = _last_lines(path + ".1", lines - len(found), None) + found
    return found


def _last_lines(path: str, count: int, end: int | None) -> list[str]:
    if count <= 0:
        return []
    try:
        with open(path, "rb") as fh:
            length = fh.seek(0, os.SEEK_END)
            end = length if end is None else min(end, length)
            data = b""
            position = end
            while position > 0 and data.count(b"\n") <= count:
                step = min(BLOCK, position)
                position -= step
                fh.seek(position)
                data = fh.read(step) + data
    except OSError:
        return []
    text = data.decode("utf-8", "replace")
    return text.splitlines()[-count:]


def follow(path: str, stop: threading.Event, poll_s: float = 0.2,
           offset: int | None = None) -> Iterator[str]:
    """Yield each line of ``path`` from ``offset`` (default: its end) and every line
    appended after (a partial last line waits for its newline) until ``stop`` is set;
    survives the file being absent, rotated (read from the start) or truncated."""
    handle = None
    identity: tuple[int, int] | None = None
    pending = b""
    first = True
    try:
        while not stop.is_set():
            if handle is None:
                try:
                    handle = open(path, "rb")  # noqa: SIM115 - kept open across polls
                except OSError:
                    stop.wait(poll_s)
                    continue
                st = os.fstat(handle.fileno())
                identity = (st.st_dev, st.st_ino)
                if first:  # later opens (after a rotation) read the new file from its start
                    handle.seek(st.st_size if offset is None else min(offset, st.st_size))
                first = False
                pending = b""
            chunk = handle.read(BLOCK)
            if chunk:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    yield line.decode("utf-8", "replace")
                continue
            if _replaced(path, identity, handle.tell()):
                handle.close()
                handle = None
                continue
            stop.wait(poll_s)
    finally:
        if handle is not None:
            handle.close()


def _replaced(path: str, identity: tuple[int, int] | None, offset: int) -> bool:
    """True when ``path`` is now another file, or was truncated below ``offset``."""
    try:
        st = os.stat(path)
    except OSError:
        return False  # rotated and not re-created yet: keep reading the old one
    return (st.st_dev, st.st_ino) != identity or st.st_size < offset
