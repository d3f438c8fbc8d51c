"""Did Messages really write what we sent? Poll chat.db for the new outgoing rows.

The caller records ``max_rowid()`` before osascript runs; only rows above it are looked at
(ROWID is AUTOINCREMENT, so they are exactly the rows written since), every ``interval_s``,
for up to ``timeout_s`` (8 s by default, as the Swift tool waits). A row matches by direction
(``is_from_me``), by place (the target chat, or the recipient's direct chat for a handle,
joined: a new recipient's chat must become visible before its row counts), by route (after an
SMS fallback only SMS/RCS rows) and by content: the decoded text (the ``text`` column is NULL
on recent macOS, the reader decodes ``attributedBody``) or the file's name. A file part
matched by more than one new row in the chat (the same file name sent twice at once) is
ambiguous and never confirmed.

The macOS 26 ghost row (Swift imsg #90): a group's guid is ``any;+;chat…`` in chat.db but
``any;-;chat…`` to AppleScript, and a send to it "succeeds" while Messages writes an empty,
unjoined outgoing row whose handle is the chat string. For chat targets such a row, still
unjoined after ``GHOST_GRACE_S``, is reported as failure instead of waiting out the clock.

Failure modes: SendNotConfirmed (``may_have_completed``: ghost row, an ambiguous file, or no
matching row by the deadline); SendInterrupted when ``children.terminate_all`` ran while
waiting; the reader's DatabaseError family when chat.db cannot be read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from imsg.chatdb.models import Message
from imsg.chatdb.reader import ChatDB
from imsg.errors import SendNotConfirmed
from imsg.send import children

T = TypeVar("T")

VERIFY_TIMEOUT_S = 8.0
REACTION_TIMEOUT_S = 2.0
POLL_INTERVAL_S = 0.02
GHOST_GRACE_S = 0.2
_PAGE = 500


@dataclass(frozen=True, slots=True)
class Scope:
    """Where the sent rows must land: the chat (``chat_id``) and/or the recipient's direct
    chat (``handle``); ``services`` (casefolded, empty: any) the rows' service must be one of.
    ``ghost_names``: handle ids a ghost row would carry (chat sends)."""

    chat_id: int | None = None
    handle: str | None = None
    services: frozenset[str] = frozenset()
    ghost_names: frozenset[str] = frozenset()

    def holds(self, row: Message) -> bool:
        if self.services and (row.service or "").casefold() not in self.services:
            return False
        if row.chat_id and row.chat_id == self.chat_id:
            return True
        return bool(self.handle and row.chat_id and not row.is_group
                    and row.chat_identifier.casefold() == self.handle.casefold())


@dataclass(frozen=True, slots=True)
class Part:
    """One row a send writes: its text, or (``is_file``) the file name it carries."""

    value: str
    is_file: bool = False

    def matches(self, row: Message) -> bool:
        if self.is_file:
            return any(a.transfer_name == self.value for a in row.attachments)
        return not row.attachments and row.text.strip() == self.value.strip()


@dataclass(frozen=True, slots=True)
class Confirmed:
    """The verified row (the first part's): its ROWID, guid, chat and service."""

    id: int
    guid: str
    chat_id: int
    chat_guid: str
    service: str | None


def new_rows(db: ChatDB, after_rowid: int, *, reactions: bool = False) -> list[Message]:
    """Every row with ROWID > ``after_rowid``, in ROWID order."""
    rows: list[Message] = []
    cursor = after_rowid
    while True:
        page = [message for message, _ in db.messages_after(cursor, limit=_PAGE,
                                                             reactions=reactions)]
        rows.extend(page)
        if len(page) < _PAGE:
            return rows
        cursor = page[-1].id


def poll(check: Callable[[bool], T | None], *, timeout_s: float, interval_s: float,
         doing: str = "confirming the send in chat.db") -> T | None:
    """Call ``check(final)`` until it returns a value or the deadline passes; ``final`` is
    True on the last call, made at or after the deadline. Raises SendInterrupted
    (``may_have_completed``) as soon as ``children.terminate_all`` has run."""
    deadline = time.monotonic() + timeout_s
    while True:
        children.check_stopped("may_have_completed", doing)
        final = time.monotonic() >= deadline
        result = check(final)
        if result is not None or final:
            return result
        time.sleep(max(0.0, min(interval_s, deadline - time.monotonic())))


class _Ambiguous(Exception):
    """A file part matched several new rows."""


def confirm_send(db: ChatDB, after_rowid: int, scope: Scope, parts: Sequence[Part], *,
                 what: str, timeout_s: float = VERIFY_TIMEOUT_S,
                 interval_s: float = POLL_INTERVAL_S) -> Confirmed:
    """The row of ``parts[0]`` once every part has a matching row; raises SendNotConfirmed."""
    ghosts_seen: dict[int, float] = {}

    def check(final: bool) -> Confirmed | None:
        rows = [row for row in new_rows(db, after_rowid) if row.is_from_me]
        try:
            found = _assign(rows, scope, parts)
        except _Ambiguous:
            raise SendNotConfirmed(
                f"Messages accepted the file for {what}, but several new outgoing rows in the "
                "chat carry its name, so which one is ours cannot be told; it may have been "
                "sent: check the chat before retrying") from None
        if found is not None:
            first = found[0]
            return Confirmed(first.id, first.guid, first.chat_id, first.chat_guid,
                             first.service)
        now = time.monotonic()
        for row in rows:
            if _is_ghost(row, scope):
                since = ghosts_seen.setdefault(row.id, now)
                if final or now - since >= GHOST_GRACE_S:
                    raise SendNotConfirmed(
                        f"Messages accepted the send to {what} but wrote an unjoined empty "
                        f"outgoing row ({row.id}) addressed to {row.sender}; delivery to the "
                        "chat was not confirmed (macOS 26 any;+; / any;-; chat guid mismatch)")
        return None

    confirmed = poll(check, timeout_s=timeout_s, interval_s=interval_s)
    if confirmed is None:
        raise SendNotConfirmed(
            f"Messages accepted the send to {what} but no matching outgoing row appeared in "
            f"chat.db within {timeout_s:g}s; it may have been sent: check the chat before "
            "retrying")
    return confirmed


def _assign(rows: Sequence[Message], scope: Scope,
            parts: Sequence[Part]) -> list[Message] | None:
    """One distinct row per part, in part order, or None while any part lacks one. Raises
    _Ambiguous when a file part has more than one candidate."""
    taken: set[int] = set()
    found: list[Message] = []
    for part in parts:
        candidates = [row for row in rows
                      if row.id not in taken and part.matches(row) and scope.holds(row)]
        if not candidates:
            return None
        if part.is_file and len(candidates) > 1:
            raise _Ambiguous
        taken.add(candidates[0].id)
        found.append(candidates[0])
    return found


def _is_ghost(row: Message, scope: Scope) -> bool:
    return (not row.chat_id and not row.attachments and not row.text.strip()
            and row.sender in scope.ghost_names)


def ghost_names(guid: str, identifier: str) -> frozenset[str]:
    """Handle ids a ghost row of this chat may carry: guid and identifier, each with the
    ``;+;``/``;-;`` polarity toggled, and the identifier without its ``any;±;`` prefix."""
    names: set[str] = set()
    for name in (guid, identifier):
        if not name:
            continue
        names.add(name)
        if ";+;" in name:
            names.add(name.replace(";+;", ";-;", 1))
        elif ";-;" in name:
            names.add(name.replace(";-;", ";+;", 1))
        names.add(name.split(";", 2)[-1])
    return frozenset(names)


def confirm_reaction(db: ChatDB, after_rowid: int, chat_id: int, kind: str, *,
                     timeout_s: float = REACTION_TIMEOUT_S,
                     interval_s: float = POLL_INTERVAL_S) -> Message:
    """Our new ``kind`` tapback row in ``chat_id``; raises SendNotConfirmed."""

    def check(_: bool) -> Message | None:
        for row in new_rows(db, after_rowid, reactions=True):
            if (row.is_from_me and row.chat_id == chat_id and row.is_reaction
                    and row.is_reaction_add and row.reaction_type == kind):
                return row
        return None

    found = poll(check, timeout_s=timeout_s, interval_s=interval_s,
                 doing="confirming the tapback in chat.db")
    if found is None:
        raise SendNotConfirmed(
            f"Messages ran the {kind} tapback keystrokes but no tapback row appeared in chat "
            f"{chat_id} within {timeout_s:g}s (focus lost, chat not found by search, or no "
            "message to react to)")
    return found
