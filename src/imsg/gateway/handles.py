"""Sender handles and allowlist entries: normalization and matching.

An allowlist (``allowFrom``, ``groupAllowFrom``) is a list of entries::

    "*"                       everyone
    chat_id:N  (chatid:, chat:)          one chat, by ROWID
    chat_guid:G  (chatguid:, guid:)      one chat, by guid (exact)
    chat_identifier:S  (chatidentifier:, chatident:)   one chat, by identifier (exact)
    +1 555 555 0123, a@b.com, 12345      a sender handle
    imessage:H, sms:H, auto:H            the same; the service prefix is ignored

Handles are normalized the same way on both sides: emails lower-cased; anything with digits and
only phone characters becomes E.164 (numbers without a country code read in the account's
``region``; what libphonenumber cannot place, such as short codes, becomes ``+digits``); other
values are kept as written, so a value with no digits is never a phone. An empty list allows
nobody; ``"*"`` allows everybody. A malformed chat entry (``chat_id:abc``) never matches a
chat: at run time it is read as a handle, and ``imsg gateway check`` reports it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from imsg.send.targets import normalize_phone

SERVICE_PREFIXES = ("imessage:", "sms:", "auto:")
CHAT_PREFIXES = {
    "chat_id": "chat_id", "chatid": "chat_id", "chat": "chat_id",
    "chat_guid": "chat_guid", "chatguid": "chat_guid", "guid": "chat_guid",
    "chat_identifier": "chat_identifier", "chatidentifier": "chat_identifier",
    "chatident": "chat_identifier",
}
_PHONE_CHARS = re.compile(r"[+0-9 ().\-]+")
_DECIMAL = re.compile(r"[0-9]+")


def strip_service(value: str) -> str:
    """``value`` without any leading ``imessage:``/``sms:``/``auto:`` prefixes (repeated ones
    too, iteratively: no recursion to blow up)."""
    text = value.strip()
    while True:
        lowered = text.lower()
        for prefix in SERVICE_PREFIXES:
            if lowered.startswith(prefix):
                text = text[len(prefix):].strip()
                break
        else:
            return text


def split_chat_prefix(value: str) -> tuple[str, str] | None:
    """``(canonical kind, rest)`` when ``value`` starts with a chat prefix, else None."""
    prefix, sep, rest = value.partition(":")
    if not sep:
        return None
    kind = CHAT_PREFIXES.get(prefix.strip().lower())
    return (kind, rest.strip()) if kind else None


@functools.lru_cache(maxsize=8192)
def normalize_handle(value: str, region: str = "US") -> str:
    """The canonical form of a handle (see the module docstring); chat targets keep their
    value and get the canonical prefix (``CHAT:42`` → ``chat_id:42``)."""
    text = strip_service(value)
    chat = split_chat_prefix(text)
    if chat is not None:
        return f"{chat[0]}:{chat[1]}"
    if text.lower().startswith("tel:"):
        text = text[4:].strip()
    if "@" in text:
        return text.lower()
    if any(ch.isdigit() for ch in text) and _PHONE_CHARS.fullmatch(text):
        return normalize_phone(text, region) or "+" + "".join(ch for ch in text if ch.isdigit())
    return "".join(text.split())


def entry_problem(raw: str) -> str | None:
    """Why an allowlist entry is malformed, or None (``Invalid chat_id: chat_id:abc``)."""
    chat = split_chat_prefix(strip_service(raw))
    if chat is None:
        return None if raw.strip() else "Empty allowlist entry"
    kind, rest = chat
    if kind == "chat_id" and (not _DECIMAL.fullmatch(rest) or int(rest) < 1):
        return f"Invalid chat_id: {raw.strip()}"
    if not rest:
        return f"Invalid {kind} entry: {raw.strip()}"
    return None


@dataclass(frozen=True)
class AllowList:
    """A compiled allowlist: sets, so a match is a few lookups whatever its length."""

    wildcard: bool = False
    handles: frozenset[str] = field(default_factory=frozenset)
    chat_ids: frozenset[int] = field(default_factory=frozenset)
    chat_guids: frozenset[str] = field(default_factory=frozenset)
    chat_identifiers: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def compile(cls, entries: Iterable[str | int], region: str = "US") -> AllowList:
        wildcard = False
        handles: set[str] = set()
        chat_ids: set[int] = set()
        guids: set[str] = set()
        identifiers: set[str] = set()
        for entry in entries:
            raw = str(entry).strip()
            if not raw:
                continue
            if raw == "*":
                wildcard = True
                continue
            chat = split_chat_prefix(strip_service(raw))
            if chat is not None and entry_problem(raw) is None:
                kind, rest = chat
                if kind == "chat_id":
                    chat_ids.add(int(rest))
                elif kind == "chat_guid":
                    guids.add(rest)
                else:
                    identifiers.add(rest)
                continue
            handles.add(normalize_handle(raw if chat is None else rest, region))
        return cls(wildcard, frozenset(handles), frozenset(chat_ids), frozenset(guids),
                   frozenset(identifiers))

    @property
    def empty(self) -> bool:
        return not (self.wildcard or self.handles or self.chat_ids or self.chat_guids
                    or self.chat_identifiers)

    def allows(self, sender: str, *, chat_id: int | None = None, chat_guid: str | None = None,
               chat_identifier: str | None = None, explicit: bool = False) -> bool:
        """Whether the (already normalized) ``sender`` or its chat is listed; ``explicit``:
        by name, ``"*"`` not counting."""
        if self.wildcard and not explicit:
            return True
        return (sender in self.handles
                or (chat_id is not None and chat_id in self.chat_ids)
                or (chat_guid is not None and chat_guid in self.chat_guids)
                or (chat_identifier is not None and chat_identifier in self.chat_identifiers))

    def union(self, handles: Iterable[str]) -> AllowList:
        """This list plus already normalized sender handles (the pairing approvals)."""
        extra = frozenset(handles)
        if not extra:
            return self
        return AllowList(self.wildcard, self.handles | extra, self.chat_ids, self.chat_guids,
                         self.chat_identifiers)
