"""What local history says about a target: which chat it names, which service reaches it.

The reader has no lookup by chat guid/identifier or by handle, so the few queries live here,
on a read-only connection of their own, with bound parameters only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass

from imsg.chatdb.connection import connect_readonly, translate_errors
from imsg.chatdb.reader import ChatDB, ChatRef
from imsg.errors import ChatNotFound
from imsg.send.targets import Service, Target

# A chat identifier may name several chats (the iMessage and the SMS chat of one number):
# the one with the newest message wins.
_CHAT_BY_IDENTIFIER = (
    "SELECT c.ROWID FROM chat c WHERE c.chat_identifier = ? ORDER BY"
    " (SELECT MAX(j.message_id) FROM chat_message_join j WHERE j.chat_id = c.ROWID) DESC,"
    " c.ROWID DESC LIMIT 1"
)
_CHAT_BY_GUID = "SELECT ROWID FROM chat WHERE guid = ?"
_SERVICES_OF_HANDLE = (
    "SELECT service FROM handle WHERE id = ? COLLATE NOCASE UNION"
    " SELECT service_name FROM chat WHERE chat_identifier = ? COLLATE NOCASE AND style = 45"
)


@dataclass(frozen=True, slots=True)
class ServiceChoice:
    """The service to use, and whether a text-only send may retry over SMS when Messages
    cannot find the buddy on iMessage (no history says either way)."""

    service: Service
    sms_fallback: bool


@contextmanager
def _connection(db: ChatDB) -> Iterator[sqlite3.Connection]:
    with closing(connect_readonly(db.path)) as conn, translate_errors(db.path):
        yield conn


def find_chat(db: ChatDB, target: Target) -> ChatRef:
    """The chat a chat target names; raises ChatNotFound."""
    if target.kind == "chat_id":
        return db.chat_ref(int(target.value))
    sql = _CHAT_BY_GUID if target.kind == "chat_guid" else _CHAT_BY_IDENTIFIER
    with _connection(db) as conn:
        row = conn.execute(sql, (target.value,)).fetchone()
    if row is None:
        raise ChatNotFound(target.value)
    return db.chat_ref(int(row[0]))


def choose_service(db: ChatDB, handle: str, requested: Service, *,
                   text_only: bool) -> ServiceChoice:
    """The service for a direct send to ``handle`` (normalized).

    ``imessage``/``sms`` are kept. ``auto``: emails and handles seen on iMessage use iMessage;
    handles seen only on SMS/RCS use SMS; unknown phone numbers use iMessage, with the SMS
    fallback for text-only sends.
    """
    if requested != "auto":
        return ServiceChoice(requested, sms_fallback=False)
    if "@" in handle:
        return ServiceChoice("imessage", sms_fallback=False)
    with _connection(db) as conn:
        seen = {(row[0] or "").casefold() for row in conn.execute(_SERVICES_OF_HANDLE,
                                                                    (handle, handle))}
    seen.discard("")
    if "imessage" in seen:
        return ServiceChoice("imessage", sms_fallback=False)
    if seen:
        return ServiceChoice("sms", sms_fallback=False)
    return ServiceChoice("imessage", sms_fallback=text_only)
