"""Human-readable lines for the CLI (``--json`` output uses ``models.to_json`` instead)."""

from __future__ import annotations

from imsg.chatdb.models import Chat, Group, Message, ScheduledMessage, Stats
from imsg.chatdb.polls import display_text


def chat_line(chat: Chat) -> str:
    """``[id] <contact name, else name> (identifier) last=<iso>``."""
    name = chat.contact_name or chat.name
    return f"[{chat.id}] {name} ({chat.identifier}) last={chat.last_message_at}"


def group_lines(group: Group) -> list[str]:
    lines = [
        f"id: {group.id}",
        f"identifier: {group.identifier}",
        f"guid: {group.guid}",
        f"name: {group.name}",
        f"service: {group.service}",
    ]
    for key in ("account_id", "account_login", "last_addressed_handle"):
        value = getattr(group, key)
        if value:
            lines.append(f"{key}: {value}")
    lines.append(f"is_group: {'true' if group.is_group else 'false'}")
    if group.participants:
        lines.append("participants:")
        lines.extend(f"  - {handle}" for handle in group.participants)
    else:
        lines.append("participants: (none)")
    return lines


def message_lines(message: Message, *, attachments: bool = False) -> list[str]:
    direction = "sent" if message.is_from_me else "recv"
    if message.is_reaction:
        verb = "added" if message.is_reaction_add else "removed"
        emoji = message.reaction_emoji or "a"
        return [
            f"{message.created_at} [{direction}] {message.sender} {verb} {emoji} reaction"
            f" to {message.reacted_to_guid}"
        ]
    # U+FFFC marks where an attachment sits in the text; the attachment lines say more.
    text = message.text.replace("\ufffc", "").replace("\n", "\n    ")
    if message.retracted_at:
        text = "(unsent)"
    elif message.edited_at:
        text += " (edited)"
    if message.group_event:
        return [f"{message.created_at} [event] {message.group_event.description or text}"]
    if message.poll is not None:
        shown = display_text(message.poll)
        text = f"{text} {shown}" if text.strip() else shown
    sender = message.sender if message.is_from_me else message.sender_name or message.sender
    lines = [f"{message.created_at} [{direction}] {sender}: {text}"]
    if message.reply_to_text is not None:
        lines.append(f"  in reply to {message.reply_to_sender}: {message.reply_to_text}")
    if message.attachments:
        if attachments:
            for a in message.attachments:
                name = a.transfer_name or a.filename or "(unknown)"
                line = (f"  attachment: name={name} mime={a.mime_type}"
                        f" missing={'true' if a.missing else 'false'} path={a.original_path}")
                if a.converted_path:
                    line += (f" converted_mime={a.converted_mime_type}"
                             f" converted_path={a.converted_path}")
                elif a.conversion_error:
                    line += f" conversion_error={a.conversion_error}"
                lines.append(line)
        else:
            count = len(message.attachments)
            lines.append(f"  ({count} attachment{'s' if count != 1 else ''})")
    if message.reactions:
        summary = " ".join(
            f"{r.emoji} {'me' if r.is_from_me else r.sender}" for r in message.reactions
        )
        lines.append(f"  reactions: {summary}")
    return lines


def stats_lines(stats: Stats) -> list[str]:
    """``imsg stats`` as text: totals, then one section per breakdown (empty ones left out)."""
    lines = [
        f"Messages: {stats.total_messages} ({stats.sent_messages} sent,"
        f" {stats.received_messages} received)",
        f"Time zone: {stats.time_zone}",
    ]
    sections = (
        ("By chat:", [f"  {c.chat_id} {c.name}: {c.message_count} ({c.service})"
                      for c in stats.chats]),
        ("By sender:", [f"  {s.handle}: {s.message_count}" for s in stats.senders]),
        ("By service:", [f"  {s.service}: {s.message_count}" for s in stats.services]),
        ("By date:", [f"  {d.date}: {d.message_count}" for d in stats.dates]),
    )
    for title, rows in sections:
        if rows:
            lines.append(title)
            lines.extend(rows)
    media = stats.media
    if media is not None:
        lines.append(f"Media: {media.total_attachments} attachments, {media.total_bytes} bytes")
        if media.types:
            lines.append("By media type:")
            lines.extend(f"  {t.uti} {t.mime_type}: {t.attachment_count}, {t.total_bytes} bytes"
                         for t in media.types)
        if media.chats:
            lines.append("Media by chat:")
            lines.extend(f"  {c.chat_id} {c.name}: {c.attachment_count}, {c.total_bytes} bytes"
                         for c in media.chats)
    return lines


def scheduled_line(message: ScheduledMessage) -> str:
    """``<scheduled_at> <guid> [<chat_id>] <text>``."""
    text = message.text.replace("\n", "\n    ")
    return f"{message.scheduled_at} {message.guid} [{message.chat_id}] {text}"
