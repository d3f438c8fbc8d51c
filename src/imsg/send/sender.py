"""Sending through Messages.app: ``send()`` (text and/or one file) and ``react()`` (tapback).

Both block until Messages has answered and chat.db shows the result, keep all state per
call (safe from worker threads), never write to stdout, and raise only ``imsg.errors``:
InvalidInput/InvalidTarget/AttachmentError before anything is sent; ChatNotFound and the
DatabaseError family when chat.db cannot tell where the target is; AutomationDenied,
MessagesUnavailable, UnknownChatInMessages, SendTimeout, SendError from osascript; and
SendNotConfirmed when Messages answered but chat.db shows no matching row (or a ghost row).

Routing: groups (and chats whose identifier is not a handle) are addressed as
``chat id "<guid>"``, so a group send can never go to one member. Direct chats and handles
are addressed as the buddy of their service: on macOS 26 a direct chat's guid in chat.db
(``any;-;…``) is often unknown to AppleScript (Swift imsg #244), while the buddy is not.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass
from typing import Literal

from imsg.chatdb.reader import ChatDB, ChatRef
from imsg.errors import InvalidInput, UnknownChatInMessages
from imsg.send import applescript
from imsg.send.service import choose_service, find_chat
from imsg.send.stage import DEFAULT_MAX_FILE_BYTES, check_file, stage_file
from imsg.send.targets import Target, normalize_phone
from imsg.send.verify import Part, Scope, confirm_reaction, confirm_send, ghost_names

_APPLE_SERVICE = {"imessage": "iMessage", "sms": "SMS"}


@dataclass(frozen=True, slots=True)
class SendResult:
    """A verified send: the outgoing row Messages wrote (the text's, else the file's).

    ``ok`` is True in every result (failures raise); it is kept for the wire shape. ``chat_id``
    is None when the row was not joined to a chat by the end of verification.
    """

    ok: bool
    service: str
    id: int | None = None
    guid: str | None = None
    chat_id: int | None = None
    verify_ms: float = 0.0

    def to_dict(self) -> dict[str, object]:
        """``{"status": "sent", "ok": true, "id"?, "guid"?, "chat_id"?, "service"}``."""
        out: dict[str, object] = {"status": "sent", "ok": self.ok}
        for key, value in (("id", self.id), ("guid", self.guid), ("chat_id", self.chat_id)):
            if value is not None:
                out[key] = value
        out["service"] = self.service
        return out


@dataclass(frozen=True, slots=True)
class _Route:
    """How to address the target in AppleScript, and where its rows must appear."""

    kind: Literal["chat", "buddy"]
    name: str
    service: str
    scope: Scope
    what: str
    sms_fallback: bool = False


def send(target: Target, *, text: str | None = None, file: str | None = None,
         db_path: str | None = None, region: str = "US", timeout_s: float = 30.0,
         max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> SendResult:
    """Send ``text`` and/or ``file`` (text first) to ``target`` and verify it in chat.db.

    ``region`` reads a chat identifier that is a national phone number; ``timeout_s`` bounds
    osascript; files over ``max_file_bytes`` are refused. Failure modes: module docstring.
    """
    text = text or ""
    if not text and not file:
        raise InvalidInput("Nothing to send: give a text, a file, or both")
    if text and not text.strip():
        raise InvalidInput("The text is only whitespace; Messages would not send it")
    source = check_file(file, max_file_bytes) if file else None
    with ChatDB(db_path) as db:
        route = _route(db, target, region, text_only=source is None)
        staged = str(stage_file(source)) if source else ""
        parts = [Part(text)] if text else []
        if source:
            parts.append(Part(source.name, is_file=True))
        baseline = db.max_rowid()
        _deliver(route, text, staged, timeout_s)
        started = time.monotonic()
        row = confirm_send(db, baseline, route.scope, parts, what=route.what)
        verify_ms = (time.monotonic() - started) * 1000
    return SendResult(ok=True, service=(row.service or route.service).lower(), id=row.id,
                      guid=row.guid or None, chat_id=row.chat_id, verify_ms=verify_ms)


def _route(db: ChatDB, target: Target, region: str, *, text_only: bool) -> _Route:
    if target.is_chat:
        return _chat_route(find_chat(db, target), region)
    choice = choose_service(db, target.value, target.service, text_only=text_only)
    return _Route("buddy", target.value, choice.service, Scope(handle=target.value),
                  f"{target.value} on {_APPLE_SERVICE[choice.service]}", choice.sms_fallback)


def _chat_route(chat: ChatRef, region: str) -> _Route:
    service = chat.service.lower()
    handle = None if chat.is_group else _chat_handle(chat.identifier, region)
    if handle and service in _APPLE_SERVICE:
        return _Route("buddy", handle, service, Scope(chat_id=chat.id, handle=handle),
                      f"chat {chat.id} ({handle} on {chat.service})")
    return _Route("chat", chat.guid or chat.identifier, service or "imessage",
                  Scope(chat_id=chat.id, ghost_names=ghost_names(chat.guid, chat.identifier)),
                  f"chat {chat.id} ({chat.guid or chat.identifier})")


def _chat_handle(identifier: str, region: str) -> str | None:
    """The handle a direct chat's identifier names, if it is a phone or an email."""
    if "@" in identifier and ";" not in identifier:
        return identifier
    return normalize_phone(identifier, region)


def _deliver(route: _Route, text: str, file: str, timeout_s: float) -> None:
    if route.kind == "chat":
        applescript.send_to_chat(route.name, text=text, file=file, timeout_s=timeout_s,
                                 what=route.what)
        return
    try:
        applescript.send_to_buddy(route.name, apple_service=_APPLE_SERVICE[route.service],
                                  text=text, file=file, timeout_s=timeout_s, what=route.what)
    except UnknownChatInMessages:
        if not route.sms_fallback:
            raise
        applescript.send_to_buddy(route.name, apple_service="SMS", text=text, file=file,
                                  timeout_s=timeout_s, what=f"{route.name} on SMS")


# --- tapbacks ---------------------------------------------------------------------------------

REACTIONS: dict[str, tuple[str, str]] = {  # kind → (emoji, key in Messages' tapback menu)
    "love": ("❤️", "1"),
    "like": ("👍", "2"),
    "dislike": ("👎", "3"),
    "laugh": ("😂", "4"),
    "emphasis": ("‼️", "5"),
    "question": ("❓", "6"),
}
_ALIASES = {
    "love": ("love", "heart", "❤️", "❤"),
    "like": ("like", "thumbsup", "thumbs-up", "👍"),
    "dislike": ("dislike", "thumbsdown", "thumbs-down", "👎"),
    "laugh": ("laugh", "haha", "lol", "😂"),
    "emphasis": ("emphasis", "emphasize", "exclaim", "exclamation", "‼️", "‼"),
    "question": ("question", "questionmark", "question-mark", "❓", "?"),
}
_REACTION_BY_NAME = {alias: kind for kind, names in _ALIASES.items() for alias in names}
# Symbols, modifiers (skin tones), marks and format characters (VS16, ZWJ).
_EMOJI_CATEGORIES = frozenset({"So", "Sk", "Mn", "Me", "Cf"})


def parse_reaction(value: str) -> str:
    """The tapback kind for a name, Swift alias or emoji. Raises InvalidInput, saying so
    when ``value`` is a custom emoji (AppleScript cannot send those)."""
    name = value.strip()
    kind = _REACTION_BY_NAME.get(name.lower())
    if kind:
        return kind
    if _is_single_emoji(name):
        raise InvalidInput(f"Unsupported reaction: custom emoji tapback {name} cannot be sent "
                           "through Messages' scripting; use love, like, dislike, laugh, "
                           "emphasis or question")
    raise InvalidInput(f"Invalid reaction: {value!r} (valid: {', '.join(REACTIONS)})")


def _is_single_emoji(value: str) -> bool:
    """Roughly one emoji: symbols only, several only when joined by ZWJ or a flag pair."""
    if not value or any(unicodedata.category(ch) not in _EMOJI_CATEGORIES for ch in value):
        return False
    bases = [ch for ch in value if unicodedata.category(ch) == "So"]
    is_flag = len(bases) == 2 and all("\U0001f1e6" <= ch <= "\U0001f1ff" for ch in bases)
    return is_flag or len(bases) == value.count("\u200d") + 1


def react(chat_id: int, reaction: str, *, db_path: str | None = None,
          timeout_s: float = 30.0) -> dict[str, object]:
    """Put a standard tapback on the latest message of chat ``chat_id`` and verify it.

    Limits: UI scripting through System Events. It needs Automation permission for Messages
    and System Events plus Accessibility; it brings Messages to the front and types into
    it; it opens the chat through Messages' search (by name, else identifier), so a
    similarly named chat can be picked; Cmd-T reacts to the chat's latest message only; custom
    emoji tapbacks are impossible. The tapback row is looked for in the chat for 2 s:
    SendNotConfirmed when it does not appear. Other failure modes as ``send``.
    """
    kind = parse_reaction(reaction)
    emoji, key = REACTIONS[kind]
    with ChatDB(db_path) as db:
        chat = db.chat_ref(chat_id)
        baseline = db.max_rowid()
        applescript.react_in_chat(chat.guid, lookup=_search_text(chat), key=key,
                                  timeout_s=timeout_s, what=f"chat {chat.id} ({chat.guid})")
        confirm_reaction(db, baseline, chat.id, kind)
    return {"success": True, "chat_id": chat_id, "reaction_type": kind, "reaction_emoji": emoji}


def _search_text(chat: ChatRef) -> str:
    """What to type into Messages' search to open the chat: its name, else its guid."""
    return chat.name.strip() or chat.guid
