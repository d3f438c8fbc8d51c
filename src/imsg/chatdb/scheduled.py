"""``imsg scheduled list`` / RPC ``messages.scheduled``: Send Later messages still to go.

A scheduled message is a row Messages marks with ``schedule_type``/``schedule_state`` (macOS
15+) dated now or later; they come soonest first. Read-only: nothing here can change or cancel
one. Failure mode: a database without those columns raises UnsupportedByDatabase
(``feature`` "scheduled").
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from imsg.chatdb import decode
from imsg.chatdb.assemble import small_int
from imsg.chatdb.dates import iso_from_apple
from imsg.chatdb.models import ScheduledMessage
from imsg.errors import UnsupportedByDatabase

if TYPE_CHECKING:
    from imsg.chatdb.reader import ChatDB

UNAVAILABLE = ("Scheduled messages are unavailable because this Messages database has no"
               " message.schedule_type/schedule_state columns")


def scheduled_messages(db: ChatDB, limit: int) -> list[ScheduledMessage]:
    if not db.q.has_schedule:
        raise UnsupportedByDatabase("scheduled", UNAVAILABLE)
    rows = db.rows(db.q.scheduled(), (db.bound(time.time_ns()), limit))
    refs = db.chat_refs(row[-1] for row in rows if row[-1])
    found = []
    for rowid, guid, text, body, service, date, kind, state, chat_id in rows:
        ref = refs.get(chat_id or 0)
        found.append(ScheduledMessage(
            id=rowid,
            guid=guid if isinstance(guid, str) else "",
            chat_id=ref.id if ref else 0,
            chat_identifier=ref.identifier if ref else "",
            chat_guid=ref.guid if ref else "",
            chat_name=ref.display_name if ref else "",
            text=decode.row_text(text, body),
            service=service if isinstance(service, str) else "",
            scheduled_at=iso_from_apple(date) or "",
            schedule_type=small_int(kind),
            schedule_state=small_int(state),
        ))
    return found
