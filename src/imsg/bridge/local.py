"""``imsg account|whois|nickname --local``: what the bridge's introspection actions report,
answered from this Mac's own data instead (chat.db and the AddressBook), no helper needed.

- ``accounts``: the chats' ``account_login``/``account_id`` pairs with how many chats use
  each, most used first: ``{"source":"local","accounts":[{login, account_id, chat_count}]}``;
- ``whois``: the service local history shows for an address (the rule ``send --service auto``
  uses: iMessage when seen on iMessage, SMS when seen only on SMS/RCS):
  ``{"address","service":"imessage"|"sms"|"unknown","known","source":"local"}``;
- ``nickname``: the Contacts name of an address: ``{"address","local_contact_name"?,
  "found","source":"local-addressbook","contacts_unavailable"}``.

An address is tried as given and in its other spellings: an email lower-cased; a phone raw,
digits only, and with and without a leading ``1``/``+1``. Database failures raise the
``DatabaseError`` family; an unreadable AddressBook only sets ``contacts_unavailable``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from imsg.chatdb.reader import ChatDB

_IMESSAGE = {"imessage", "imessagelite"}
_SMS = {"sms", "rcs"}
_ALL_CHATS = 1_000_000


def candidates(address: str) -> list[str]:
    """The spellings of ``address`` to look up, the given one first."""
    value = address.strip()
    if "@" in value:
        return [value.lower()] if value.lower() == value else [value, value.lower()]
    digits = "".join(ch for ch in value if ch.isdigit())
    found = [value, digits]
    if digits.startswith("1") and len(digits) == 11:
        found += [digits[1:], f"+{digits}", f"+{digits[1:]}"]
    elif digits:
        found += [f"1{digits}", f"+1{digits}", f"+{digits}"]
    unique: list[str] = []
    for item in found:
        if item and item not in unique:
            unique.append(item)
    return unique


def accounts(db_path: str | None) -> dict[str, Any]:
    with ChatDB(db_path) as db:
        chats = db.chats(_ALL_CHATS)
    counts = Counter((c.account_login or "", c.account_id or "") for c in chats
                     if c.account_login or c.account_id)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {"source": "local", "accounts": [
        {"login": login, "account_id": account, "chat_count": count}
        for (login, account), count in ordered]}


def whois(db_path: str | None, address: str) -> dict[str, Any]:
    seen: set[str] = set()
    with ChatDB(db_path) as db:
        for candidate in candidates(address):
            seen |= db.handle_services(candidate)
    service = "imessage" if seen & _IMESSAGE else "sms" if seen & _SMS else "unknown"
    return {"address": address, "service": service, "known": bool(seen), "source": "local"}


def nickname(address: str) -> dict[str, Any]:
    from imsg.chatdb.contacts import contact_book

    book = contact_book()
    names = book.names_for(candidates(address))
    name = next(iter(names.values()), None)
    out: dict[str, Any] = {"address": address}
    if name:
        out["local_contact_name"] = name
    out.update(found=name is not None, source="local-addressbook",
               contacts_unavailable=not book.available())
    return out
