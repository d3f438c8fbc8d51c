"""The ``message`` notification's payload, validated into an ``Inbound``.

Every known field must have its JSON type (numbers, strings, booleans; ``participants`` an
array of strings; ``attachments`` an array of objects whose known keys have their types);
anything else is a malformed payload and ``parse_message`` raises ``MalformedMessage`` naming
the field, so the pipeline can log it and journal the row as dropped instead of guessing.
Unknown fields are kept in ``raw`` and ignored (the child may be newer than us).

``text`` and ``reply_to_text`` lose a stray length-prefix wrapper (``0x0A`` + a varint equal
to the remaining byte count), which some readers leak from ``attributedBody``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

_STRINGS = ("guid", "sender", "sender_name", "text", "created_at", "destination_caller_id",
            "chat_identifier", "chat_guid", "chat_name", "reply_to_guid",
            "thread_originator_guid", "reply_to_text", "reply_to_sender", "service",
            "event", "reaction_type", "reaction_emoji", "reacted_to_guid")
_INTS = ("id", "chat_id", "cursor")
_BOOLS = ("is_from_me", "is_group", "is_reaction", "is_reaction_add", "is_read")
_ATTACHMENT_STRINGS = ("original_path", "mime_type", "filename", "transfer_name", "uti",
                       "converted_path", "converted_mime_type")


class MalformedMessage(ValueError):
    """The payload is not a message this gateway can trust; ``str()`` names the field."""


@dataclass(frozen=True, slots=True)
class Attachment:
    original_path: str
    mime_type: str
    missing: bool
    transfer_name: str


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message row as the child reported it (see ``imsg.chatdb.models.Message``)."""

    id: int
    guid: str
    chat_id: int | None
    sender: str
    is_from_me: bool
    text: str
    created_at: str
    is_group: bool = False
    sender_name: str | None = None
    destination_caller_id: str | None = None
    chat_identifier: str | None = None
    chat_guid: str | None = None
    chat_name: str | None = None
    participants: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    reply_to_guid: str | None = None
    thread_originator_guid: str | None = None
    reply_to_text: str | None = None
    reply_to_sender: str | None = None
    service: str | None = None
    cursor: int | None = None
    system: bool = False  # a tapback, a group event or an edit/unsend update, not user text
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def created_ts(self) -> float | None:
        """``created_at`` as a Unix timestamp, or None when it cannot be read."""
        return parse_time(self.created_at)

    @property
    def resume_rowid(self) -> int:
        """Where a resumed watch may start after this message: ``cursor`` when the child
        sends one, else the ROWID."""
        return self.cursor if self.cursor is not None else self.id


def parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def strip_length_prefix(text: str) -> str:
    """``text`` without a protobuf-style wrapper: a ``0x0A`` tag byte and a varint that equals
    the number of bytes after it. Anything else (a wrong tag, a length that does not match,
    plain text that merely starts with a newline) is returned unchanged."""
    if not text or text[0] != "\n":
        return text
    try:  # bytes a reader could not decode arrive as surrogate escapes
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text
    length = shift = 0
    index = 1
    while index < len(data) and index <= 5:
        byte = data[index]
        length |= (byte & 0x7F) << shift
        index += 1
        if not byte & 0x80:
            break
        shift += 7
    else:
        return text
    if length != len(data) - index or length == 0:
        return text
    try:
        return data[index:].decode("utf-8")
    except UnicodeDecodeError:
        return text


def _check(payload: dict[str, Any], names: tuple[str, ...], kind: type | tuple[type, ...],
           label: str) -> None:
    for name in names:
        value = payload.get(name)
        if value is None:
            continue
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise MalformedMessage(f"{name} must be {label}")


def parse_message(payload: Any) -> Inbound:
    """Validate a notification's ``message`` object. Raises MalformedMessage."""
    if not isinstance(payload, dict):
        raise MalformedMessage("message must be an object")
    _check(payload, _STRINGS, str, "a string")
    _check(payload, _INTS, int, "an integer")
    _check(payload, _BOOLS, bool, "a boolean")
    if payload.get("id") is None:
        raise MalformedMessage("id is required")
    participants = payload.get("participants") or []
    if not isinstance(participants, list) or not all(isinstance(p, str) for p in participants):
        raise MalformedMessage("participants must be an array of strings")
    attachments = payload.get("attachments") or []
    if not isinstance(attachments, list) or not all(isinstance(a, dict) for a in attachments):
        raise MalformedMessage("attachments must be an array of objects")
    parsed: list[Attachment] = []
    for item in attachments:
        _check(item, _ATTACHMENT_STRINGS, str, "a string")
        if item.get("missing") is not None and not isinstance(item["missing"], bool):
            raise MalformedMessage("attachments[].missing must be a boolean")
        parsed.append(Attachment(item.get("original_path") or "", item.get("mime_type") or "",
                                 bool(item.get("missing")),
                                 item.get("transfer_name") or item.get("filename") or ""))
    rowid = int(payload["id"])
    chat_id = payload.get("chat_id")
    reply_text = payload.get("reply_to_text")
    return Inbound(
        id=rowid,
        guid=payload.get("guid") or f"rowid:{rowid}",
        chat_id=chat_id if chat_id else None,
        sender=(payload.get("sender") or "").strip(),
        is_from_me=bool(payload.get("is_from_me")),
        text=strip_length_prefix(payload.get("text") or ""),
        created_at=payload.get("created_at") or "",
        is_group=bool(payload.get("is_group")),
        sender_name=payload.get("sender_name"),
        destination_caller_id=payload.get("destination_caller_id"),
        chat_identifier=payload.get("chat_identifier"),
        chat_guid=payload.get("chat_guid"),
        chat_name=payload.get("chat_name"),
        participants=tuple(participants),
        attachments=tuple(parsed),
        reply_to_guid=payload.get("reply_to_guid"),
        thread_originator_guid=payload.get("thread_originator_guid"),
        reply_to_text=strip_length_prefix(reply_text) if reply_text else None,
        reply_to_sender=payload.get("reply_to_sender"),
        service=payload.get("service"),
        cursor=payload.get("cursor"),
        system=bool(payload.get("is_reaction") or payload.get("group_event")
                    or payload.get("event")),
        raw=payload,
    )
