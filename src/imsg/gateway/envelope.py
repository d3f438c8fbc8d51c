"""What a handler receives for one dispatched message: the envelope.

JSON keys (``Envelope.to_json``): ``account``, ``session`` (``imessage:<sender>`` for direct
chats, ``imessage:group:<chat_id>`` for groups), ``chat_type`` (``direct``/``group``),
``chat_id``, ``reply_to`` (the target a reply goes to: ``chat_id:N``, or ``imessage:<sender>``
when no chat is known), ``sender``, ``sender_name`` (when known), ``text``, ``body`` (the
formatted text below), ``was_mentioned``, ``command_authorized``, ``quote`` (``{id, text,
sender}``, when the message replies to another), ``history`` (unanswered group messages,
``[{sender, body, timestamp, id}]``), ``media`` (``[{path, mime_type, kind}]``, local paths)
and ``message`` (the raw imsg message).

``body`` reads::

    [Chat messages since your last reply - for context]          (groups with history only)
    [iMessage Team id:42 2026-09-20 10:00 UTC] +15550001111: earlier [id:811]

    [Current message - respond to this]
    [iMessage Team id:42 2026-09-20 10:01 UTC] +15550002222: @bot hi

    [Replying to +15550001111 id:<guid>]                          (when quoting)
    earlier
    [/Replying]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from imsg.gateway.inbound import parse_time


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    sender: str
    body: str
    timestamp: str
    id: int


@dataclass(frozen=True, slots=True)
class Media:
    path: str
    mime_type: str
    kind: str


@dataclass(frozen=True, slots=True)
class Quote:
    id: str
    text: str
    sender: str | None


@dataclass(frozen=True)
class Envelope:
    account: str
    session: str
    chat_type: str
    chat_id: int | None
    reply_to: str
    sender: str
    text: str
    body: str
    was_mentioned: bool
    command_authorized: bool
    guid: str
    conversation: str  # the key messages are ordered by (and the loop breaker counts under)
    sender_name: str | None = None
    quote: Quote | None = None
    history: tuple[HistoryEntry, ...] = ()
    media: tuple[Media, ...] = ()
    message: dict[str, Any] = field(default_factory=dict, repr=False)
    chat_guid: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "account": self.account, "session": self.session, "chat_type": self.chat_type,
            "chat_id": self.chat_id, "reply_to": self.reply_to, "sender": self.sender,
        }
        if self.sender_name:
            data["sender_name"] = self.sender_name
        data.update(text=self.text, body=self.body, was_mentioned=self.was_mentioned,
                    command_authorized=self.command_authorized)
        if self.quote is not None:
            data["quote"] = {"id": self.quote.id, "text": self.quote.text,
                             "sender": self.quote.sender}
        data["history"] = [{"sender": h.sender, "body": h.body, "timestamp": h.timestamp,
                            "id": h.id} for h in self.history]
        data["media"] = [{"path": m.path, "mime_type": m.mime_type, "kind": m.kind}
                         for m in self.media]
        data["message"] = self.message
        return data


def media_kind(mime_type: str) -> str:
    major = mime_type.split("/", 1)[0].lower() if mime_type else ""
    if major in ("image", "video", "audio"):
        return major
    return "document" if mime_type else "attachment"


def stamp(created_at: str) -> str:
    """``created_at`` as ``YYYY-MM-DD HH:MM UTC`` ("" when unreadable)."""
    ts = parse_time(created_at)
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def line(label: str, created_at: str, text: str, sender: str | None = None) -> str:
    when = stamp(created_at)
    head = f"[iMessage {label} {when}]" if when else f"[iMessage {label}]"
    return f"{head} {sender}: {text}" if sender else f"{head} {text}"


def format_body(current: str, *, quote: Quote | None, history: tuple[HistoryEntry, ...],
                label: str) -> str:
    body = current
    if quote is not None:
        body += (f"\n\n[Replying to {quote.sender or 'unknown sender'} id:{quote.id}]\n"
                 f"{quote.text}\n[/Replying]")
    if history:
        earlier = "\n".join(line(label, h.timestamp, h.body, h.sender) + f" [id:{h.id}]"
                            for h in history)
        body = ("[Chat messages since your last reply - for context]\n" + earlier
                + "\n\n[Current message - respond to this]\n" + body)
    return body
