"""Logging for a long-running ``imsg rpc --socket``: repeated lines are rate-limited, and the
service's log file is size-capped.

- ``RepeatFilter``: at most ``burst`` records with the same logger, level and message
  template per ``window_s``; the first record let through after a suppression says how many
  were dropped (``… (1234 similar lines suppressed)``). A failure that repeats thousands of
  times a second (an ``accept`` that keeps failing, a client that keeps being refused) costs a
  few lines a minute, never the disk.
- ``CappedLog``: descriptors 1 and 2 are pointed at the log file, so everything the process
  writes (log records, and whatever else ends up on stderr) lands there; before each record,
  a file past ``max_bytes`` is renamed to ``<file>.1`` (replacing the previous one) and a new
  file is started. Disk use stays below about ``2 × max_bytes``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_LOG_BYTES = 5 * 1024 * 1024
LOG_FORMAT = "%(asctime)s imsg rpc[%(process)d]: %(message)s"
CONSOLE_FORMAT = "imsg rpc: %(message)s"


@dataclass
class _Seen:
    start: float
    count: int = 1
    suppressed: int = 0


class RepeatFilter(logging.Filter):
    """Let at most ``burst`` similar records through per ``window_s`` (see module docstring).
    Remembers at most ``MAX_KEYS`` distinct templates (the oldest are forgotten)."""

    MAX_KEYS = 512

    def __init__(self, burst: int = 5, window_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.window_s = window_s
        self._clock = clock
        self._seen: dict[tuple[str, int, str], _Seen] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        seen = self._seen.get(key)
        if seen is None or now - seen.start >= self.window_s:
            if seen is not None:
                del self._seen[key]
            elif len(self._seen) >= self.MAX_KEYS:
                del self._seen[next(iter(self._seen))]
            self._seen[key] = _Seen(now)
            if seen is not None and seen.suppressed:
                record.msg = f"{record.msg} ({seen.suppressed} similar lines suppressed)"
            return True
        if seen.count < self.burst:
            seen.count += 1
            return True
        seen.suppressed += 1
        return False


class CappedLog:
    """The log file behind descriptors 1 and 2, rotated past ``max_bytes``."""

    def __init__(self, path: str, max_bytes: int = MAX_LOG_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes

    def open(self) -> None:
        """Point descriptors 1 and 2 at the file (created 0600, appended to)."""
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            for std in (1, 2):
                os.dup2(fd, std)
        finally:
            os.close(fd)

    def rotate_if_full(self) -> None:
        """Start a new file when the current one is past the cap."""
        try:
            size = os.fstat(2).st_size
        except OSError:
            return
        if size <= self.max_bytes:
            return
        with contextlib.suppress(OSError):
            sys.stderr.flush()
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.path, self.path + ".1")
        self.open()


class CappedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes records to stderr (the capped log file), rotating it first when full."""

    def __init__(self, log: CappedLog) -> None:
        super().__init__(sys.stderr)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        self.log.rotate_if_full()
        super().emit(record)


def configure(level: int, log_file: str | None = None) -> None:
    """Logging for ``imsg rpc --socket``: to stderr, or (``log_file``) to a capped file that
    also receives descriptors 1 and 2; repeated lines rate-limited either way. Raises OSError
    when the log file cannot be opened."""
    handler: logging.Handler
    if log_file:
        capped = CappedLog(log_file)
        capped.open()
        capped.rotate_if_full()
        handler = CappedHandler(capped)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
