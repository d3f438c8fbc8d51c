"""The index stays equal to chat.db: catching up, rebuilding, and never failing a search."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

import imsg.index
from imsg.chatdb.reader import ChatDB
from imsg.errors import ChatNotFound, IndexUnavailable, InvalidInput
from imsg.index import searcher, sync
from imsg.index.store import IndexStore
from imsg.sim.messages import SimAttachment, SimDB

ALICE = "+15550001111"
DAY = 86400.0


def ids(db: ChatDB, query: str, **kw: object) -> list[int]:
    """The index's answer, after checking it against the scan's."""
    got = imsg.index.search(db, query, **kw)  # type: ignore[arg-type]
    assert got == db.search(query, **kw)  # type: ignore[arg-type]
    return [m.id for m in got]


def indexed_rows(db: ChatDB) -> int:
    store = IndexStore(imsg.index.index_path(db.path), db.path)
    try:
        return store.count()
    finally:
        store.close()


@pytest.fixture
def chat(sim: SimDB) -> int:
    return sim.chat([ALICE])


def test_the_first_search_builds_the_index_and_later_ones_catch_up(
        sim: SimDB, reader: ChatDB, chat: int) -> None:
    first = sim.receive(chat, ALICE, "Dinner at eight?")
    assert ids(reader, "dinner") == [first]
    assert os.path.exists(imsg.index.index_path(reader.path))
    second = sim.receive(chat, ALICE, "dinner moved to nine")
    assert ids(reader, "DINNER") == [second, first]
    assert indexed_rows(reader) == 2


def test_edits_unsends_and_late_transcripts_are_caught_up(
        sim: SimDB, reader: ChatDB, chat: int) -> None:
    edited = sim.receive(chat, ALICE, "see you at the station")
    unsent = sim.receive(chat, ALICE, "station platform 4")
    voice = sim.receive(chat, ALICE, "", is_audio_message=1, attachments=[
        SimAttachment("Audio Message.caf", "audio/x-caf", create_file=False)])
    assert ids(reader, "station") == [unsent, edited]
    sim.edit(edited, "see you at the airport")
    sim.unsend(unsent)
    sim.conn.execute("UPDATE attachment SET user_info = ?", (_transcript("meet at the station"),))
    assert ids(reader, "station") == [voice]
    assert ids(reader, "airport") == [edited]


def test_an_edit_outside_the_window_is_found_by_the_hourly_sweep(
        sim: SimDB, reader: ChatDB, chat: int, monkeypatch: pytest.MonkeyPatch) -> None:
    old = sim.receive(chat, ALICE, "old news", at=time.time() - 3 * DAY)
    assert ids(reader, "news") == [old]
    sim.edit(old, "fresh news")
    monkeypatch.setattr(sync, "SWEEP_S", 0.0)
    assert ids(reader, "fresh") == [old]


def test_imsg_index_sweeps_every_row(sim: SimDB, reader: ChatDB, chat: int) -> None:
    old = sim.receive(chat, ALICE, "old news", at=time.time() - 3 * DAY)
    assert imsg.index.update(reader).action == "built"
    sim.edit(old, "fresh news")
    info = imsg.index.update(reader)
    assert (info.action, info.rows) == ("updated", 1)
    assert ids(reader, "fresh") == [old]


def test_deleted_rows_leave_the_index(sim: SimDB, reader: ChatDB, chat: int) -> None:
    rows = [sim.receive(chat, ALICE, f"note {i}") for i in range(3)]
    assert ids(reader, "note") == rows[::-1]
    sim.conn.execute("CREATE TABLE IF NOT EXISTS sync_deleted_messages (ROWID INTEGER PRIMARY"
                     " KEY, guid TEXT, recordID TEXT)")
    sim.conn.execute("CREATE TABLE IF NOT EXISTS deleted_messages (ROWID INTEGER PRIMARY KEY,"
                     " guid TEXT)")
    sim.conn.execute("DELETE FROM message WHERE ROWID = ?", (rows[1],))
    assert ids(reader, "note") == [rows[2], rows[0]]
    assert indexed_rows(reader) == 2


def test_a_replaced_database_is_indexed_anew(tmp_path: Path, schema: str) -> None:
    path = tmp_path / "chat.db"
    first = SimDB.create(str(path), schema)
    first.receive(first.chat([ALICE]), ALICE, "from the first database")
    first.close()
    with ChatDB(str(path)) as db:
        assert len(ids(db, "first")) == 1
    other = SimDB.create(str(tmp_path / "other.db"), schema)
    other.receive(other.chat([ALICE]), ALICE, "from the second database")
    other.close()
    os.replace(tmp_path / "other.db", path)
    with ChatDB(str(path)) as db:
        assert ids(db, "first") == []
        assert len(ids(db, "second")) == 1


def test_a_rolled_back_database_in_place_is_indexed_anew(
        sim: SimDB, reader: ChatDB, chat: int, tmp_path: Path) -> None:
    kept = sim.receive(chat, ALICE, "kept message")
    sim.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(sim.path, tmp_path / "backup.db")
    lost = sim.receive(chat, ALICE, "lost message")
    assert ids(reader, "message") == [lost, kept]
    sim.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    sim.close()
    inode = os.stat(reader.path).st_ino
    shutil.copyfile(tmp_path / "backup.db", reader.path)  # same file, older content
    assert os.stat(reader.path).st_ino == inode
    again = SimDB(reader.path)
    reused = again.receive(chat, ALICE, "a new row with an old ROWID")
    again.close()
    assert reused == lost
    with ChatDB(reader.path) as db:
        assert ids(db, "message") == [kept]
        assert ids(db, "ROWID") == [reused]
        assert indexed_rows(db) == 2


def test_another_database_copied_over_in_place_is_indexed_anew(
        sim: SimDB, reader: ChatDB, chat: int, tmp_path: Path, schema: str) -> None:
    sim.receive(chat, ALICE, "original")
    assert len(ids(reader, "original")) == 1
    other = SimDB.create(str(tmp_path / "other.db"), schema)
    other_chat = other.chat([ALICE])
    for i in range(3):  # more rows: the watermark alone would not notice
        other.receive(other_chat, ALICE, f"impostor {i}")
    other.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    other.close()
    sim.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    sim.close()
    shutil.copyfile(tmp_path / "other.db", reader.path)
    with ChatDB(reader.path) as db:
        assert ids(db, "original") == []
        assert len(ids(db, "impostor")) == 3


def test_without_a_usable_index_searches_scan(
        sim: SimDB, reader: ChatDB, chat: int, monkeypatch: pytest.MonkeyPatch) -> None:
    row = sim.receive(chat, ALICE, "plain scan")

    def no_fts5(path: str, db_path: str) -> IndexStore:
        raise IndexUnavailable(path, "no such module: fts5")

    monkeypatch.setattr(IndexStore, "create", staticmethod(no_fts5))
    assert ids(reader, "scan") == [row]
    assert not os.path.exists(imsg.index.index_path(reader.path))
    with pytest.raises(IndexUnavailable, match="fts5"):
        imsg.index.update(reader)


def test_imsg_index_0_turns_the_index_off(
        sim: SimDB, reader: ChatDB, chat: int, monkeypatch: pytest.MonkeyPatch) -> None:
    row = sim.receive(chat, ALICE, "no index")
    monkeypatch.setenv("IMSG_INDEX", "0")
    assert ids(reader, "index") == [row]
    assert not os.path.exists(imsg.index.index_path(reader.path))


def test_an_unwritable_cache_falls_back_to_the_scan(
        sim: SimDB, reader: ChatDB, chat: int, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    row = sim.receive(chat, ALICE, "nowhere to write")
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("IMSG_CACHE_DIR", str(tmp_path / "file"))
    assert ids(reader, "write") == [row]
    with pytest.raises(IndexUnavailable, match="Not a directory"):
        imsg.index.update(reader)


def test_a_damaged_index_file_is_replaced(sim: SimDB, reader: ChatDB, chat: int) -> None:
    row = sim.receive(chat, ALICE, "survives damage")
    assert ids(reader, "damage") == [row]
    imsg.index.close_all()
    Path(imsg.index.index_path(reader.path)).write_bytes(b"not an index" * 1000)
    assert ids(reader, "damage") == [row]
    assert indexed_rows(reader) == 1


def test_an_index_rebuilt_elsewhere_is_reopened(sim: SimDB, reader: ChatDB, chat: int) -> None:
    first = sim.receive(chat, ALICE, "before the rebuild")
    assert ids(reader, "rebuild") == [first]
    second = sim.receive(chat, ALICE, "after the rebuild")
    with ChatDB(reader.path) as other:  # as another process would: a new file, renamed over
        sync.build(imsg.index.index_path(reader.path), other)
    assert ids(reader, "rebuild") == [second, first]


def test_bad_input_is_the_scans_error(sim: SimDB, reader: ChatDB, chat: int) -> None:
    sim.receive(chat, ALICE, "anything")
    with pytest.raises(InvalidInput):
        imsg.index.search(reader, "x", match="fuzzy")
    with pytest.raises(InvalidInput):
        imsg.index.search(reader, "x", limit=0)
    with pytest.raises(ChatNotFound):
        imsg.index.search(reader, "anything", chat_id=999)
    assert imsg.index.search(reader, "   ") == []


def test_a_chat_small_enough_is_scanned_and_a_large_one_searched_through_the_index(
        sim: SimDB, reader: ChatDB, chat: int, monkeypatch: pytest.MonkeyPatch) -> None:
    other = sim.chat(["+15550002222"])
    mine = [sim.receive(chat, ALICE, f"word {i}") for i in range(4)]
    sim.receive(other, None, "word elsewhere")
    for small in (10, 0):
        monkeypatch.setattr(searcher, "SMALL_CHAT", small)
        assert ids(reader, "word", chat_id=chat, limit=3) == mine[:0:-1]


def test_concurrent_searches_agree(sim: SimDB, reader: ChatDB, chat: int) -> None:
    rows = [sim.receive(chat, ALICE, f"thread {i}") for i in range(20)]
    expected = rows[::-1][:5]
    answers: list[list[int]] = []

    def run() -> None:
        answers.append([m.id for m in imsg.index.search(reader, "thread", limit=5)])

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [expected] * 4


def _transcript(text: str) -> bytes:
    import plistlib

    return plistlib.dumps({"audio-transcription": text}, fmt=plistlib.FMT_BINARY)
