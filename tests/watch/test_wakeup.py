"""Wake-ups: the doorbell's fixed-delay coalescing, and file events that survive replacement."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from watchdog.events import DirDeletedEvent, FileDeletedEvent, FileModifiedEvent, FileMovedEvent
from watchdog.observers import Observer

import imsg.watch.wakeup as wakeup_module
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


def inotify_instances() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            count += os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify"
    return count


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts inotify descriptors")
def test_a_thousand_subscriptions_share_one_inotify_instance(files: Path) -> None:
    before = inotify_instances()
    bells = [Doorbell() for _ in range(1000)]
    wakes = [FileWakeup(str(files / "chat.db"), bell, lambda _: None) for bell in bells]
    try:
        assert inotify_instances() == before + 1
        for bell in bells:
            bell.clear()
        append(files / "chat.db-wal")
        assert all(rang(bell) for bell in bells)
    finally:
        for wake in wakes:
            wake.close()
    assert inotify_instances() == before


def test_the_last_subscriber_out_stops_the_observer_and_a_new_one_starts_it(files: Path) -> None:
    first = FileWakeup(str(files / "chat.db"), Doorbell(), lambda _: None)
    first.close()
    bell = Doorbell()
    second = FileWakeup(str(files / "chat.db"), bell, lambda _: None)
    try:
        assert second.armed
        bell.clear()
        append(files / "chat.db")
        assert rang(bell)
    finally:
        second.close()


class _ExhaustedObserver(Observer):  # type: ignore[misc, valid-type]
    """inotify out of instances until ``exhausted`` is cleared."""

    exhausted = True

    def schedule(self, *args: object, **kwargs: object) -> object:
        if _ExhaustedObserver.exhausted:
            raise OSError(errno.EMFILE, "inotify instance limit reached")
        return super().schedule(*args, **kwargs)


def test_exhausted_inotify_polls_every_quarter_second_and_says_so_once(
        files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wakeup_module, "_new_observer", _ExhaustedObserver)
    monkeypatch.setattr(wakeup_module, "RETRY_ARM_S", 0.0)
    monkeypatch.setattr(_ExhaustedObserver, "exhausted", True)
    watchers = [(Doorbell(), []) for _ in range(3)]  # type: list[tuple[Doorbell, list[str]]]
    wakes = [FileWakeup(str(files / "chat.db"), bell, said.append) for bell, said in watchers]
    try:
        for wake in wakes * 3:
            wake.check()
        for bell, said in watchers:
            assert said == [f"cannot watch {files} for changes (inotify instance limit reached);"
                            " checking every 0.25s until it can"]
            bell.clear()
        append(files / "chat.db-wal")
        assert all(rang(bell) for bell, _ in watchers)  # found by the 250 ms look, no event
        _ExhaustedObserver.exhausted = False
        for wake in wakes:
            wake.check()
            assert wake.armed
        for _, said in watchers:
            assert said[1:] == [f"watching {files} for changes again"]
    finally:
        for wake in wakes:
            wake.close()
