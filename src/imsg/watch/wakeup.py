"""When to look again: a doorbell the engine sleeps on, rung by file-system events.

File events only say "something may have changed"; the engine always learns what changed from a
cursor query, so a lost, late or spurious event costs latency, never a message (the engine also
polls on a timer). Events come from watchdog (inotify on Linux, FSEvents on macOS, kqueue on BSD)
watching the database's *directory*, so ``chat.db``, ``chat.db-wal`` and ``chat.db-shm`` keep
reporting when SQLite or iCloud replaces one of them by name. ``FileWakeup.check`` re-arms the
watch whenever the directory or one of those files changes identity (device, inode), which also
covers backends that hold a handle per file, and when the directory comes back after vanishing.

**One observer per database.** Every ``FileWakeup`` of one database path in a process shares one
observer (on Linux one inotify instance, which the kernel limits to 128 per user by default):
its events ring every subscriber's doorbell. The observer starts with the first subscriber,
re-arms for all of them, and stops with the last.

**When the observer cannot watch** (inotify instances or watches exhausted, the directory
missing), the shared observer falls back to looking at the three files' size, time and identity
every ``FALLBACK_POLL_S`` and rings every doorbell on a change; each subscriber is told once, and
again when events work again (the engine's next ``check`` retries arming).
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
FALLBACK_POLL_S = 0.25
RETRY_ARM_S = 1.0  # while arming fails, try again at most this often (unless a file moved)


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
        if self._rung_at is not None:
            # Already rung: the poll it leads to starts after this event, so covers it. (A ring
            # racing a clear is covered too: the poll after the clear sees the change.)
            return
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


def _new_observer() -> BaseObserver:
    return Observer()


class _SharedWatch:
    """The one observer of a database path, with the doorbells of everyone watching it."""

    def __init__(self, db_path: str) -> None:
        self.directory = os.path.dirname(db_path)
        base = os.path.basename(db_path)
        self._files = (db_path, f"{db_path}-wal", f"{db_path}-shm")
        self._paths = (self.directory, *self._files)
        self._bells: tuple[Doorbell, ...] = ()
        self._handler = _Handler(self.directory, frozenset({base, f"{base}-wal", f"{base}-shm"}),
                                 self.ring_all)
        self._lock = threading.Lock()
        self._observer = _new_observer()
        self._observer.start()  # OSError when no thread can start: the caller's to report
        self._watch: ObservedWatch | None = None
        self._armed: tuple[Identity, ...] | None = None
        self.failure: str | None = None
        self._retry_at = 0.0
        self._stopped = threading.Event()
        self._poller: threading.Thread | None = None

    @property
    def armed(self) -> bool:
        return self._watch is not None

    def ring_all(self) -> None:
        for bell in self._bells:  # a tuple, replaced whole: safe to walk from the event thread
            bell.ring()

    def subscribe(self, bell: Doorbell) -> None:
        with self._lock:
            self._bells = (*self._bells, bell)

    def unsubscribe(self, bell: Doorbell) -> int:
        """Remove ``bell``; how many subscribers are left."""
        with self._lock:
            self._bells = tuple(b for b in self._bells if b is not bell)
            return len(self._bells)

    def check(self) -> str | None:
        """Re-arm if anything watched changed identity since it was armed (or never was);
        the failure that keeps it from watching, if any."""
        identities = tuple(file_identity(path) for path in self._paths)
        with self._lock:
            if self._stopped.is_set() or (self._watch is not None and identities == self._armed):
                return self.failure
            if (self.failure is not None and identities == self._armed
                    and time.monotonic() < self._retry_at):
                return self.failure  # every subscriber's poll asks: do not hammer the kernel
            if self._watch is not None:
                self._observer.unschedule(self._watch)
                self._watch = None
            try:
                self._watch = self._observer.schedule(
                    self._handler, self.directory, recursive=False, event_filter=_EVENT_TYPES)
            except OSError as exc:
                self._armed = identities
                self._retry_at = time.monotonic() + RETRY_ARM_S
                self.failure = (f"cannot watch {self.directory} for changes"
                                f" ({exc.strerror or exc}); checking every"
                                f" {FALLBACK_POLL_S:g}s until it can")
                self._start_poller()
                return self.failure
            self._armed = identities
            self.failure = None
        # A change may have slipped by while nothing was armed: have every engine look again.
        self.ring_all()
        return None

    def _start_poller(self) -> None:
        if self._poller is None or not self._poller.is_alive():
            # The baseline is taken now, not whenever the thread first runs.
            self._poller = threading.Thread(target=self._poll, args=(self._signature(),),
                                            name="imsg-wakeup-poll", daemon=True)
            self._poller.start()

    def _poll(self, last: tuple[tuple[int, int, int, int] | None, ...]) -> None:
        """While not armed: ring everyone when a file's identity, size or time changes."""
        while not self._stopped.wait(FALLBACK_POLL_S):
            if self._watch is not None:
                return
            now = self._signature()
            if now != last:
                last = now
                self.ring_all()

    def _signature(self) -> tuple[tuple[int, int, int, int] | None, ...]:
        signature: list[tuple[int, int, int, int] | None] = []
        for path in self._paths:
            try:
                st = os.stat(path)
            except OSError:
                signature.append(None)
            else:
                signature.append((st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns))
        return tuple(signature)

    def stop(self) -> None:
        """Stop the observer threads without waiting for them (they are daemon threads)."""
        with self._lock:
            self._stopped.set()
            self._watch = None
        self._observer.stop()


_SHARED: dict[str, _SharedWatch] = {}
_SHARED_LOCK = threading.Lock()


class FileWakeup:
    """Rings ``bell`` on changes to a database file, its WAL and shared-memory files.

    Never raises after construction: when the directory cannot be watched (missing, inotify
    limits) it reports through ``on_status`` (once per failure, and once when it recovers) while
    the shared observer looks at the files every ``FALLBACK_POLL_S``, and keeps trying to arm on
    every ``check``; the engine's timer poll carries on meanwhile. Construction raises
    ``OSError`` only if no observer thread can start.
    """

    def __init__(self, db_path: str, bell: Doorbell, on_status: Callable[[str], None]) -> None:
        path = os.path.abspath(db_path)
        self._bell = bell
        self._on_status = on_status
        self._reported: str | None = None
        self._closed = False
        self._close_lock = threading.Lock()
        with _SHARED_LOCK:
            shared = _SHARED.get(path)
            if shared is None:
                shared = _SHARED[path] = _SharedWatch(path)
            shared.subscribe(bell)
        self._shared = shared
        self._path = path
        self.check()
        bell.ring()  # joining a running observer: look once, as arming it would have

    @property
    def armed(self) -> bool:
        return self._shared.armed

    def check(self) -> None:
        """Re-arm if anything watched changed identity since it was armed (or never armed)."""
        if self._closed:
            return
        failure = self._shared.check()
        if failure != self._reported:
            if failure is not None:
                self._on_status(failure)
            else:
                self._on_status(f"watching {self._shared.directory} for changes again")
            self._reported = failure

    def close(self) -> None:
        """Leave the shared observer; the last one out stops it."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        with _SHARED_LOCK:
            if self._shared.unsubscribe(self._bell) == 0:
                if _SHARED.get(self._path) is self._shared:
                    del _SHARED[self._path]
                self._shared.stop()
