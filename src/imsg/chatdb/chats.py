"""Chats: the chat context of messages, the ``chats``/``group`` payloads and unread counts.

Names follow the Swift tool (0.15) on purpose, including its asymmetry: a chat's ``name`` is
its title, or its identifier when the title is NULL or empty; ``display_name`` (and a message's
``chat_name``, and a group's ``name``) keep a stored empty title as ``""`` and fall back to the
identifier only for NULL.

``unread_count`` is the number of logical unread inbound messages: rows with ``is_from_me = 0``
and ``is_read = 0``, system events (``item_type`` ≠ 0) excluded, tapbacks Messages left unread
included (as the Swift tool counts them), and a link-preview row that belongs to its text row
(``previews.belongs_to``) never counted on its own. Every count is computed from Apple's
``(is_read, is_from_me, item_type)`` index in one query per page, whatever the page size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imsg.chatdb.dates import iso_from_apple
from imsg.chatdb.models import Chat, Group
from imsg.chatdb.previews import belongs_to
from imsg.errors import UnsupportedByDatabase

if TYPE_CHECKING:
    from imsg.chatdb.reader import ChatDB

UNREAD_UNAVAILABLE = ("Unread filtering is unavailable because this Messages database has no"
                      " message.is_read column")
_BATCH = 450  # pairs of bound parameters per query stay under SQLite's 999 limit


@dataclass(frozen=True, slots=True)
class ChatRef:
    """The chat context merged into every message."""

    id: int
    identifier: str
    guid: str
    name: str  # the title, or the identifier when the title is NULL or ""
    display_name: str  # the title as stored ("" stays ""), the identifier only for NULL
    service: str
    is_group: bool
    participants: list[str]
    account_id: str | None
    account_login: str | None
    last_addressed_handle: str | None
    last_date: int | None = None


UNJOINED = ChatRef(0, "", "", "", "", "", False, [], None, None, None)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def chat_ref(row: Sequence[Any], participants: list[str]) -> ChatRef:
    """A ChatRef from a ``Queries.chat_columns`` row (+ last activity)."""
    rowid, identifier, guid, display, service, style, acct, login, last_handle, last = row
    identifier, guid = _text(identifier), _text(guid)
    return ChatRef(
        id=rowid,
        identifier=identifier,
        guid=guid,
        name=_text(display) or identifier,
        display_name=identifier if display is None else _text(display),
        service=_text(service),
        is_group=style == 43 or ";+;" in guid or ";+;" in identifier,
        participants=participants,
        account_id=_text(acct) or None,
        account_login=_text(login) or None,
        last_addressed_handle=_text(last_handle) or None,
        last_date=last if isinstance(last, int) and not isinstance(last, bool) else None,
    )


def chat_payload(ref: ChatRef, *, unread: int | None, contact_name: str | None) -> Chat:
    return Chat(
        id=ref.id,
        name=ref.name,
        identifier=ref.identifier,
        service=ref.service,
        last_message_at=iso_from_apple(ref.last_date) or "",
        guid=ref.guid or None,
        display_name=ref.display_name,
        contact_name=contact_name,
        is_group=ref.is_group,
        participants=ref.participants,
        account_id=ref.account_id,
        account_login=ref.account_login,
        last_addressed_handle=ref.last_addressed_handle,
        unread_count=unread,
    )


def group_payload(ref: ChatRef) -> Group:
    return Group(
        id=ref.id,
        identifier=ref.identifier,
        guid=ref.guid,
        name=ref.display_name,
        service=ref.service,
        is_group=ref.is_group,
        participants=ref.participants,
        account_id=ref.account_id,
        account_login=ref.account_login,
        last_addressed_handle=ref.last_addressed_handle,
    )


def list_chats(db: ChatDB, limit: int, *, unread_only: bool) -> list[Chat]:
    """Chats by newest activity (any row, tapbacks included); chats without rows excluded.

    ``unread_only`` keeps the chats whose ``unread_count`` is above 0; it raises
    UnsupportedByDatabase (``feature`` "unread") on a database without ``message.is_read``.
    """
    has_read_state = db.q.has_read_state
    if unread_only:
        if not has_read_state:
            raise UnsupportedByDatabase("unread", UNREAD_UNAVAILABLE)
        counts = unread_counts(db, None)
        candidates = sorted(chat_id for chat_id, count in counts.items() if count > 0)
        rows: list[tuple[Any, ...]] = []
        for chunk in _chunks(candidates, 900):
            rows.extend(db.rows(db.q.recent_chats(len(chunk)), [*chunk, limit]))
        rows.sort(key=lambda row: (row[-1] or 0, row[0]), reverse=True)
        rows = rows[:limit]
    else:
        rows = db.rows(db.q.recent_chats(), (limit,))
        counts = unread_counts(db, [row[0] for row in rows]) if has_read_state else {}
    refs = db.refs(rows)
    names = db.contact_names(ref.identifier if not ref.is_group else None for ref in refs)
    return [
        chat_payload(ref, unread=counts.get(ref.id, 0) if has_read_state else None,
                     contact_name=_direct_contact(ref, names))
        for ref in refs
    ]


def _direct_contact(ref: ChatRef, names: dict[str, str]) -> str | None:
    """Direct chats only: the name of the identifier, else of the single participant."""
    if ref.is_group:
        return None
    if ref.identifier in names:
        return names[ref.identifier]
    if len(ref.participants) == 1:
        return names.get(ref.participants[0])
    return None


def unread_counts(db: ChatDB, chat_ids: list[int] | None) -> dict[int, int]:
    """Logical unread inbound messages per chat: for ``chat_ids``, or every chat when None
    (chats without unread rows are absent). Needs ``message.is_read``."""
    rows: list[tuple[Any, ...]] = []
    if chat_ids is None:
        rows = db.rows(db.q.unread_rows(None))
    else:
        for chunk in _chunks(sorted(set(chat_ids)), 900):
            rows.extend(db.rows(db.q.unread_rows(len(chunk)), chunk))
    counts: dict[int, int] = {}
    previews: list[tuple[int, int]] = []
    for chat_id, count, preview_ids in rows:
        counts[chat_id] = count
        if preview_ids:
            previews.extend((chat_id, int(rowid)) for rowid in str(preview_ids).split(","))
    for chat_id, _ in _folded_previews(db, previews):
        counts[chat_id] -= 1
    return counts


def _folded_previews(db: ChatDB, previews: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """The (chat, ROWID) preview rows that belong to their text row."""
    folded: set[tuple[int, int]] = set()
    for chunk in _chunks(previews, _BATCH):
        partners = db.preceding_text_rows(chunk)
        dated = db.dated_in_chats([*chunk, *((chat, tid) for (chat, _), tid in partners.items())])
        for pair, text_id in partners.items():
            preview, text = dated.get(pair), dated.get((pair[0], text_id))
            if preview and text and belongs_to(preview[0], preview[1], text[0], text[1]):
                folded.add(pair)
    return folded


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
