"""Edits and unsends: rows Messages changes in place, which a ROWID cursor never sees again.

Each delivered row's ``date_edited``/``date_retracted`` pair is a per-row high-water mark: when a
row at or below the cursor shows a pair this watcher has not seen, it is rebuilt, and if what a
consumer would see changed (``edited_at``/``retracted_at``), it is reported once. The kind comes
from the built message, not the column: macOS 26 marks an unsend with ``date_edited`` and leaves
``date_retracted`` at 0, and the reader turns that into ``retracted_at``.

Only rows dated within ``WINDOW_S`` are scanned (Messages allows edits for 15 minutes and unsends
for 2): the scan is a ROWID range over recent rows, cheap however large the database. An edit of
an older message (e.g. synced after a day offline) is not reported. A changed row that cannot be
read any more is passed over.
"""

from __future__ import annotations

import time

import msgspec

from imsg.chatdb.models import Message
from imsg.chatdb.reader import ChatDB
from imsg.watch.rows import Unreadable, read_rowids

WINDOW_S = 24 * 3600
FLOOR_REFRESH_S = 60.0

Marks = tuple[int, int]
Shown = tuple[str | None, str | None]


class UpdateTracker:
    """Remembers what this watcher has shown of each recent row; reports each change once."""

    def __init__(self) -> None:
        self._marks: dict[int, Marks] = {}
        self._shown: dict[int, Shown] = {}
        self._floor = 0
        self._floor_at = float("-inf")

    def prime(self, db: ChatDB, upto: int) -> None:
        """Take the current state of rows at or below ``upto`` as already known."""
        self._refresh_floor(db, upto, force=True)
        for rowid, edited, retracted in db.edit_marks(self._floor, upto):
            self._marks[rowid] = (edited, retracted)

    def delivered(self, message: Message) -> None:
        """Record the edit state a newly delivered message already had."""
        if message.edited_at or message.retracted_at:
            self._shown[message.id] = (message.edited_at, message.retracted_at)

    def changes(self, db: ChatDB, upto: int,
                chat_id: int | None = None) -> list[tuple[Message, int | None]]:
        """Rows at or below ``upto`` whose edit state changed since last shown, ``event`` set;
        each once, with its lowest chat (or ``chat_id``, leaving out rows not in it)."""
        self._refresh_floor(db, upto)
        moved = []
        for rowid, edited, retracted in db.edit_marks(self._floor, upto):
            if self._marks.get(rowid) != (edited, retracted):
                self._marks[rowid] = (edited, retracted)
                moved.append(rowid)
        if not moved:
            return []
        rows = [item for item in read_rowids(db, moved, chat_id=chat_id, reactions=True)
                if not isinstance(item, Unreadable)]
        fresh = {m.id for m, _ in rows
                 if self._shown.get(m.id, (None, None)) != (m.edited_at, m.retracted_at)}
        changed = []
        for message, date_ns in rows:
            if message.id in fresh:
                self._shown[message.id] = (message.edited_at, message.retracted_at)
                event = "retracted" if message.retracted_at else "edited"
                changed.append((msgspec.structs.replace(message, event=event), date_ns))
        return changed

    def _refresh_floor(self, db: ChatDB, upto: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._floor_at < FLOOR_REFRESH_S:
            return
        self._floor_at = now
        oldest = db.oldest_rowid_since(time.time_ns() - WINDOW_S * 1_000_000_000)
        self._floor = upto if oldest is None else max(self._floor, oldest - 1)
        self._marks = {k: v for k, v in self._marks.items() if k > self._floor}
        self._shown = {k: v for k, v in self._shown.items() if k > self._floor}
