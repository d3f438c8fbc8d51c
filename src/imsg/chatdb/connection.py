"""Opening Messages' chat.db read-only, and learning which columns this macOS wrote.

The connection can never write: it is opened with ``mode=ro`` and ``PRAGMA query_only``. It is
never opened ``immutable=1``, which would ignore the WAL and hide every message Messages has not
checkpointed yet. It runs in autocommit mode, so each SELECT is its own short read transaction
and Messages can always checkpoint.

Failure modes, each a typed error (``imsg.errors``):
- no file at the path → ``DatabaseNotFound``;
- macOS refuses the read (``authorization denied``, ``unable to open database file``,
  ``out of memory (14)``, EPERM/EACCES on stat) → ``PermissionDenied`` with Full Disk Access help;
- a file that is not SQLite, SQLite without Messages' tables, or a schema SQLite cannot parse
  (garbled bytes in ``sqlite_master``) → ``NotAMessagesDatabase``;
- a query naming a table or column this database lacks → ``SchemaMismatch``;
- locked past the busy timeout → ``DatabaseBusy``; any other SQLite error → ``DatabaseError``.

Text is decoded with replacement (U+FFFD), never strictly: invalid UTF-8 in one message's text
or in a handle must not make every read that touches it fail.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from imsg.errors import (
    DatabaseBusy,
    DatabaseError,
    DatabaseNotFound,
    NotAMessagesDatabase,
    PermissionDenied,
    SchemaMismatch,
    TooManyOpenFiles,
)

DEFAULT_DB_PATH = "~/Library/Messages/chat.db"
BUSY_TIMEOUT_S = 5.0
REQUIRED_TABLES = ("message", "chat", "handle", "chat_message_join")
_PERMISSION_MARKERS = ("authorization denied", "unable to open database", "out of memory (14)")
_NOT_A_DB_MARKERS = ("file is not a database", "database disk image is malformed",
                     "malformed database schema")
_SCHEMA_MARKERS = ("no such column", "no such table")


def default_db_path() -> str:
    """``$IMSG_DB`` if set, else Messages' own database of the current user."""
    return os.path.expanduser(os.environ.get("IMSG_DB") or DEFAULT_DB_PATH)


@dataclass(frozen=True, slots=True)
class Schema:
    """The columns present in this database, by table: the only source of schema truth."""

    columns: dict[str, frozenset[str]]

    def has(self, table: str, column: str) -> bool:
        return column in self.columns.get(table, frozenset())

    def has_table(self, table: str) -> bool:
        return table in self.columns

    @property
    def profile(self) -> str:
        """A name for the macOS generation that wrote these columns (for diagnostics only)."""
        if self.has_table("chat_service") or self.has("message", "schedule_type"):
            return "macos26+"
        if self.has("message", "associated_message_emoji"):
            return "macos15"
        if self.has("message", "date_edited"):
            return "macos13-14"
        return "legacy"


@contextmanager
def translate_errors(path: str) -> Iterator[None]:
    """The one boundary where sqlite3/OS errors become imsg errors.

    A ``UnicodeDecodeError`` here is SQLite's own error message failing to decode (it quotes a
    garbled table name from ``sqlite_master``), so it is classified by its text like the rest.
    """
    try:
        yield
    except sqlite3.Error as exc:
        raise classify_sqlite_error(path, exc) from exc
    except UnicodeDecodeError as exc:
        text = bytes(exc.object).decode("utf-8", "replace")
        raise classify_sqlite_error(path, sqlite3.DatabaseError(text)) from exc
    except PermissionError as exc:
        raise PermissionDenied(path, exc.strerror or "") from exc


def classify_sqlite_error(path: str, exc: sqlite3.Error) -> DatabaseError:
    text = str(exc)
    lowered = text.lower()
    if any(marker in lowered for marker in _PERMISSION_MARKERS):
        if out_of_descriptors():  # SQLite says "unable to open" for EMFILE too
            return TooManyOpenFiles(f"opening {path}")
        return PermissionDenied(path, text)
    if any(marker in lowered for marker in _NOT_A_DB_MARKERS):
        return NotAMessagesDatabase(path, text)
    if lowered.startswith(_SCHEMA_MARKERS):
        return SchemaMismatch(f"Reading {path} failed: {text} (this chat.db's tables are not"
                              " the ones imsg knows; a macOS update may have changed them)")
    if "locked" in lowered or "busy" in lowered:
        return DatabaseBusy(f"{path} stayed locked for over {BUSY_TIMEOUT_S:g}s: {text}")
    return DatabaseError(f"Reading {path} failed: {text}")


def out_of_descriptors() -> bool:
    """True when this process (or the system) cannot open one more file right now."""
    try:
        os.close(os.open(os.devnull, os.O_RDONLY))
    except OSError as exc:
        return exc.errno in (errno.EMFILE, errno.ENFILE)
    return False


def stat_database(path: str) -> os.stat_result:
    """``os.stat(path)``, its failures as imsg errors: DatabaseNotFound, PermissionDenied
    (EACCES, EPERM: what macOS answers without Full Disk Access), else DatabaseError."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        raise DatabaseNotFound(path) from None
    except OSError as exc:
        if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM):
            raise PermissionDenied(path, exc.strerror or "") from None
        raise DatabaseError(f"Cannot read {path}: {exc.strerror or exc}") from None


def check_readable(path: str) -> None:
    """Raise the right error if ``path`` cannot be a database we can open."""
    st = stat_database(path)
    if not os.path.isfile(path):
        raise NotAMessagesDatabase(path, "not a regular file")
    if st.st_size and not os.access(path, os.R_OK):
        raise PermissionDenied(path, "file not readable")


def connect_readonly(path: str) -> sqlite3.Connection:
    """Open ``path`` read-only in autocommit mode; raises imsg errors only."""
    path = os.path.abspath(os.path.expanduser(path))
    check_readable(path)
    uri = f"file:{quote(path)}?mode=ro"
    with translate_errors(path):
        conn = sqlite3.connect(
            uri,
            uri=True,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=256,
        )
        try:
            conn.execute("PRAGMA query_only = 1")
        except BaseException:
            conn.close()
            raise
    return conn


def _lenient_text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


@contextmanager
def lenient_text(conn: sqlite3.Connection) -> Iterator[None]:
    """Within: text that is not UTF-8 reads with invalid bytes replaced (for a cursor read in
    steps, which ``fetch_all`` cannot retry)."""
    conn.text_factory = _lenient_text
    try:
        yield
    finally:
        conn.text_factory = str


def fetch_all(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """``conn.execute(sql, params).fetchall()``, decoding text at C speed; a result holding
    text that is not UTF-8 (a poison row) is read again with invalid bytes replaced (U+FFFD),
    so one bad row never fails a whole query."""
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "decode" not in str(exc).lower():
            raise
    conn.text_factory = _lenient_text
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.text_factory = str


def probe_schema(conn: sqlite3.Connection, path: str) -> Schema:
    """Read the column names of every table; raise if Messages' core tables are missing.

    Names that are not text (a corrupt ``sqlite_master``) are ignored; a schema SQLite cannot
    parse raises ``NotAMessagesDatabase``."""
    with translate_errors(path):
        tables = [
            row[0] for row in fetch_all(conn, "SELECT name FROM sqlite_master WHERE type = 'table'")
            if isinstance(row[0], str) and '"' not in row[0]
        ]
        columns = {
            table.lower(): frozenset(
                row[1] for row in fetch_all(conn, f'PRAGMA table_info("{table}")')
                if isinstance(row[1], str)
            )
            for table in tables
        }
    missing = [table for table in REQUIRED_TABLES if table not in columns]
    if missing:
        raise NotAMessagesDatabase(path, f"missing table(s) {', '.join(missing)}")
    return Schema(columns)

