"""Did Messages really write what we sent? Poll chat.db for the new outgoing rows.

The caller records ``max_rowid()`` before osascript runs; only rows above it are looked at
(ROWID is AUTOINCREMENT, so they are exactly the rows written since), every ``interval_s``,
for up to ``timeout_s``. A row matches by direction (``is_from_me``), by place (the target
chat, or the recipient's direct chat for a handle) and by content: the decoded text (the
``text`` column is NULL on recent macOS, the reader decodes ``attributedBody``) or the file's
name. Messages writes the message row before its chat join, so an unjoined row is only
accepted at the deadline, and only when its recipient handle proves where it went.

The macOS 26 ghost row (Swift imsg #90): a group's guid is ``any;+;chat…`` in chat.db but
``any;-;chat…`` to AppleScript, and a send to it "succeeds" while Messages writes an empty,
unjoined outgoing row whose handle is the chat string. For chat targets such a row, still
unjoined after ``GHOST_GRACE_S``, is reported as failure instead of waiting out the clock.

Failure modes: SendNotConfirmed (ghost row, or no matching row by the deadline); the
reader's DatabaseError family when chat.db cannot be read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from imsg.chatdb.models import Message
from imsg.chatdb.reader import ChatDB
from imsg.errors import SendNotConfirmed

T = TypeVar("T")

VERIFY_TIMEOUT_S = 2.0
POLL_INTERVAL_S = 0.02
GHOST_GRACE_S = 0.2
_PAGE = 500


@dataclass(frozen=True, slots=True)
class Scope:
    """Where the sent rows must land: the chat (``chat_id``) and/or the recipient's direct
    chat (``handle``). ``ghost_names``: handle ids a ghost row would carry (chat sends)."""

    chat_id: int | None = None
    handle: str | None = None
    ghost_names: frozenset[str] = frozenset()

    def holds(self, row: Message) -> bool:
        if row.chat_id and row.chat_id == self.chat_id:
            return True
        return bool(self.handle and row.chat_id and not row.is_group
                    and row.chat_identifier.casefold() == self.handle.casefold())

    def addressed(self, row: Message) -> bool:
        """An unjoined row whose recipient handle is the target's (direct sends only)."""
        return bool(self.handle and not row.chat_id
                    and row.sender.casefold() == self.handle.casefold())


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
    """The verified row (the first part's), and the chat it is in (None if not joined yet)."""

    id: int
    guid: str
    chat_id: int | None
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


def poll(check: Callable[[bool], T | None], *, timeout_s: float, interval_s: float) -> T | None:
    """Call ``check(final)`` until it returns a value or the deadline passes; ``final`` is
    True on the last call, made at or after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        final = time.monotonic() >= deadline
        result = check(final)
        if result is not None or final:
            return result
        time.sleep(max(0.0, min(interval_s, deadline - time.monotonic())))


def confirm_send(db: ChatDB, after_rowid: int, scope: Scope, parts: Sequence[Part], *,
                 what: str, timeout_s: float = VERIFY_TIMEOUT_S,
                 interval_s: float = POLL_INTERVAL_S) -> Confirmed:
    """The row of ``parts[0]`` once every part has a matching row; raises SendNotConfirmed."""
    ghosts_seen: dict[int, float] = {}

    def check(final: bool) -> Confirmed | None:
        rows = [row for row in new_rows(db, after_rowid) if row.is_from_me]
        found = _assign(rows, scope, parts, accept_unjoined=final)
        if found is not None:
            first = found[0]
            return Confirmed(first.id, first.guid, first.chat_id or None, first.service)
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
            f"chat.db within {timeout_s:g}s; it may not have been sent")
    return confirmed


def _assign(rows: Sequence[Message], scope: Scope, parts: Sequence[Part], *,
            accept_unjoined: bool) -> list[Message] | None:
    """One distinct row per part, in part order, or None while any part lacks one."""
    taken: set[int] = set()
    found: list[Message] = []
    for part in parts:
        for row in rows:
            if row.id in taken or not part.matches(row):
                continue
            if scope.holds(row) or (accept_unjoined and scope.addressed(row)):
                taken.add(row.id)
                found.append(row)
                break
        else:
            return None
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
                     timeout_s: float = VERIFY_TIMEOUT_S,
                     interval_s: float = POLL_INTERVAL_S) -> Message:
    """Our new ``kind`` tapback row in ``chat_id``; raises SendNotConfirmed."""

    def check(_: bool) -> Message | None:
        for row in new_rows(db, after_rowid, reactions=True):
            if (row.is_from_me and row.chat_id == chat_id and row.is_reaction
                    and row.is_reaction_add and row.reaction_type == kind):
                return row
        return None

    found = poll(check, timeout_s=timeout_s, interval_s=interval_s)
    if found is None:
        raise SendNotConfirmed(
            f"Messages ran the {kind} tapback keystrokes but no tapback row appeared in chat "
            f"{chat_id} within {timeout_s:g}s (focus lost, chat not found by search, or no "
            "message to react to)")
    return found
