"""Wake-ups: the doorbell's fixed-delay coalescing, and file events that survive replacement."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from watchdog.events import DirDeletedEvent, FileDeletedEvent, FileModifiedEvent, FileMovedEvent

from imsg.watch.wakeup import Doorbell, FileWakeup, _Handler

from .kit import TIMEOUT_S


def test_later_rings_do_not_move_the_first_ring_time() -> None:
    bell = Doorbell()
    bell.ring()
    first = bell.rung_at
    bell.ring()
    assert first is not None and bell.rung_at == first
    bell.clear()
    assert bell.rung_at is None


def test_a_rung_bell_sleeps_until_the_deadline_despite_more_rings() -> None:
    bell = Doorbell()
    bell.ring()
    deadline = time.monotonic() + 0.1
    ringer = threading.Thread(target=lambda: [bell.ring() for _ in range(1000)])
    ringer.start()
    bell.sleep_until(deadline)
    ringer.join()
    assert time.monotonic() >= deadline


def test_a_ring_or_close_wakes_a_sleeper() -> None:
    for wake in ("ring", "close"):
        bell = Doorbell()
        sleeper = threading.Thread(target=bell.sleep_until, args=(time.monotonic() + 3600,))
        sleeper.start()
        getattr(bell, wake)()
        sleeper.join(TIMEOUT_S)
        assert not sleeper.is_alive()


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "Messages"
    folder.mkdir()
    for name in ("chat.db", "chat.db-wal", "chat.db-shm", "unrelated.txt"):
        (folder / name).write_bytes(b"")
    return folder


@pytest.fixture
def wakeup(files: Path) -> Iterator[tuple[FileWakeup, Doorbell, list[str]]]:
    bell, statuses = Doorbell(), []
    wake = FileWakeup(str(files / "chat.db"), bell, statuses.append)
    yield wake, bell, statuses
    wake.close()


def rang(bell: Doorbell) -> bool:
    if bell.rung_at is None:
        bell.sleep_until(time.monotonic() + TIMEOUT_S)
    return bell.rung_at is not None


def append(path: Path) -> None:
    with open(path, "ab") as fh:
        fh.write(b"x")


def test_only_the_database_its_sidecars_and_the_directory_ring() -> None:
    rings: list[None] = []
    handler = _Handler("/m", frozenset({"chat.db", "chat.db-wal"}), lambda: rings.append(None))
    for event, rings_bell in [
        (FileModifiedEvent("/m/unrelated.txt"), False),
        (FileModifiedEvent("/m/chat.db-wal"), True),
        (FileMovedEvent("/m/tmp", "/m/chat.db"), True),
        (FileDeletedEvent("/m/chat.db"), True),
        (DirDeletedEvent("/m"), True),
    ]:
        rings.clear()
        handler.on_any_event(event)
        assert rings == ([None] if rings_bell else []), event


def test_writes_to_the_wal_ring(files: Path,
                                wakeup: tuple[FileWakeup, Doorbell, list[str]]) -> None:
    _, bell, _ = wakeup
    assert rang(bell)  # arming rings once, in case something changed before
    bell.clear()
    append(files / "chat.db-wal")
    assert rang(bell)


def test_a_rotated_wal_keeps_ringing(files: Path,
                                     wakeup: tuple[FileWakeup, Doorbell, list[str]]) -> None:
    wake, bell, _ = wakeup
    bell.clear()
    (files / "fresh-wal").write_bytes(b"")
    os.replace(files / "fresh-wal", files / "chat.db-wal")
    assert rang(bell)
    wake.check()
    bell.clear()
    append(files / "chat.db-wal")
    assert rang(bell)


def test_a_replaced_directory_is_watched_again_after_check(
        files: Path, wakeup: tuple[FileWakeup, Doorbell, list[str]]) -> None:
    wake, bell, _ = wakeup
    os.replace(files, files.with_name("Messages.old"))
    files.mkdir()
    (files / "chat.db").write_bytes(b"")
    wake.check()
    assert wake.armed
    bell.clear()
    append(files / "chat.db")
    assert rang(bell)


def test_a_missing_directory_is_reported_and_armed_once_it_exists(
        files: Path, wakeup: tuple[FileWakeup, Doorbell, list[str]]) -> None:
    wake, bell, statuses = wakeup
    os.replace(files, files.with_name("gone"))
    wake.check()
    assert not wake.armed
    assert any("cannot watch" in status for status in statuses)
    files.mkdir()
    wake.check()
    assert wake.armed and "watching" in statuses[-1]
    bell.clear()
    append(files / "chat.db-shm")
    assert rang(bell)
