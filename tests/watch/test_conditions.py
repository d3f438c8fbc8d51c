"""The database file misbehaving under a running watcher: checkpoints, replacement, loss, locks."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from imsg.chatdb import connection
from imsg.chatdb.reader import ChatDB
from imsg.errors import PermissionDenied
from imsg.sim.messages import SimDB
from imsg.watch import engine

from .kit import ALICE, Stream, drop_triggers, ids, wait_for


def mentions(statuses: list[str], text: str) -> Callable[[], bool]:
    return lambda: any(text in status for status in statuses)


def test_inserts_interleaved_with_wal_truncating_checkpoints(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    stream = watch()
    rows = []
    for i in range(60):
        rows.append(db.receive(chat, ALICE, f"row {i}"))
        if i % 3 == 0:
            db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    assert ids(stream.through(rows[-1])) == rows


def copy_database(source_path: str, target_path: str) -> None:
    """SQLite's online backup: ``target_path`` gets the content of ``source_path``."""
    source, target = sqlite3.connect(source_path), sqlite3.connect(target_path)
    source.backup(target)
    target.close()
    source.close()


def test_database_replaced_by_rename_is_reopened_and_nothing_is_lost(
        db: SimDB, chat: int, watch: Callable[..., Stream], statuses: list[str]) -> None:
    stream = watch()
    before = db.receive(chat, ALICE, "before the swap")
    assert ids(stream.through(before)) == [before]
    # Another process rebuilds the database next to it and renames it into place.
    replacement = db.path + ".new"
    copy_database(db.path, replacement)
    rebuilt = SimDB(replacement)
    in_copy = [rebuilt.receive(chat, ALICE, f"written in the copy {i}") for i in range(3)]
    rebuilt.close()
    db.close()
    for suffix in ("-wal", "-shm"):
        os.unlink(db.path + suffix)
    os.replace(replacement, db.path)
    writer = SimDB(db.path)
    try:
        after = writer.receive(chat, ALICE, "after the swap")
        assert ids(stream.through(after)) == [*in_copy, after]
    finally:
        writer.close()
    assert any("was replaced by a new file" in status for status in statuses)


def test_database_gone_for_a_while_is_reported_and_resumed(
        db: SimDB, chat: int, watch: Callable[..., Stream], statuses: list[str],
        tmp_path: Path) -> None:
    stream = watch()
    first = db.receive(chat, ALICE, "before it vanished")
    assert ids(stream.through(first)) == [first]
    db.close()
    away = str(tmp_path / "moved.db")
    for suffix in ("", "-wal", "-shm"):
        os.replace(db.path + suffix, away + suffix)
    wait_for(mentions(statuses, "is missing; waiting"))
    elsewhere = SimDB(away)
    while_gone = elsewhere.receive(chat, ALICE, "written while it was gone")
    elsewhere.close()
    os.replace(away, db.path)
    writer = SimDB(db.path)
    try:
        back = writer.receive(chat, ALICE, "back")
        assert ids(stream.through(back)) == [while_gone, back]
    finally:
        writer.close()
    wait_for(mentions(statuses, "readable again"))


def test_a_locked_database_is_reported_then_read_once_released(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, statuses: list[str]) -> None:
    monkeypatch.setattr(connection, "BUSY_TIMEOUT_S", 0.1)
    sim = SimDB.create(str(tmp_path / "chat.db"), "ventura")
    sim.conn.execute("PRAGMA journal_mode = DELETE")  # so a writer can lock readers out
    chat = sim.chat([ALICE])
    stream = Stream(engine.Watcher(sim.path, debounce_s=0, poll_interval_s=3600,
                                   on_status=statuses.append))
    try:
        sim.conn.execute("BEGIN EXCLUSIVE")
        locked = sim.receive(chat, ALICE, "written under an exclusive lock")
        wait_for(mentions(statuses, "is locked by another process"))
        sim.conn.execute("COMMIT")
        assert ids(stream.through(locked)) == [locked]
        wait_for(mentions(statuses, "readable again"))
    finally:
        stream.stop()
        sim.close()


def test_losing_read_permission_raises_out_of_events_and_closes(
        db: SimDB, chat: int, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = Stream(engine.Watcher(db.path, debounce_s=0, poll_interval_s=3600))
    started = db.receive(chat, ALICE, "readable")
    stream.through(started)

    def refused(self: ChatDB, *_: object, **__: object) -> None:
        raise PermissionDenied(self.path, "authorization denied")

    monkeypatch.setattr(ChatDB, "messages_after", refused)
    db.receive(chat, ALICE, "unreadable")
    assert isinstance(stream.ended(), PermissionDenied)
    assert list(stream.watcher.events()) == []


def test_without_file_events_the_timer_poll_still_delivers(
        db: SimDB, chat: int, monkeypatch: pytest.MonkeyPatch, statuses: list[str]) -> None:
    def no_events(*_: object) -> None:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(engine, "FileWakeup", no_events)
    stream = Stream(engine.Watcher(db.path, poll_interval_s=0.05, on_status=statuses.append))
    try:
        rows = [db.receive(chat, ALICE, f"polled {i}") for i in range(3)]
        assert ids(stream.through(rows[-1])) == rows
    finally:
        stream.stop()
    assert any("file events unavailable (Too many open files)" in s for s in statuses)


def test_continuous_writes_cannot_postpone_delivery(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    # A debounce that restarted on every event would deliver nothing until the writer stops;
    # the writer here only stops once several rows were delivered (or after 2,000 rows).
    stream = watch(debounce_s=0.2)
    enough = threading.Event()
    written: list[int] = []

    def write() -> None:
        writer = SimDB(db.path)
        while not enough.is_set() and len(written) < 2000:
            written.append(writer.receive(chat, ALICE, "typing"))
            time.sleep(0.01)
        writer.close()

    thread = threading.Thread(target=write)
    thread.start()
    events = stream.take(5)
    enough.set()
    thread.join()
    assert len(written) < 2000
    while events[-1].message.id != written[-1]:
        events.append(stream.next())
    assert ids(events) == written


def test_a_held_row_is_retried_even_when_no_event_follows_its_join(
        db: SimDB, chat: int, monkeypatch: pytest.MonkeyPatch, statuses: list[str]) -> None:
    # The join's commit can become visible after the event-driven polls ran (a loaded machine):
    # without file events at all, only the hold's own retries can deliver the row in time.
    def no_events(*_: object) -> None:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(engine, "FileWakeup", no_events)
    unjoined = db.message(chat, "joined later", sender=ALICE, join=False)
    stream = Stream(engine.Watcher(db.path, since_rowid=unjoined - 1, poll_interval_s=3600,
                                   hold_s=60, on_status=statuses.append))
    try:
        db.join(chat, unjoined)
        assert ids(stream.through(unjoined)) == [unjoined]
    finally:
        stream.stop()


def delivered_then_copied(db: SimDB, chat: int, stream: Stream,
                          older: str) -> tuple[list[int], str, list[int]]:
    """Three rows delivered, a copy of the database taken then (at ``older``), five more
    delivered: (the early rows, the copy, the late rows)."""
    early = [db.receive(chat, ALICE, f"early {i}") for i in range(3)]
    assert ids(stream.through(early[-1])) == early
    copy_database(db.path, older)
    late = [db.receive(chat, ALICE, f"late {i}") for i in range(5)]
    assert ids(stream.through(late[-1])) == late
    return early, older, late


def test_a_database_replaced_by_an_older_copy_is_reanchored(
        db: SimDB, chat: int, watch: Callable[..., Stream], statuses: list[str],
        tmp_path: Path) -> None:
    stream = watch()
    _, older, late = delivered_then_copied(db, chat, stream, str(tmp_path / "older.db"))
    db.close()
    for suffix in ("-wal", "-shm"):
        os.unlink(db.path + suffix)
    os.replace(older, db.path)  # a backup restored by hand, or a sync rolling it back
    writer = SimDB(db.path)
    try:
        restored = [writer.receive(chat, ALICE, f"after the restore {i}") for i in range(5)]
        assert restored[0] <= late[-1]  # the same ROWIDs again
        events = stream.through(restored[-1])
    finally:
        writer.close()
    assert ids(events) == restored
    assert all(event.message.cursor is not None and event.message.cursor < late[-1]
               for event in events[:-1])
    assert any(s.startswith("WARNING: ") and "older copy" in s for s in statuses)


def test_a_database_rolled_back_in_place_is_reanchored(
        db: SimDB, chat: int, watch: Callable[..., Stream], statuses: list[str],
        tmp_path: Path) -> None:
    stream = watch()
    early, older, late = delivered_then_copied(db, chat, stream, str(tmp_path / "older.db"))
    copy_database(older, db.path)  # same file, older content
    # Enough new rows to climb past the cursor again before the watcher can look.
    db.conn.execute("BEGIN")
    refill = [db.receive(chat, ALICE, f"after the rollback {i}") for i in range(8)]
    db.conn.execute("COMMIT")
    assert refill[0] == early[-1] + 1 and refill[-1] > late[-1]
    assert ids(stream.through(refill[-1])) == refill
    assert any(s.startswith("WARNING: ") for s in statuses)


def test_deleting_the_newest_messages_is_not_a_rollback(
        db: SimDB, chat: int, watch: Callable[..., Stream], statuses: list[str]) -> None:
    stream = watch()
    rows = [db.receive(chat, ALICE, f"row {i}") for i in range(4)]
    assert ids(stream.through(rows[-1])) == rows
    drop_triggers(db.conn)
    db.conn.execute("DELETE FROM chat_message_join WHERE message_id >= ?", (rows[2],))
    db.conn.execute("DELETE FROM message WHERE ROWID >= ?", (rows[2],))
    later = db.receive(chat, ALICE, "later")
    assert later > rows[-1]
    assert ids(stream.through(later)) == [later]
    assert not any("WARNING" in s for s in statuses)
