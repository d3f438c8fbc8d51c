"""Chat, Message, Attachment, Reaction: the wire shapes, field order = JSON key order.

The keys match the Swift ``imsg`` so gateways written for it keep working. Optional values
default to ``None`` and are omitted from JSON (``omit_defaults``), never written as ``null``;
required fields have no default (``kw_only``, set per class, lets them follow optional
ones), so ``false``, ``0``, ``""`` and ``[]`` are always written.
"""

from __future__ import annotations

from typing import Any

import msgspec


class _Wire(msgspec.Struct, omit_defaults=True, gc=False):
    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]


class Attachment(_Wire):
    filename: str
    transfer_name: str
    uti: str
    mime_type: str
    total_bytes: int
    is_sticker: bool
    original_path: str
    missing: bool
    transcription: str | None = None
    converted_path: str | None = None
    converted_mime_type: str | None = None
    conversion_error: str | None = None  # conversion was asked for and failed: why, one line


class Reaction(_Wire, kw_only=True):
    id: int
    type: str
    emoji: str
    sender: str
    sender_name: str | None = None
    is_from_me: bool
    created_at: str


class EditVersion(_Wire):
    """One version of an edited message: what it said from ``at`` on."""

    text: str
    at: str | None = None


class GroupEvent(_Wire):
    """A membership/name/photo change: ``type`` added|removed|renamed|left|photo_changed;
    ``description`` is the sentence Messages shows (the message's ``text`` stays "")."""

    type: str
    handle: str | None = None
    title: str | None = None
    description: str | None = None


class URLPreview(_Wire, kw_only=True):
    """The link-preview row folded into a text row: the Swift tool's keys (the preview row's
    ``id``, ``guid``, ``balloon_bundle_id``, ``created_at``) and imsg's (``url``, ``title``)."""

    id: int | None = None
    guid: str | None = None
    balloon_bundle_id: str | None = None
    created_at: str | None = None
    url: str
    title: str | None = None


class PollOption(_Wire):
    id: str
    text: str


class PollVote(_Wire, kw_only=True):
    option_id: str
    option_text: str | None = None
    participant: str
    event_type: str
    server_time: str | None = None


class Poll(_Wire, kw_only=True):
    """A native Messages poll (``com.apple.messages.Polls``) or a vote on one."""

    kind: str  # created | vote | unknown
    event: str  # imessage.poll.created | imessage.poll.voted | imessage.poll.unknown
    poll_guid: str | None = None
    question: str | None = None
    options: list[PollOption]
    vote: PollVote | None = None
    votes: list[PollVote]
    original_guid: str | None = None
    creator: str | None = None
    participants: list[str]
    metadata: dict[str, Any]


class Chat(_Wire, kw_only=True):
    id: int
    name: str
    identifier: str
    service: str
    last_message_at: str
    guid: str | None = None
    display_name: str
    contact_name: str | None = None
    is_group: bool
    participants: list[str]
    account_id: str | None = None
    account_login: str | None = None
    last_addressed_handle: str | None = None
    unread_count: int | None = None


class Group(_Wire, kw_only=True):
    """``imsg group``: one chat's detail (direct chats too)."""

    id: int
    identifier: str
    guid: str
    name: str
    service: str
    is_group: bool
    participants: list[str]
    account_id: str | None = None
    account_login: str | None = None
    last_addressed_handle: str | None = None


class Message(_Wire, kw_only=True):
    id: int
    chat_id: int
    guid: str
    reply_to_guid: str | None = None
    thread_originator_guid: str | None = None
    thread_originator_part: str | None = None
    reply_to_text: str | None = None
    reply_to_sender: str | None = None
    sender: str
    sender_name: str | None = None
    is_from_me: bool
    text: str
    created_at: str
    attachments: list[Attachment]
    reactions: list[Reaction]
    destination_caller_id: str | None = None
    chat_identifier: str
    chat_guid: str
    chat_name: str
    participants: list[str]
    is_group: bool
    balloon_bundle_id: str | None = None
    url_preview: URLPreview | None = None
    poll: Poll | None = None
    is_read: bool | None = None
    date_read: str | None = None
    cursor: int | None = None  # live watch only: resume here (``since_rowid``) after handling
    service: str | None = None
    edited_at: str | None = None
    retracted_at: str | None = None
    edit_history: list[EditVersion] | None = None
    group_event: GroupEvent | None = None
    is_reaction: bool | None = None
    reaction_type: str | None = None
    reaction_emoji: str | None = None
    is_reaction_add: bool | None = None
    reacted_to_guid: str | None = None
    event: str | None = None  # watch update events only: "edited" | "retracted"


class StatsChat(_Wire, kw_only=True):
    chat_id: int
    identifier: str
    name: str
    service: str
    message_count: int


class StatsSender(_Wire, kw_only=True):
    handle: str
    message_count: int


class StatsService(_Wire, kw_only=True):
    service: str
    message_count: int


class StatsDate(_Wire, kw_only=True):
    date: str  # YYYY-MM-DD in the report's time zone
    message_count: int


class MediaType(_Wire, kw_only=True):
    uti: str
    mime_type: str
    attachment_count: int
    total_bytes: int


class MediaChat(_Wire, kw_only=True):
    chat_id: int
    identifier: str
    name: str
    attachment_count: int
    total_bytes: int


class MediaStats(_Wire, kw_only=True):
    total_attachments: int
    total_bytes: int
    types: list[MediaType]
    chats: list[MediaChat]


class Stats(_Wire, kw_only=True):
    """``imsg stats`` / RPC ``messages.stats``: logical messages (tapbacks left out, link
    previews folded) by chat, sender, service and day."""

    total_messages: int
    sent_messages: int
    received_messages: int
    time_zone: str
    chats: list[StatsChat]
    senders: list[StatsSender]
    services: list[StatsService]
    dates: list[StatsDate]
    media: MediaStats | None = None


class ScheduledMessage(_Wire, kw_only=True):
    """A Send Later message waiting in Messages (``imsg scheduled list``)."""

    id: int
    guid: str
    chat_id: int
    chat_identifier: str
    chat_guid: str
    chat_name: str
    text: str
    service: str
    scheduled_at: str
    schedule_type: int
    schedule_state: int


_encoder = msgspec.json.Encoder()


def to_json(obj: _Wire) -> bytes:
    """Compact JSON bytes (UTF-8, no trailing newline) for one wire object."""
    return _encoder.encode(obj)
