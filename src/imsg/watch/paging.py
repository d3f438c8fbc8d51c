"""Resumable paging by ROWID (RPC ``messages.after``), on the watcher's rules.

``page_after`` decides every row with the same ``Sequencer`` as ``Watcher`` (one row per message
with its lowest chat, no ``chat_id`` 0, link previews folded into their text row, a preview
whose text row lies before the page or that repeats an earlier one never delivered on its own,
Recently Deleted rows passed over), so paging from a cursor and a watcher replaying from it
deliver the same messages.

``next_rowid`` is the physical scan cursor: it may lie past the last returned message (rows
passed over), and a page may be empty while ``has_more`` is true. Persist ``next_rowid`` after
every page and ask again while ``has_more`` is true.

A young unjoined row stops a page. Messages writes a row's join a moment (occasionally
seconds) after the row; paging is stateless, so it cannot hold such a row back while later ones
flow the way the watcher does. Instead ``next_rowid`` never passes a row that is not joined yet
and is dated within ``horizon_s`` of now: the page ends just before it, with ``has_more`` false
and ``waiting_on`` naming it (nothing more can be delivered right now: ask again later, or hand
``next_rowid`` to a watcher, which holds such rows itself). An unjoined row dated longer ago is
given up: it is listed in ``skipped`` and ``next_rowid`` moves past it. Known gap: a message
synced late carries its old send date, so a page that reads it between its row and its join
gives it up where a live watcher would wait. A row the reader cannot turn into a message is
listed in ``skipped`` too. A text row whose link preview is not written yet is returned as it is
(the preview, once written, belongs to it and is not returned on its own), as a replaying
watcher does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from imsg.chatdb.models import Message
from imsg.chatdb.reader import ChatDB
from imsg.errors import InvalidInput
from imsg.watch.engine import HORIZON_S
from imsg.watch.events import SkippedRow
from imsg.watch.rows import Unreadable, read_after
from imsg.watch.sequencer import AwaitPreview, Emit, Sequencer, Unjoined, is_recent

MAX_LIMIT = 500


@dataclass(frozen=True, slots=True)
class Page:
    """One page: ``messages`` in ROWID order (at most ``limit``), where to continue, whether
    to continue now, the rows given up, and the young unjoined row the page stopped at."""

    messages: list[Message]
    next_rowid: int
    has_more: bool
    skipped: list[SkippedRow] = field(default_factory=list)
    waiting_on: int | None = None


def page_after(db: ChatDB, since_rowid: int, *, chat_id: int | None = None, limit: int = 100,
               reactions: bool = False, attachments: bool = True, horizon_s: float = HORIZON_S,
               now_ns: int | None = None) -> Page:
    """Messages with ROWID > ``since_rowid`` (in ``chat_id`` only, when given), in ROWID order.

    ``reactions`` includes tapback rows as reaction events; ``attachments=False`` leaves
    attachment lists empty (their files are not looked at). ``now_ns`` (Unix ns, default the
    clock) decides which rows are young. Raises ``InvalidInput`` for ``limit`` outside
    1..``MAX_LIMIT`` and the reader's errors (``DatabaseError`` family)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer between 1 and {MAX_LIMIT}")
    now_ns = time.time_ns() if now_ns is None else now_ns
    sequencer = Sequencer()
    messages: list[Message] = []
    skipped: list[SkippedRow] = []
    scan = since_rowid
    spare = 0
    while True:
        newest = db.max_rowid()
        # Enough rows for what is still wanted plus the one that tells whether more follow (and
        # one more: the last row of a full read waits for the next, in case it has more chats);
        # more each time rows were passed over, so a long run of them takes few reads.
        wanted = limit - len(messages) + 2 + spare
        spare = min(2 * spare or 16, 1000)
        batch, full = read_after(db, scan, limit=wanted, chat_id=chat_id, reactions=reactions,
                                 attachments=attachments)
        for index, item in enumerate(batch):
            if isinstance(item, Unreadable):
                skipped.append(SkippedRow(item.rowid, item.guid, "unreadable",
                                          f"message {item.rowid} cannot be read ({item.error})"))
                scan = item.rowid
                continue
            message, date_ns = item
            decision = sequencer.decide(db, batch, index, complete=not full)
            if isinstance(decision, Unjoined):
                if is_recent(date_ns, horizon_s, now_ns):
                    return Page(messages, scan, False, skipped, message.id)
                skipped.append(SkippedRow(message.id, message.guid, "never_joined",
                                          f"message {message.id} is not joined to any chat"))
                scan = message.id
                continue
            if isinstance(decision, AwaitPreview):
                decision = Emit(decision.message)
            if isinstance(decision, Emit):
                if len(messages) == limit:
                    return Page(messages, scan, True, skipped)
                messages.append(decision.message)
            scan = message.id
        if not full:
            return Page(messages, max(scan, newest), False, skipped)
