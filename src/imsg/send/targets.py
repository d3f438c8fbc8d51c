"""Send targets: the one grammar the CLI, the RPC server and the gateway accept.

::

    chat_id:N                   a chat by ROWID (see ``imsg chats``)
    chat_guid:G                 a chat by guid (``any;+;chat123…``, ``iMessage;-;+1555…``)
    chat_identifier:S           a chat by identifier (``chat123…``, ``+15555550123``)
    imessage:H  sms:H  auto:H   a phone or email with its service pinned (auto: local history)
    tel:+1…                     a phone number
    +1 555 555 0123, a@b.com    a plain phone number or email
    Jane Appleseed              a contact's name (``target_from_fields`` only; see there)

Phones are normalized to E.164, reading numbers without a country code in ``region``; emails
are lower-cased; a value with no digits is never a phone. Chat targets ignore the service:
the chat already has one; a chat id must fit SQLite's 64-bit integers. Every malformed target
raises ``InvalidTarget`` naming these forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, cast

from imsg.errors import InvalidInput, InvalidTarget

TargetKind = Literal["chat_id", "chat_guid", "chat_identifier", "handle"]
Service = Literal["imessage", "sms", "auto"]
SERVICES: tuple[Service, ...] = ("imessage", "sms", "auto")

ACCEPTED_FORMS = (
    "chat_id:N, chat_guid:G, chat_identifier:S, imessage:H, sms:H, auto:H, tel:+1…, "
    "or a plain phone number or email"
)
_CHAT_PREFIXES: dict[str, TargetKind] = {
    "chat_id": "chat_id",
    "chat_guid": "chat_guid",
    "chat_identifier": "chat_identifier",
}
_PHONE_CHARS = re.compile(r"[+0-9 ().\-]+")
_EMAIL = re.compile(r"[^@\s:;,]+@[^@\s:;,]+\.[^@\s:;,.]+")
_DECIMAL = re.compile(r"[0-9]{1,30}")
_NAME = re.compile(r"[^@:;]*[^\W\d_][^@:;]*")  # a letter somewhere, no @ : ;
INT64_MAX = 2**63 - 1
# The service part of a direct chat guid (``iMessage;-;+1555…``) → the service to send with.
_GUID_SERVICES: dict[str, Service] = {"imessage": "imessage", "sms": "sms", "rcs": "sms",
                                      "any": "auto"}


@dataclass(frozen=True, slots=True)
class Target:
    """Where a send goes. ``value``: the chat id as a decimal string, a chat guid or
    identifier as given, or a handle already normalized (E.164 or lower-cased email)."""

    kind: TargetKind
    value: str
    service: Service = "auto"

    @property
    def is_chat(self) -> bool:
        return self.kind != "handle"


def check_service(service: str) -> Service:
    """``service`` if it is imessage, sms or auto (as the Swift tool, case-sensitive)."""
    if service not in SERVICES:
        raise InvalidInput(f"Invalid service: {service} (use imessage, sms or auto)")
    return service


def check_region(region: str) -> str:
    """The upper-cased region if libphonenumber knows it; raises InvalidInput otherwise."""
    import phonenumbers  # on first use: ~20 ms of start-up that chat sends do not need

    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidInput(f"Invalid region: {region!r} (use a country code such as US or GB)")
    return code


def normalize_phone(value: str, region: str) -> str | None:
    """``value`` in E.164, or None when it is not a possible phone number in ``region``."""
    if not any(ch.isdigit() for ch in value) or not _PHONE_CHARS.fullmatch(value):
        return None
    import phonenumbers

    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalize_handle(value: str, region: str) -> str:
    """A phone in E.164 or a lower-cased email; raises InvalidTarget for anything else."""
    value = value.strip()
    phone = normalize_phone(value, check_region(region))
    if phone is not None:
        return phone
    if _EMAIL.fullmatch(value):
        return value.lower()
    if value and _PHONE_CHARS.fullmatch(value) and any(ch.isdigit() for ch in value):
        raise InvalidTarget(f"Invalid phone number for region {region.upper()}: {value!r}")
    raise InvalidTarget(f"Invalid target: {value!r} (use {ACCEPTED_FORMS})")


def parse_target(text: str, *, region: str = "US", service: str = "auto") -> Target:
    """Parse one target string of the grammar above.

    ``service`` applies to handle targets; an ``imessage:``/``sms:`` prefix pins it too, and
    the two must agree. Raises InvalidTarget for a malformed or contradictory target and
    InvalidInput for an unknown service or region.
    """
    wanted = check_service(service)
    raw = text.strip()
    prefix, sep, rest = raw.partition(":")
    prefix = prefix.lower() if sep else ""
    if prefix in _CHAT_PREFIXES:
        return chat_target(_CHAT_PREFIXES[prefix], rest)
    if prefix in SERVICES:
        pinned: Service = prefix
        if pinned != "auto" and wanted not in ("auto", pinned):
            raise InvalidTarget(f"Target {raw!r} pins {pinned} but the service is {wanted}")
        return Target("handle", normalize_handle(rest, region),
                      wanted if pinned == "auto" else pinned)
    if prefix == "tel":
        phone = normalize_phone(rest.strip(), check_region(region))
        if phone is None:
            raise InvalidTarget(f"Invalid phone number: {raw!r} (tel: takes e.g. tel:+15555550123)")
        return Target("handle", phone, wanted)
    return Target("handle", normalize_handle(raw, region), wanted)


def chat_target(kind: TargetKind, value: str) -> Target:
    """A chat target; ``chat_id`` must be a positive decimal. Raises InvalidTarget."""
    value = value.strip()
    if not value:
        raise InvalidTarget(f"Empty {kind} target (use {ACCEPTED_FORMS})")
    if kind == "chat_id":
        if not _DECIMAL.fullmatch(value) or not 1 <= int(value) <= INT64_MAX:
            raise InvalidTarget(f"Invalid chat id: {value[:40]!r} (a positive number up to "
                                f"{INT64_MAX}, see imsg chats)")
        value = str(int(value))
    return Target(kind, value)


def direct_guid_target(guid: str, region: str = "US") -> Target | None:
    """The handle target a direct chat guid names (``iMessage;-;+15555550123`` →
    ``imessage:+15555550123``, ``any;-;a@b.com`` → ``auto:a@b.com``), or None when ``guid``
    is not a direct guid of a phone or email (groups, other forms)."""
    service, sep, rest = guid.strip().partition(";-;")
    wanted = _GUID_SERVICES.get(service.lower())
    if not sep or wanted is None:
        return None
    try:
        return Target("handle", normalize_handle(rest, region), wanted)
    except InvalidTarget:
        return None


def looks_like_name(value: str) -> bool:
    """Whether ``value`` reads as a contact's name rather than a malformed handle: it has a
    letter and no ``@``, ``:`` or ``;``."""
    return bool(_NAME.fullmatch(value.strip()))


def target_from_fields(*, to: str | None = None, chat_id: int | str | None = None,
                       chat_identifier: str | None = None, chat_guid: str | None = None,
                       region: str = "US", service: str = "auto") -> Target:
    """The target named by exactly one of the fields (the CLI's flags, the RPC's params).

    ``to`` takes the whole grammar and also a contact's name (``Jane Appleseed``: a letter, no
    ``@ : ;``), resolved through the AddressBook (``imsg.chatdb.contacts``) to the contact's
    first phone, else first email. Raises InvalidTarget when none or several fields are
    given, ContactNotFound (an InvalidTarget; it says why when the AddressBook cannot be read)
    when a name matches no contact, and AmbiguousContact (an InvalidTarget listing each
    candidate's handles) when it matches several.
    """
    given = {name: value for name, value in (("to", to), ("chat_id", chat_id),
                                             ("chat_identifier", chat_identifier),
                                             ("chat_guid", chat_guid)) if value is not None}
    if len(given) != 1:
        named = " and ".join(given) if given else "none"
        raise InvalidTarget(
            f"Give exactly one target: to, chat_id, chat_identifier or chat_guid (got {named})")
    (name, value), = given.items()
    if name == "to":
        try:
            return parse_target(str(value), region=region, service=service)
        except InvalidTarget:
            if not looks_like_name(str(value)):
                raise
            return contact_target(str(value), region=region, service=service)
    check_service(service)
    return chat_target(cast(TargetKind, name), str(value))


def contact_target(name: str, *, region: str = "US", service: str = "auto") -> Target:
    """The handle target of the one contact called ``name`` (see ``target_from_fields``):
    its first phone, else its first email. Raises ContactNotFound or AmbiguousContact."""
    from imsg.chatdb.contacts import contact_book  # reads the AddressBook: only when asked

    wanted = check_service(service)
    candidate = contact_book(region=check_region(region)).resolve_one(name)
    return Target("handle", normalize_handle(candidate.handles[0], region), wanted)
