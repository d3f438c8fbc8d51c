"""Corrupt rows and corrupt databases: nothing stalls, nothing escapes as a traceback."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imsg.chatdb import assemble
from imsg.chatdb.reader import ChatDB
from imsg.errors import NotAMessagesDatabase, SchemaMismatch
from imsg.sim.messages import SimDB
from imsg.watch import Watcher, page_after

from .kit import ALICE, TIMEOUT_S, Stream, drop_triggers, ids, wait_for

INVALID_UTF8 = "CAST(X'68ff69' AS TEXT)"  # "h\xffi"


def corrupt(path: str, sql: str, params: tuple[Any, ...] = ()) -> None:
    """Write as a broken tool would, past Messages' own checks."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute(sql, params)
    conn.commit()
    conn.close()


def rename_column(db: SimDB, table: str, column: str, new: str) -> None:
    """As a macOS update might."""
    drop_triggers(db.conn)
    db.conn.execute(f"ALTER TABLE {table} RENAME COLUMN {column} TO {new}")


def test_invalid_utf8_and_bad_dates_are_delivered_not_stalled(
        db: SimDB, chat: int, watch: Callable[..., Stream]) -> None:
    bad_text = db.receive(chat, ALICE, "placeholder", text_column=True)
    corrupt(db.path, f"UPDATE message SET text = {INVALID_UTF8} WHERE ROWID = ?", (bad_text,))
    stranger = db.receive(chat, "+15550009999", "from a garbled handle")
    corrupt(db.path, f"UPDATE handle SET id = {INVALID_UTF8} WHERE id = '+15550009999'")
    text_date = db.receive(chat, ALICE, "dated 'yesterday'")
    corrupt(db.path, "UPDATE message SET date = 'yesterday' WHERE ROWID = ?", (text_date,))
    huge_date = db.receive(chat, ALICE, "dated 1e300")
    corrupt(db.path, "UPDATE message SET date = 1e300 WHERE ROWID = ?", (huge_date,))
    stream = watch(since_rowid=bad_text - 1)
    sentinel = db.receive(chat, ALICE, "sentinel")
    events = stream.through(sentinel)
    assert ids(events) == [bad_text, stranger, text_date, huge_date, sentinel]
    by_id = {e.message.id: e.message for e in events}
    assert by_id[bad_text].text == "h\ufffdi"
    assert by_id[stranger].sender == "h\ufffdi"
    assert by_id[text_date].created_at == by_id[huge_date].created_at  # unknown: the epoch


def test_a_row_that_cannot_be_built_is_skipped_and_reported_in_its_place(
        db: SimDB, chat: int, watch: Callable[..., Stream],
        monkeypatch: pytest.MonkeyPatch) -> None:
    poison: set[int] = set()
    build = assemble.build

    def choke(reader: ChatDB, rows: list[tuple[Any, ...]], *args: Any, **kwargs: Any) -> Any:
        if any(row[0] in poison for row in rows):
            raise ValueError("a value no decoder can read")
        return build(reader, rows, *args, **kwargs)

    monkeypatch.setattr(assemble, "build", choke)
    stream = watch(report_skipped=True)
    before = db.receive(chat, ALICE, "before")
    poison.add(before + 1)  # before it is written: the watcher may read it at once
    bad = db.receive(chat, ALICE, "poison")
    assert bad == before + 1
    after = db.receive(chat, ALICE, "after")
    events = stream.take(3)
    assert [e.kind for e in events] == ["message", "skipped", "message"]
    assert (events[0].message.id, events[2].message.id) == (before, after)
    skipped = events[1].skipped
    assert (skipped.rowid, skipped.guid, skipped.reason) == (bad, db.guid_of(bad), "unreadable")
    assert "a value no decoder can read" in skipped.detail
    assert events[2].message.cursor == after


def test_watch_cli_survives_a_text_date_in_the_newest_row(db: SimDB, chat: int) -> None:
    broken = db.receive(chat, ALICE, "dated with text")
    corrupt(db.path, "UPDATE message SET date = 'soon' WHERE ROWID = ?", (broken,))
    proc = subprocess.Popen(
        [sys.executable, "-m", "imsg", "watch", "--json", "--db", db.path, "--since-rowid",
         str(broken - 1), "--debounce", "0ms"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f'"id":{broken},' in line and '"cursor":' in line
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=TIMEOUT_S)
    assert "Traceback" not in err


@pytest.mark.parametrize("damage", [
    "UPDATE sqlite_master SET name = CAST(X'66ff6f' AS TEXT) WHERE name = 'handle'",
    "UPDATE sqlite_master SET sql = 'CREATE TABLE attachment (' WHERE name = 'attachment'",
])
def test_a_garbled_schema_is_a_typed_error(db: SimDB, tmp_path: Path, damage: str) -> None:
    copy = str(tmp_path / "garbled.db")
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(db.path, copy)
    corrupt(copy, damage)
    with pytest.raises(NotAMessagesDatabase, match="malformed"):
        ChatDB(copy)
    with pytest.raises(NotAMessagesDatabase):
        Watcher(copy)


def test_subscribing_again_works_on_a_database_with_poison_rows(
        db: SimDB, chat: int, statuses: list[str]) -> None:
    rows = [db.receive(chat, ALICE, f"row {i}") for i in range(3)]
    corrupt(db.path, "UPDATE message SET date = 'x', date_edited = 'y' WHERE ROWID = ?",
            (rows[-1],))
    for _ in range(3):  # as an RPC client resubscribing would
        watcher = Watcher(db.path, since_rowid=rows[0], updates=True, poll_interval_s=3600,
                          on_status=statuses.append)
        events = watcher.events()
        try:
            assert [next(events).message.id for _ in range(2)] == rows[1:]
        finally:
            watcher.close()


def test_a_renamed_optional_column_heals_after_reopening(
        db: SimDB, chat: int, watch: Callable[..., Stream], statuses: list[str]) -> None:
    stream = watch()
    first = db.receive(chat, ALICE, "before the update")
    assert ids(stream.through(first)) == [first]
    rename_column(db, "message", "thread_originator_guid", "originator")
    after = db.receive(chat, ALICE, "after the update")
    assert ids(stream.through(after)) == [after]
    assert any("no such column" in s for s in statuses)
    wait_for(lambda: any("readable again" in s for s in statuses))


def test_a_schema_error_that_will_not_heal_ends_the_watch(
        db: SimDB, chat: int, watch: Callable[..., Stream], statuses: list[str]) -> None:
    stream = watch()
    first = db.receive(chat, ALICE, "before the update")
    assert ids(stream.through(first)) == [first]
    rename_column(db, "chat_message_join", "chat_id", "conversation_id")
    ended = stream.ended()
    assert isinstance(ended, SchemaMismatch)
    assert "no such column" in ended.message and f"resume after ROWID {first}" in ended.message
    wait_for(lambda: any("no such column" in s for s in statuses))


def test_text_in_a_join_rows_ids_does_not_stop_watch_or_paging(
        db: SimDB, chat: int, statuses: list[str]) -> None:
    kept = db.receive(chat, ALICE, "kept")
    lost_chat = db.receive(chat, ALICE, "its join names chat 'abc'")
    lost_row = db.receive(chat, ALICE, "its join names message 'xyz'")
    after = db.receive(chat, ALICE, "after")
    db.conn.execute("UPDATE chat_message_join SET chat_id = 'abc' WHERE message_id = ?",
                    (lost_chat,))
    db.conn.execute("UPDATE chat_message_join SET message_id = 'xyz' WHERE message_id = ?",
                    (lost_row,))
    with ChatDB(db.path) as reader:
        page = page_after(reader, kept - 1, now_ns=0)  # both rows long past their join
        assert [m.id for m in page.messages] == [kept, after]
        assert [s.rowid for s in page.skipped] == [lost_chat, lost_row]
    watcher = Watcher(db.path, since_rowid=kept - 1, hold_s=0, horizon_s=0,
                      poll_interval_s=3600, report_skipped=True)
    events = watcher.events()
    try:
        assert [(e.kind, e.skipped.rowid if e.kind == "skipped" else e.message.id)
                for e in (next(events) for _ in range(4))] == [
            ("message", kept), ("skipped", lost_chat), ("skipped", lost_row), ("message", after)]
    finally:
        watcher.close()
