"""Reading message rows past a cursor for the watcher and for paging, poison rows included.

Two things the reader leaves to its callers are settled here, once for both:

- **One row per message.** A message joined to several chats comes back once per chat; it is
  kept once, with the lowest chat id (or, under a chat filter, that chat).
- **Rows that cannot be read.** If building a page fails with anything but an imsg error (a
  corrupt value the decoders choke on), the page is rebuilt row by row and each row that still
  fails becomes an ``Unreadable`` item in its place, so one poison row never stops the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from imsg.chatdb.models import Message
from imsg.chatdb.reader import ChatDB
from imsg.errors import ImsgError

Row = tuple[Message, int | None]


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A message row that cannot be turned into a Message (``error`` says why)."""

    rowid: int
    guid: str
    error: str


Item = Row | Unreadable


def read_after(db: ChatDB, after: int, *, limit: int, chat_id: int | None,
               reactions: bool, attachments: bool = True) -> tuple[list[Item], bool]:
    """Rows with ROWID > ``after`` in ROWID order (at most ``limit``), and whether the read was
    cut short by ``limit`` (more rows may follow the last item). Unjoined rows come back with
    ``chat_id`` 0; ``attachments=False`` leaves attachment lists empty. Raises only imsg
    errors."""
    try:
        rows = db.messages_after(after, limit=limit, chat_id=chat_id, reactions=reactions,
                                 attachments=attachments)
    except ImsgError:
        raise
    except Exception:
        keys = db.message_keys_after(after, limit)
        return _one_by_one(db, keys, chat_id, reactions, attachments), len(keys) >= limit
    full = len(rows) >= limit
    items: list[Item] = list(_one_per_message(rows, chat_id))
    if full and items:
        last = items[-1]
        assert not isinstance(last, Unreadable)
        if any(not isinstance(i, Unreadable) and i[0].id != last[0].id for i in items):
            # The LIMIT may have cut the last message's rows for its other chats: leave it to
            # the next read, which starts right before it.
            items.pop()
        else:
            items = read_rowids(db, [last[0].id], chat_id=chat_id, reactions=reactions,
                                attachments=attachments)
    return items, full


def read_rowids(db: ChatDB, rowids: Sequence[int], *, chat_id: int | None,
                reactions: bool, attachments: bool = True) -> list[Item]:
    """These rows (those still in the database), one item each, in ROWID order; a row joined
    only to chats other than ``chat_id``, or a tapback without ``reactions``, is left out.
    Raises only imsg errors."""
    try:
        rows = db.messages_by_rowid(rowids, attachments=attachments)
    except ImsgError:
        raise
    except Exception:
        return _one_by_one(db, [(rowid, "") for rowid in rowids], chat_id, reactions,
                           attachments)
    return list(_one_per_message(_wanted(rows, chat_id, reactions), chat_id))


def _one_by_one(db: ChatDB, keys: Sequence[tuple[int, str]], chat_id: int | None,
                reactions: bool, attachments: bool = True) -> list[Item]:
    items: list[Item] = []
    for rowid, guid in keys:
        try:
            rows = db.messages_by_rowid([rowid], attachments=attachments)
        except ImsgError:
            raise
        except Exception as exc:
            items.append(Unreadable(rowid, guid, f"{type(exc).__name__}: {exc}"))
            continue
        items.extend(_one_per_message(_wanted(rows, chat_id, reactions), chat_id))
    return items


def _wanted(rows: list[Row], chat_id: int | None, reactions: bool) -> list[Row]:
    return [(m, d) for m, d in rows
            if (reactions or not m.is_reaction)
            and (chat_id is None or m.chat_id in (chat_id, 0))]


def _one_per_message(rows: list[Row], chat_id: int | None) -> list[Row]:
    """Rows of one message are adjacent (ROWID order): keep the one with the lowest chat id
    (the filter's chat when there is one), the unjoined one only if it is all there is."""
    kept: list[Row] = []
    for row in rows:
        if kept and kept[-1][0].id == row[0].id:
            if _better(row[0].chat_id, kept[-1][0].chat_id, chat_id):
                kept[-1] = row
        else:
            kept.append(row)
    return kept


def _better(candidate: int, current: int, wanted: int | None) -> bool:
    if wanted is not None:
        return candidate == wanted and current != wanted
    if current == 0:
        return candidate != 0
    return candidate != 0 and candidate < current
