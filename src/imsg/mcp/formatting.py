"""Compact text for a model: one line per message, as ``imsg history`` prints them
(``imsg.format``), reshaped for a reader that acts on what it reads.

What changes from the human line: every message starts with ``#<id>``, the handle the other
tools take (``get_context``, ``get_attachment``, ``react``, ``wait_for_message``'s ``since``);
times are local ``HH:MM`` under one header per day (the zone is said once per answer) instead
of UTC milliseconds on every line; people appear by their contact name, the user as ``me``;
the chat is named once per block, never per line. What stays: edits ``(edited)``, unsends
``(unsent)``, group events in Messages' words, polls, replies, attachments with their index,
voice transcripts, link-preview titles and reactions, each folded into its message.

Everything here is pure: callers pass the contact names they read (``Names``) and ``today``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime

from imsg.chatdb.models import Attachment, Chat, Message
from imsg.chatdb.polls import display_text
from imsg.chatdb.queries import attachment_kind as kind_of

Names = Mapping[str, str]  # handle → contact name

QUOTE_LIMIT = 60
PREVIEW_LIMIT = 100
# Message keys that repeat the chat's own fields: answers carry the chat once instead.
CHAT_KEYS = ("chat_identifier", "chat_guid", "chat_name", "participants", "is_group")


def local_time(iso: str) -> datetime | None:
    """A wire timestamp (``2026-05-16T15:24:36.123Z``) in this machine's zone; None if empty
    or not a timestamp."""
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return None


def zone_name() -> str:
    """This machine's time zone as a model reads it: ``CET (UTC+01:00)``."""
    now = datetime.now().astimezone()
    offset = now.strftime("%z")
    label = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    name = now.tzname() or ""
    return f"{name} ({label})" if name and name != "UTC" else label


def day_label(day: date, today: date) -> str:
    """``Sun 2026-11-30 (today)``; ``(yesterday)`` likewise; other days without a note."""
    note = {0: " (today)", 1: " (yesterday)"}.get((today - day).days, "")
    return f"{day.strftime('%a')} {day.isoformat()}{note}"


def when(iso: str, today: date) -> str:
    """A moment on a line of its own: ``today 15:24``, ``yesterday 09:02``, ``2026-05-16 15:24``."""
    moment = local_time(iso)
    if moment is None:
        return "unknown time"
    days = (today - moment.date()).days
    prefix = {0: "today", 1: "yesterday"}.get(days, moment.date().isoformat())
    return f"{prefix} {moment.strftime('%H:%M')}"


def person(handle: str, names: Names, name: str | None = None) -> str:
    """The contact name of ``handle`` (``name`` when the reader already set one), else the
    handle itself."""
    return name or names.get(handle) or handle or "unknown"


def chat_title(chat: Chat, names: Names) -> str:
    """How to call a chat: a direct chat by its contact (with the handle), a group by its name,
    else by its members."""
    if not chat.is_group:
        name = chat.contact_name or names.get(chat.identifier)
        return f"{name} ({chat.identifier})" if name else chat.identifier
    if chat.display_name and chat.display_name != chat.identifier:
        return chat.display_name
    members = ", ".join(person(h, names) for h in chat.participants)
    return f"group with {members}" if members else chat.identifier


def chat_header(chat: Chat, names: Names) -> str:
    """``Weekend Trip [chat 3, group: Alice Appleseed, Bob, +15555550188]``."""
    label = chat_title(chat, names)
    if chat.is_group and chat.participants:
        members = ", ".join(person(h, names) for h in chat.participants)
        if not label.startswith("group with "):
            return f"{label} [chat {chat.id}, group: {members}]"
    return f"{label} [chat {chat.id}]"


def chat_summary(chat: Chat, names: Names, today: date, last: Message | None) -> list[str]:
    """A chat in a list: its header, last activity, unread count, and its last message."""
    head = f"{chat_header(chat, names)} · {when(chat.last_message_at, today)}"
    if chat.unread_count:
        head += f" · {chat.unread_count} unread"
    lines = [head]
    if last is not None:
        lines.append(f"    last: {clip(_body(last, names), PREVIEW_LIMIT)}")
    return lines


def clip(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters (an ellipsis marks the cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def sender(message: Message, names: Names) -> str:
    return "me" if message.is_from_me else person(message.sender, names, message.sender_name)


def attachment_kind(attachment: Attachment) -> str:
    """``image``, ``video``, ``audio``, ``sticker`` or ``file``: by MIME type, else by UTI (the
    kinds ``list_attachments`` filters by)."""
    return kind_of(attachment.mime_type, attachment.uti, attachment.is_sticker)


def size_label(total: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if total >= scale:
            return f"{total / scale:.1f} {unit}".replace(".0 ", " ")
    return f"{total} B"


def attachment_label(index: int, attachment: Attachment) -> str:
    """``[0: image IMG_0042.jpeg, 1.2 MB]``; ``not downloaded`` when the file is not on disk."""
    name = attachment.transfer_name or attachment.filename.rsplit("/", 1)[-1] or "unnamed"
    size = size_label(attachment.total_bytes)
    extra = ", not downloaded" if attachment.missing else ""
    return f"[{index}: {attachment_kind(attachment)} {name}, {size}{extra}]"


def _body(message: Message, names: Names) -> str:
    """What the message says, as one string (text, poll, attachments, link title)."""
    if message.group_event is not None:
        return f"* {message.group_event.description or message.group_event.type}"
    if message.retracted_at:
        return "(unsent)"
    text = message.text.replace("\ufffc", "").strip()
    if message.poll is not None:
        shown = display_text(message.poll)
        text = f"{text} {shown}" if text else shown
    parts = [text] if text else []
    voice = any(a.transcription is not None for a in message.attachments)
    for index, attachment in enumerate(message.attachments):
        if voice and attachment.transcription is not None:
            parts.append("(voice message)" if text else "(voice message, no transcript)")
        else:
            parts.append(attachment_label(index, attachment))
    preview = message.url_preview
    if preview is not None and preview.title:
        parts.append(f"[link: {preview.title}]")
    if message.edited_at:
        parts.append("(edited)")
    return " ".join(parts) if parts else "(empty)"


def _author(handle: str, message: Message, names: Names) -> str:
    """Who wrote what ``message`` answers: ``me`` when it is the user's own address."""
    mine = message.destination_caller_id or (message.sender if message.is_from_me else "")
    if handle and mine and handle.casefold() == mine.casefold():
        return "me"
    return person(handle, names)


def message_lines(message: Message, names: Names, *, stamp: str) -> list[str]:
    """``#19 05:04 me: Can't wait!`` with continuation lines indented, then the reply it
    answers and its reactions. ``stamp`` is the time shown (``HH:MM`` under a day header)."""
    body = _body(message, names).replace("\n", "\n    ")
    if message.group_event is not None:
        lines = f"#{message.id} {stamp} {body}".split("\n")
    else:
        lines = f"#{message.id} {stamp} {sender(message, names)}: {body}".split("\n")
    if message.reply_to_text is not None and not message.retracted_at:
        who = _author(message.reply_to_sender or "", message, names)
        lines.append(f"    ↳ reply to {who}: {clip(message.reply_to_text, QUOTE_LIMIT)}")
    if message.reactions:
        shown = ", ".join(
            f"{r.emoji} {'me' if r.is_from_me else person(r.sender, names, r.sender_name)}"
            for r in message.reactions)
        lines.append(f"    reactions: {shown}")
    return lines


def _headed(messages: Iterable[Message], names: Names, today: date,
            chats: Mapping[int, Chat] | None) -> Iterator[tuple[str | None, Message, str]]:
    """Each message with its ``HH:MM`` stamp and the header line to print before it: one
    whenever the day changes (and, with ``chats``, whenever the chat changes), else None."""
    current: tuple[int | None, date | None] | None = None
    for message in messages:
        moment = local_time(message.created_at)
        day = moment.date() if moment else None
        chat = chats.get(message.chat_id) if chats is not None else None
        key = (message.chat_id if chats is not None else None, day)
        header = None
        if key != current:
            current = key
            label = day_label(day, today) if day else "unknown day"
            where = f"{chat_header(chat, names)} · " if chat is not None else ""
            header = f"-- {where}{label} --"
        yield header, message, moment.strftime("%H:%M") if moment else "--:--"


def messages_block(messages: Sequence[Message], names: Names, today: date, *,
                   chats: Mapping[int, Chat] | None = None, marked: int | None = None) -> list[str]:
    """Messages in the order given, a header line whenever the day changes (and, with
    ``chats``, whenever the chat changes: answers spanning several chats). ``marked`` puts
    ``>>`` before that message's line."""
    lines: list[str] = []
    for header, message, stamp in _headed(messages, names, today, chats):
        if header is not None:
            lines.append(header)
        block = message_lines(message, names, stamp=stamp)
        if marked == message.id:
            block[0] = ">> " + block[0]
        lines.extend(block)
    return lines


def attachments_block(listed: Sequence[tuple[Message, int]], names: Names, today: date, *,
                      chats: Mapping[int, Chat] | None = None) -> list[str]:
    """One line per (message, attachment index), under the same headers as
    ``messages_block``: ``#20 02:40 Bob: [0: image view.jpg, 1.2 MB] the view``. A voice
    message shows its transcript; another attachment the start of its message's text, on the
    message's first line only."""
    lines: list[str] = []
    shown: set[int] = set()
    headed = _headed([message for message, _ in listed], names, today, chats)
    for (header, message, stamp), (_, index) in zip(headed, listed, strict=True):
        if header is not None:
            lines.append(header)
        attachment = message.attachments[index]
        line = f"#{message.id} {stamp} {sender(message, names)}: "
        line += attachment_label(index, attachment)
        caption = message.text.replace("\ufffc", "").strip()
        if attachment.transcription is not None:
            line += f" transcript: {clip(attachment.transcription, PREVIEW_LIMIT)}"
        elif caption and message.id not in shown:
            line += f" {clip(caption, QUOTE_LIMIT)}"
        shown.add(message.id)
        lines.append(line)
    return lines


def message_data(message: Message) -> dict[str, object]:
    """A message as structured content: its wire keys without the chat's (carried once)."""
    data = message.to_dict()
    for key in CHAT_KEYS:
        data.pop(key, None)
    return data


def chat_data(chat: Chat, names: Names) -> dict[str, object]:
    """A chat as structured content: its wire keys plus ``participant_names`` (the contact
    names of the participants that have one)."""
    data = chat.to_dict()
    known = {h: names[h] for h in chat.participants if h in names}
    if known:
        data["participant_names"] = known
    return data


def handles_of(chats: Iterable[Chat], messages: Iterable[Message] = ()) -> set[str]:
    """Every handle an answer may name: participants, senders, reaction senders, reply
    authors."""
    found: set[str] = set()
    for chat in chats:
        found.update(chat.participants)
        found.add(chat.identifier)
    for message in messages:
        found.add(message.sender)
        found.update(r.sender for r in message.reactions)
        if message.reply_to_sender:
            found.add(message.reply_to_sender)
    return {h for h in found if h}
