"""The bridge's vocabulary: tapback kinds, expressive-send effects, text-formatting ranges and
message targets, normalized as the Swift tool normalizes them. Pure functions; bad input
raises ``InvalidInput`` (-32602, exit 2) with the Swift tool's words where it has them.
"""

from __future__ import annotations

import re
from typing import Any

from imsg.errors import InvalidInput

KINDS = ("love", "like", "dislike", "laugh", "emphasize", "question")
_KIND_SPELLINGS = {
    "love": ("love", "heart", "❤️", "❤"),
    "like": ("like", "thumbsup", "thumbs-up", "+1", "👍"),
    "dislike": ("dislike", "thumbsdown", "thumbs-down", "-1", "👎"),
    "laugh": ("laugh", "haha", "lol", "😂", "🤣"),
    "emphasize": ("emphasize", "emphasis", "!!", "‼", "‼️"),
    "question": ("question", "?", "❓"),
}
_KIND_BY_SPELLING = {s: kind for kind, spellings in _KIND_SPELLINGS.items() for s in spellings}
UNSUPPORTED_KIND = ("unsupported tapback reaction {}; use love, like, dislike, laugh, emphasize, "
                    "or question")

_APPLE_SENDS = ("impact", "loud", "gentle", "invisibleink")
_SCREEN_EFFECTS = ("confetti", "lasers", "fireworks", "balloons", "sparkles", "spotlight", "echo",
                   "love", "celebration")
STYLES = ("bold", "italic", "underline", "strikethrough")
_PART_TARGET = re.compile(r"p:(\d+)/(.+)")


def tapback_kind(value: str) -> tuple[str, bool]:
    """``(kind, remove)`` for a kind spelling, case-insensitive, optionally ``remove-``
    prefixed; raises InvalidInput."""
    text = value.strip()
    remove = text.lower().startswith("remove-")
    if remove:
        text = text[len("remove-"):]
    kind = _KIND_BY_SPELLING.get(text.lower()) or _KIND_BY_SPELLING.get(text)
    if kind is None:
        raise InvalidInput(UNSUPPORTED_KIND.format(value))
    return kind, remove


def effect_id(value: str) -> str:
    """An effect name as the helper wants it: ``impact`` → ``com.apple.MobileSMS.expressivesend
    .impact``, ``confetti`` → ``com.apple.messages.effect.CKConfettiEffect``; ``com.apple.…``
    and unknown names pass through trimmed (the helper reports unknown ones)."""
    text = value.strip()
    lowered = text.lower()
    if lowered.startswith("com.apple."):
        return text
    if lowered in _APPLE_SENDS:
        return f"com.apple.MobileSMS.expressivesend.{lowered}"
    if lowered in _SCREEN_EFFECTS:
        return f"com.apple.messages.effect.CK{lowered.capitalize()}Effect"
    return text


def text_formatting(ranges: list[Any], name: str = "text_formatting") -> list[dict[str, Any]]:
    """Formatting ranges ``{start, length, styles}`` checked for shape (UTF-16 offsets; the
    helper skips out-of-range or empty ranges and unknown styles, so only types are checked
    here); raises InvalidInput."""
    checked: list[dict[str, Any]] = []
    for item in ranges:
        if not isinstance(item, dict):
            raise InvalidInput(f"{name} must be an array of objects")
        start, length, styles = item.get("start"), item.get("length"), item.get("styles")
        if not _is_int(start) or not _is_int(length):
            raise InvalidInput(f"{name} ranges need integer start and length")
        if not isinstance(styles, list) or not all(isinstance(s, str) for s in styles):
            raise InvalidInput(f"{name} styles must be an array of strings")
        checked.append({"start": start, "length": length, "styles": list(styles)})
    return checked


def message_target(value: str) -> tuple[str, int | None]:
    """``GUID`` or ``p:N/GUID`` → ``(GUID, N or None)``; raises InvalidInput when empty."""
    text = value.strip()
    match = _PART_TARGET.fullmatch(text)
    if match:
        return match.group(2), int(match.group(1))
    if not text:
        raise InvalidInput("message_id or message_guid is required")
    return text, None


def direct_guid(handle: str, service: str) -> str:
    """The chat GUID Messages gives a direct chat with ``handle`` on ``service``."""
    prefix = "SMS" if service.lower() == "sms" else "iMessage"
    return f"{prefix};-;{handle}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
