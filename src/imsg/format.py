"""Human-readable lines for the CLI (``--json`` output uses ``models.to_json`` instead)."""

from __future__ import annotations

from imsg.chatdb.models import Chat, Group, Message


def chat_line(chat: Chat) -> str:
    return f"[{chat.id}] {chat.name} ({chat.identifier}) last={chat.last_message_at}"


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
        return [f"{message.created_at} [event] {text}"]
    lines = [f"{message.created_at} [{direction}] {message.sender}: {text}"]
    if message.reply_to_text is not None:
        lines.append(f"  in reply to {message.reply_to_sender}: {message.reply_to_text}")
    if message.attachments:
        if attachments:
            for a in message.attachments:
                name = a.transfer_name or a.filename or "(unknown)"
                lines.append(
                    f"  attachment: name={name} mime={a.mime_type}"
                    f" missing={'true' if a.missing else 'false'} path={a.original_path}"
                )
        else:
            count = len(message.attachments)
            lines.append(f"  ({count} attachment{'s' if count != 1 else ''})")
    if message.reactions:
        summary = " ".join(
            f"{r.emoji} {'me' if r.is_from_me else r.sender}" for r in message.reactions
        )
        lines.append(f"  reactions: {summary}")
    return lines
