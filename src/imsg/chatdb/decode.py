"""Decoding the columns whose meaning is not plain: tapbacks, edits, unsends, plists, events.

Every function here is total: malformed input yields ``None`` or an empty result, never an
exception, because one bad row must not hide a whole conversation.
"""

from __future__ import annotations

import plistlib
from dataclasses import dataclass
from typing import Any

from imsg.chatdb.dates import iso_from_apple
from imsg.chatdb.models import EditVersion, GroupEvent, URLPreview
from imsg.chatdb.typedstream import body_text

REACTION_ADD = range(2000, 2008)
REACTION_REMOVE = range(3000, 3008)
REACTION_KINDS = ("love", "like", "dislike", "laugh", "emphasis", "question", "custom", "sticker")
REACTION_EMOJI = {
    "love": "❤️",
    "like": "👍",
    "dislike": "👎",
    "laugh": "😂",
    "emphasis": "‼️",
    "question": "❓",
}


@dataclass(frozen=True, slots=True)
class Tapback:
    kind: str
    is_add: bool
    target_guid: str
    emoji: str | None


def row_text(text: object, body: object) -> str:
    """``message.text``, else the decoded ``attributedBody``, else ``""`` (also for values of
    the wrong type, as a corrupt row may hold)."""
    if text and isinstance(text, str):
        return text
    return body_text(body) or "" if body and isinstance(body, bytes) else ""


def is_reaction_type(value: int | None) -> bool:
    return value is not None and (value in REACTION_ADD or value in REACTION_REMOVE)


def target_guid(associated: str | None) -> str:
    """The GUID a tapback points at: ``p:N/GUID`` and ``bp:GUID`` lose their prefix."""
    if not associated:
        return ""
    if "/" in associated:
        return associated.rsplit("/", 1)[1]
    if associated.startswith("bp:"):
        return associated[3:]
    return associated


def tapback(
    assoc_type: int | None, assoc_guid: str | None, emoji_column: str | None, text: str
) -> Tapback | None:
    """Describe a tapback row, or None if the row is not one."""
    if not is_reaction_type(assoc_type):
        return None
    assert assoc_type is not None
    is_add = assoc_type in REACTION_ADD
    kind = REACTION_KINDS[assoc_type % 1000]
    emoji: str | None = REACTION_EMOJI.get(kind)
    if kind == "custom":
        emoji = emoji_column or custom_emoji_from_text(text)
    return Tapback(kind, is_add, target_guid(assoc_guid), emoji)


def custom_emoji_from_text(text: str) -> str | None:
    """The emoji of a custom tapback on schemas without ``associated_message_emoji``.

    Messages writes ``Reacted 🎉 to “…”`` (localized, e.g. ``🎉 reagiu a “…”``): take the
    text between ``Reacted``/``Removed`` and the next space, else the first emoji-looking
    grapheme (a symbol outside ASCII letters/punctuation, with its modifiers and joiners).
    """
    for verb in ("Reacted ", "Removed "):
        if text.startswith(verb):
            candidate = text[len(verb) :].split(" ", 1)[0]
            if candidate and not candidate.isascii():
                return candidate
    return _first_emoji(text)


_JOINERS = {"\u200d", "\ufe0f", "\ufe0e", "\u20e3"}


def _is_emoji_start(ch: str) -> bool:
    code = ord(ch)
    return code >= 0x2190 and not ch.isalnum() and ch not in "“”‘’„«»"


def _first_emoji(text: str) -> str | None:
    for i, ch in enumerate(text):
        if not _is_emoji_start(ch):
            continue
        end = i + 1
        while end < len(text) and (
            text[end] in _JOINERS
            or 0x1F3FB <= ord(text[end]) <= 0x1F3FF  # skin tones
            or 0x1F1E6 <= ord(text[end]) <= 0x1F1FF  # second half of a flag
            or (text[end - 1] == "\u200d" and _is_emoji_start(text[end]))
        ):
            end += 1
        return text[i:end]
    return None


def load_plist(blob: bytes | None) -> Any:
    if not blob:
        return None
    try:
        return plistlib.loads(blob)
    except Exception:
        return None


@dataclass(frozen=True, slots=True)
class SummaryInfo:
    """What ``message_summary_info`` says about edits and unsends."""

    history: list[EditVersion]
    retracted_parts: list[int]


def summary_info(blob: bytes | None) -> SummaryInfo:
    """Edit history (``ec``: part → [{d: float seconds, t: typedstream}]) and ``rp``."""
    info = load_plist(blob)
    if not isinstance(info, dict):
        return SummaryInfo([], [])
    history: list[EditVersion] = []
    edits = info.get("ec")
    if isinstance(edits, dict):
        for part in sorted(edits, key=lambda k: (len(str(k)), str(k))):
            versions = edits[part]
            if not isinstance(versions, list):
                continue
            for version in versions:
                if not isinstance(version, dict):
                    continue
                body = version.get("t")
                text = body_text(body) if isinstance(body, bytes) else None
                when = version.get("d")
                at = iso_from_apple(float(when)) if isinstance(when, int | float) else None
                history.append(EditVersion(text=text or "", at=at))
    retracted = info.get("rp")
    parts = [p for p in retracted if isinstance(p, int)] if isinstance(retracted, list) else []
    return SummaryInfo(history, parts)


def audio_transcription(user_info: bytes | None) -> str | None:
    info = load_plist(user_info)
    if isinstance(info, dict):
        value = info.get("audio-transcription")
        if isinstance(value, str) and value:
            return value
    return None


def url_preview(payload: bytes | None, text: str) -> URLPreview | None:
    """URL and title from a link-preview row's NSKeyedArchiver ``payload_data``."""
    archive = load_plist(payload)
    url = None
    title = None
    if isinstance(archive, dict) and isinstance(archive.get("$objects"), list):
        objects = archive["$objects"]
        for obj in objects:
            if not isinstance(obj, dict):
                continue
            url = url or _resolve(objects, obj.get("URL") or obj.get("originalURL"))
            title = title or _resolve(objects, obj.get("title"))
    url = url or text.strip()
    return URLPreview(url=url, title=title or None) if url else None


def _resolve(objects: list[Any], value: Any) -> str | None:
    """Follow one NSKeyedArchiver UID (and NSURL's ``NS.relative``) to a string."""
    for _ in range(4):
        if isinstance(value, plistlib.UID) and 0 <= value.data < len(objects):
            value = objects[value.data]
        elif isinstance(value, dict) and "NS.relative" in value:
            value = value["NS.relative"]
        else:
            break
    return value if isinstance(value, str) and value != "$null" else None


_GROUP_EVENTS = {
    (1, 0): "added",
    (1, 1): "removed",
    (2, 0): "renamed",
    (3, 0): "left",
    (3, 1): "photo_changed",
    (3, 2): "photo_removed",
}


def group_event(
    item_type: int, action: int, other: str | None, title: str | None
) -> GroupEvent | None:
    """A group event row (``item_type`` 1-3) as a typed event; None for ordinary rows."""
    if item_type not in (1, 2, 3):
        return None
    kind = _GROUP_EVENTS.get((item_type, action), "renamed" if item_type == 2 else "changed")
    return GroupEvent(
        type=kind,
        handle=other or None if item_type == 1 else None,
        title=title if item_type == 2 else None,
    )


def with_description(event: GroupEvent, actor: str) -> GroupEvent:
    """``event`` with ``description``: the sentence Messages shows for it."""
    return GroupEvent(type=event.type, handle=event.handle, title=event.title,
                      description=describe_group_event(event, actor))


def describe_group_event(event: GroupEvent, actor: str) -> str:
    """The line Messages shows in the transcript for a group event."""
    who = actor or "Someone"
    if event.type == "added":
        return f"{who} added {event.handle or 'someone'} to the conversation."
    if event.type == "removed":
        return f"{who} removed {event.handle or 'someone'} from the conversation."
    if event.type == "renamed":
        return f"{who} named the conversation “{event.title or ''}”."
    if event.type == "left":
        return f"{who} left the conversation."
    if event.type == "photo_changed":
        return f"{who} changed the group photo."
    if event.type == "photo_removed":
        return f"{who} removed the group photo."
    return f"{who} changed the conversation."
