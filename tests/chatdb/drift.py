"""Changing a simulated chat.db's schema the way a macOS update might (renamed columns/tables)."""

from __future__ import annotations

import re
import sqlite3

_BROKEN_TRIGGER = re.compile(r"error in trigger (\w+)")


def rename(conn: sqlite3.Connection, statement: str) -> None:
    """Run an ``ALTER TABLE … RENAME …``. SQLite rewrites every trigger on a rename, and the
    Tahoe capture carries Ventura triggers naming tables it lacks: those are dropped first."""
    while True:
        try:
            conn.execute(statement)
            return
        except sqlite3.OperationalError as err:
            broken = _BROKEN_TRIGGER.search(str(err))
            if broken is None:
                raise
            conn.execute(f"DROP TRIGGER {broken.group(1)}")
