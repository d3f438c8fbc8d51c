"""When to look again: a doorbell the engine sleeps on, rung by file-system events.

File events only say "something may have changed"; the engine always learns what changed from a
cursor query, so a lost, late or spurious event costs latency, never a message (the engine also
polls on a timer). Events come from watchdog (inotify on Linux, FSEvents on macOS, kqueue on BSD)
watching the database's *directory*, so ``chat.db``, ``chat.db-wal`` and ``chat.db-shm`` keep
reporting when SQLite or iCloud replaces one of them by name. ``FileWakeup.check`` re-arms the
watch whenever the directory or one of those files changes identity (device, inode), which also
covers backends that hold a handle per file, and when the directory comes back after vanishing.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from watchdog.events import (
    DirDeletedEvent,
    DirMovedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

# Opens and reads are left out on purpose: the watcher's own queries must not wake it.
_EVENT_TYPES: list[type[FileSystemEvent]] = [
    FileModifiedEvent, FileCreatedEvent, FileDeletedEvent, FileMovedEvent,
    DirDeletedEvent, DirMovedEvent,
]
Identity = tuple[int, int] | None
_LONGEST_WAIT_S = 3600.0  # lock timeouts have a platform maximum; longer sleeps loop


def file_identity(path: str) -> Identity:
    """(device, inode) of ``path``, or None when it does not exist or cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class Doorbell:
    """Where wake-up sources ring (from any thread) and the engine waits.

    It remembers when it was first rung since the last ``clear``, so the engine can poll a fixed
    delay after the first event of a burst: later events never push the poll back (no starvation).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._rung_at: float | None = None
        self._closed = False

    def ring(self) -> None:
        with self._cond:
            if self._rung_at is None:
                self._rung_at = time.monotonic()
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def is_closed(self) -> bool:
        return self._closed

    @property
    def rung_at(self) -> float | None:
        return self._rung_at

    def clear(self) -> None:
        """Forget past rings: a poll that starts after this covers every one of them."""
        with self._cond:
            self._rung_at = None

    def sleep_until(self, deadline: float) -> None:
        """Block until ``deadline`` (monotonic), the first ring since the last clear, or close."""
        with self._cond:
            was_rung = self._rung_at is not None
            while not self._closed and (was_rung or self._rung_at is None):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(min(remaining, _LONGEST_WAIT_S))


class _Handler(FileSystemEventHandler):
    def __init__(self, directory: str, names: frozenset[str], ring: Callable[[], None]) -> None:
        super().__init__()
        self._directory = directory
        self._names = names
        self._ring = ring

    def on_any_event(self, event: FileSystemEvent) -> None:
        for raw in (event.src_path, event.dest_path):
            path = os.fsdecode(raw)
            if path and (path == self._directory or os.path.basename(path) in self._names):
                self._ring()
                return


class FileWakeup:
    """Rings ``bell`` on changes to a database file, its WAL and shared-memory files.

    Never raises after construction: when the directory cannot be watched (missing, inotify limits)
    it reports through ``on_status`` and keeps trying on every ``check``; the engine's timer poll
    carries on meanwhile. Construction raises ``OSError`` only if no observer thread can start.
    """

    def __init__(self, db_path: str, bell: Doorbell, on_status: Callable[[str], None]) -> None:
        self._directory = os.path.dirname(os.path.abspath(db_path))
        base = os.path.basename(db_path)
        self._paths = (self._directory, db_path, f"{db_path}-wal", f"{db_path}-shm")
        self._bell = bell
        self._on_status = on_status
        self._handler = _Handler(self._directory, frozenset({base, f"{base}-wal", f"{base}-shm"}),
                                 bell.ring)
        self._lock = threading.Lock()
        self._observer: BaseObserver = Observer()
        self._observer.start()
        self._watch: ObservedWatch | None = None
        self._armed: tuple[Identity, ...] | None = None
        self._failure: str | None = None
        self._closed = False
        self.check()

    @property
    def armed(self) -> bool:
        return self._watch is not None

    def check(self) -> None:
        """Re-arm if anything watched changed identity since it was armed (or never armed)."""
        identities = tuple(file_identity(path) for path in self._paths)
        with self._lock:
            if self._closed or (self._watch is not None and identities == self._armed):
                return
            if self._watch is not None:
                self._observer.unschedule(self._watch)
                self._watch = None
            try:
                self._watch = self._observer.schedule(
                    self._handler, self._directory, recursive=False, event_filter=_EVENT_TYPES)
            except OSError as exc:
                self._report(f"cannot watch {self._directory} for changes ({exc.strerror or exc});"
                             " checking on a timer until it can")
                return
            self._armed = identities
            if self._failure is not None:
                self._report(None)
        # A change may have slipped by while nothing was armed: have the engine look once more.
        self._bell.ring()

    def _report(self, failure: str | None) -> None:
        if failure is not None and failure != self._failure:
            self._on_status(failure)
        elif failure is None:
            self._on_status(f"watching {self._directory} for changes again")
        self._failure = failure

    def close(self) -> None:
        """Stop the observer threads without waiting for them (they are daemon threads)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._watch = None
        self._observer.stop()
