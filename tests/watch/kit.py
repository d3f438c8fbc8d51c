"""Watch test kit: watchers run on a thread, and the sentinel helper.

Exactly-once and order are asserted without timing: after the rows under test, the writer adds
a *sentinel* row, and the test reads every event up to it. Anything missing, repeated or out of
order shows up in that list. Timeouts only stop a broken test from hanging.
"""

from __future__ import annotations

import json
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from imsg.watch import Watcher, WatchEvent

TIMEOUT_S = 20.0
ALICE = "+15550001111"
BOB = "+15550002222"


class Stream:
    """Iterates ``watcher.events()`` on a thread and queues what it yields."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self._events: queue.Queue[WatchEvent | BaseException | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for event in self.watcher.events():
                self._events.put(event)
        except BaseException as exc:  # handed to the test thread
            self._events.put(exc)
        self._events.put(None)

    def next(self) -> WatchEvent:
        item = self._events.get(timeout=TIMEOUT_S)
        if isinstance(item, BaseException):
            raise item
        assert item is not None, "the watcher stopped"
        return item

    def take(self, count: int) -> list[WatchEvent]:
        return [self.next() for _ in range(count)]

    def through(self, rowid: int) -> list[WatchEvent]:
        """Every event up to and including the new message ``rowid``."""
        events = [self.next()]
        while not (events[-1].kind == "message" and events[-1].message.id == rowid):
            events.append(self.next())
        return events

    def ended(self) -> BaseException | None:
        """Wait for the iteration to end; return what it raised, if anything."""
        item = self._events.get(timeout=TIMEOUT_S)
        while isinstance(item, WatchEvent):
            item = self._events.get(timeout=TIMEOUT_S)
        return item

    def stop(self) -> None:
        self.watcher.close()
        self._thread.join(TIMEOUT_S)
        assert not self._thread.is_alive(), "events() did not return after close()"


def wait_for(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until true; fail after TIMEOUT_S (a hang guard, not a speed test)."""
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.01)


def ids(events: list[WatchEvent]) -> list[int]:
    return [event.message.id for event in events]


def drop_triggers(conn: sqlite3.Connection) -> None:
    """The simulated schema keeps Apple's triggers over tables only Messages has (sync
    bookkeeping); a test that deletes rows or renames columns drops them first."""
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")\
            .fetchall():
        conn.execute(f'DROP TRIGGER "{name}"')


class WatchProcess:
    """``imsg watch --json`` as a child process; stdout lines parsed as they arrive."""

    def __init__(self, db_path: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "imsg", "watch", "--json", "--db", db_path, *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._lines.put(json.loads(raw))  # anything but one JSON object per line fails here
        self._lines.put(None)

    def through(self, rowid: int) -> list[dict[str, Any]]:
        """Every object printed up to and including the new message ``rowid``."""
        seen: list[dict[str, Any]] = []
        while not seen or seen[-1]["id"] != rowid or "event" in seen[-1]:
            line = self._lines.get(timeout=TIMEOUT_S)
            assert line is not None, f"watch exited: {self.stop()}"
            seen.append(line)
        return seen

    def take(self, count: int) -> list[dict[str, Any]]:
        lines = [self._lines.get(timeout=TIMEOUT_S) for _ in range(count)]
        assert None not in lines, f"watch exited: {self.stop()}"
        return [line for line in lines if line is not None]

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, then (exit code, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=TIMEOUT_S)
        return self.proc.returncode, err.decode()
