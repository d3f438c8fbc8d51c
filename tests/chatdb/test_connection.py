"""Opening chat.db: read-only for real, and every way it can fail becomes one typed error."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from imsg.chatdb.connection import connect_readonly, default_db_path
from imsg.chatdb.reader import ChatDB
from imsg.errors import (
    FULL_DISK_ACCESS_HELP,
    DatabaseBusy,
    DatabaseNotFound,
    NotAMessagesDatabase,
    PermissionDenied,
)
from imsg.sim.messages import SimDB


def test_connection_cannot_write(sim: SimDB) -> None:
    conn = connect_readonly(sim.path)
    with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only|query_only"):
        conn.execute("INSERT INTO handle (id, service) VALUES ('x', 'SMS')")
    conn.close()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatabaseNotFound, match="No Messages database at"):
        ChatDB(str(tmp_path / "nope.db"))


def test_garbage_file_is_not_a_messages_database(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(NotAMessagesDatabase, match="not a Messages database"):
        ChatDB(str(path))


def test_sqlite_without_messages_tables(tmp_path: Path) -> None:
    path = str(tmp_path / "other.db")
    sqlite3.connect(path).executescript("CREATE TABLE notes (body TEXT);")
    with pytest.raises(NotAMessagesDatabase, match="missing table"):
        ChatDB(path)


def test_directory_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(NotAMessagesDatabase, match="not a regular file"):
        ChatDB(str(tmp_path))


@pytest.mark.parametrize(
    "message",
    [
        "authorization denied",
        "unable to open database file",
        "out of memory (14)",
    ],
)
def test_macos_open_failures_mean_full_disk_access(
    sim: SimDB, monkeypatch: pytest.MonkeyPatch, message: str
) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise sqlite3.OperationalError(message)

    monkeypatch.setattr(sqlite3, "connect", refuse)
    with pytest.raises(PermissionDenied) as info:
        ChatDB(sim.path)
    assert FULL_DISK_ACCESS_HELP in str(info.value)


def test_stat_refused_means_permission(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("imsg.chatdb.connection.os.stat", refuse)
    with pytest.raises(PermissionDenied, match="Full Disk Access"):
        ChatDB(str(tmp_path / "chat.db"))


def test_locked_database_is_busy(sim: SimDB) -> None:
    sim.conn.execute("PRAGMA journal_mode = DELETE")  # WAL readers are never blocked
    reader = ChatDB(sim.path)
    reader._conn.execute("PRAGMA busy_timeout = 50")
    locker = sqlite3.connect(sim.path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(DatabaseBusy, match="locked"):
            reader.chats()
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        reader.close()


def test_default_path_comes_from_env_then_home(
    monkeypatch: pytest.MonkeyPatch, isolated_home: Path
) -> None:
    assert default_db_path() == str(isolated_home / "Library/Messages/chat.db")
    monkeypatch.setenv("IMSG_DB", "~/elsewhere.db")
    assert default_db_path() == str(isolated_home / "elsewhere.db")
