"""Create empty chat.db files from Apple's real DDL (shipped in ``imsg/chatdb/schema``).

``ventura`` is the full schema of a macOS 13 chat.db (tables, indexes, triggers). ``tahoe`` is the
macOS 26 table set; its capture has no indexes or triggers, so the Ventura ones are added where
their tables and columns exist, as Messages itself keeps them.
"""

from __future__ import annotations

import os
import sqlite3

SCHEMAS = ("ventura", "tahoe")

# Triggers call these; they only exist inside Messages.app. No-ops let deletes work.
_APP_FUNCTIONS = {
    "after_delete_message_plugin": 2,
    "before_delete_attachment_path": 2,
    "delete_attachment_path": 1,
}


def _ddl(name: str) -> str:
    from importlib import resources

    return (resources.files("imsg.chatdb") / "schema" / f"{name}.sql").read_text("utf-8")


def _statements(ddl: str, prefix: str) -> list[str]:
    return [line for line in ddl.splitlines() if line.startswith(prefix)]


def register_app_functions(conn: sqlite3.Connection) -> None:
    for name, nargs in _APP_FUNCTIONS.items():
        conn.create_function(name, nargs, lambda *_: None, deterministic=True)


def create_database(path: str, schema: str = "ventura") -> sqlite3.Connection:
    """Create a new, empty chat.db at ``path`` (which must not exist) in WAL mode.

    Returns a writable connection with Messages' app functions registered.
    Raises ``ValueError`` for an unknown schema and ``FileExistsError`` if ``path`` exists.
    """
    if schema not in SCHEMAS:
        raise ValueError(f"unknown schema {schema!r}; choose one of {', '.join(SCHEMAS)}")
    if os.path.exists(path):
        raise FileExistsError(f"{path} already exists")
    conn = open_writable(path)
    ventura = _ddl("ventura")
    conn.execute("PRAGMA journal_mode = WAL")
    if schema == "ventura":
        tables = [s for s in _statements(ventura, "CREATE TABLE") if "sqlite_sequence" not in s]
        conn.executescript("\n".join(tables))
    else:
        conn.executescript(_ddl("tahoe"))
    for statement in _statements(ventura, "CREATE INDEX") + _statements(ventura, "CREATE TRIGGER"):
        try:
            conn.execute(statement)
        except sqlite3.OperationalError:
            # An index or trigger over a column this schema does not have: Messages has none.
            continue
    conn.commit()
    return conn


def open_writable(path: str) -> sqlite3.Connection:
    """A writer connection like Messages' own: WAL, busy timeout, app functions present."""
    conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
    register_app_functions(conn)
    return conn
