"""Sending through Messages.app: ``send()`` (text and/or one file) and ``react()`` (tapback).

Both block until Messages has answered and chat.db shows the result, keep all state per
call (safe from worker threads), never write to stdout, and raise only ``imsg.errors``:
InvalidInput/InvalidTarget/AttachmentError before anything is sent; ChatNotFound and the
DatabaseError family when chat.db cannot tell where the target is; from osascript
AutomationDenied, MessagesUnavailable, UnknownChatInMessages, SendTimeout, SendError, each
with the disposition the script reported (``imsg.send.applescript``); SendNotConfirmed
(``may_have_completed``) when Messages answered but chat.db shows no matching row within the
verification window (or a ghost row); SendInterrupted when ``children.terminate_all`` stopped
the send. A send never reports success unless its row is in chat.db.

Routing: groups (and chats whose identifier is not a handle) are addressed as
``chat id "<guid>"``, so a group send can never go to one member. Direct chats and handles
are addressed as the buddy of their service: on macOS 26 a direct chat's guid in chat.db
(``any;-;…``) is often unknown to AppleScript (Swift imsg #244), while the buddy is not.

SMS fallback (as the Swift tool since 0.14): one retry over SMS only when
``allow_sms_fallback`` is set, the requested service is ``auto``, the target is a phone number
(not an email, not a chat), there is no file, iMessage was chosen, and the first attempt
failed ``not_started`` (Messages could not resolve the iMessage buddy; nothing was sent).
"""

from __future__ import annotations

import contextlib
import math
import time
import unicodedata
from dataclasses import dataclass, replace
from typing import Literal

from imsg.chatdb.reader import ChatDB, ChatRef
from imsg.errors import (
    AutomationDenied,
    ChatNotFound,
    InvalidInput,
    SendError,
    SendInterrupted,
)
from imsg.send import applescript
from imsg.send.service import choose_service, find_chat
from imsg.send.stage import DEFAULT_MAX_FILE_BYTES, SourceFile, open_source, stage_file
from imsg.send.targets import Target, direct_guid_target, normalize_phone
from imsg.send.verify import (
    REACTION_TIMEOUT_S,
    VERIFY_TIMEOUT_S,
    Part,
    Scope,
    confirm_reaction,
    confirm_send,
    ghost_names,
)

APPLE_SERVICE = {"imessage": "iMessage", "sms": "SMS"}
SMS_ROUTE = frozenset({"sms", "rcs"})  # what an SMS buddy's rows may say (RCS since macOS 15)
MAX_TIMEOUT_S = 24 * 60 * 60


@dataclass(frozen=True, slots=True)
class SendResult:
    """A verified send: the outgoing row Messages wrote (the text's, else the file's).

    ``service`` is the row's service in Messages' spelling (``iMessage``, ``SMS``, ``RCS``),
    ``chat_id``/``chat_guid`` its chat, ``verify_ms`` how long confirming it took.
    """

    service: str
    id: int
    guid: str
    chat_id: int
    chat_guid: str
    transport: str = "applescript"
    verify_ms: float = 0.0

    def to_dict(self) -> dict[str, object]:
        """The wire shape of the Swift tool 0.15 (``ok, transport, id, guid, message_id,
        chat_guid, service``; ``message_id`` = ``guid``) plus ``status`` and ``chat_id``.
        Empty values are omitted."""
        out: dict[str, object] = {"status": "sent", "ok": True, "transport": self.transport}
        for key, value in (("id", self.id), ("guid", self.guid), ("message_id", self.guid),
                           ("chat_id", self.chat_id), ("chat_guid", self.chat_guid),
                           ("service", self.service)):
            if value:
                out[key] = value
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

    @property
    def apple_service(self) -> str:
        return APPLE_SERVICE.get(self.service, self.service)

    def over_sms(self) -> _Route:
        """The same buddy over SMS, its rows scoped to the SMS route."""
        return replace(self, service="sms", scope=replace(self.scope, services=SMS_ROUTE),
                       what=f"{self.name} on SMS", sms_fallback=False)


def check_timeout(seconds: float, name: str = "timeout") -> float:
    """``seconds`` if it is a finite number above 0 and at most a day; raises InvalidInput
    (nan, inf, 0, negative, huge)."""
    if (isinstance(seconds, bool) or not isinstance(seconds, int | float)
            or not math.isfinite(seconds) or not 0 < seconds <= MAX_TIMEOUT_S):
        raise InvalidInput(f"Invalid {name}: {seconds!r} (seconds, more than 0 and at most "
                           f"{MAX_TIMEOUT_S})")
    return float(seconds)


def send(target: Target, *, text: str | None = None, file: str | None = None,
         db_path: str | None = None, region: str = "US", timeout_s: float = 30.0,
         max_file_bytes: int = DEFAULT_MAX_FILE_BYTES, allow_sms_fallback: bool = True,
         verify_timeout_s: float = VERIFY_TIMEOUT_S) -> SendResult:
    """Send ``text`` and/or ``file`` (text first) to ``target`` and verify it in chat.db.

    ``region`` reads a chat identifier that is a national phone number; ``timeout_s`` bounds
    osascript; files over ``max_file_bytes`` are refused; ``allow_sms_fallback`` gates the
    SMS retry (module docstring); ``verify_timeout_s`` is how long the row may take to appear.
    Failure modes: module docstring.
    """
    text = text or ""
    if not text and not file:
        raise InvalidInput("Nothing to send: give a text, a file, or both")
    if text and not text.strip():
        raise InvalidInput("The text is only whitespace; Messages would not send it")
    check_timeout(timeout_s)
    check_timeout(verify_timeout_s, "verification timeout")
    opened = open_source(file, max_file_bytes) if file else None
    with opened or contextlib.nullcontext(), ChatDB(db_path) as db:
        route = _route(db, target, region, text_only=opened is None,
                       allow_sms_fallback=allow_sms_fallback)
        staged = str(stage_file(opened)) if opened else ""
        parts = _parts(text, opened)
        baseline = db.max_rowid()
        route = _deliver(route, text, staged, timeout_s)
        started = time.monotonic()
        row = confirm_send(db, baseline, route.scope, parts, what=route.what,
                           timeout_s=verify_timeout_s)
        verify_ms = (time.monotonic() - started) * 1000
    return SendResult(service=row.service or route.apple_service, id=row.id, guid=row.guid,
                      chat_id=row.chat_id, chat_guid=row.chat_guid, verify_ms=verify_ms)


def _parts(text: str, source: SourceFile | None) -> list[Part]:
    parts = [Part(text)] if text else []
    if source is not None:
        parts.append(Part(source.name, is_file=True))
    return parts


def _route(db: ChatDB, target: Target, region: str, *, text_only: bool,
           allow_sms_fallback: bool) -> _Route:
    if target.is_chat:
        try:
            return _chat_route(find_chat(db, target), region)
        except ChatNotFound:
            # A direct guid Messages has no chat for yet (``iMessage;-;+1555…``, as gateways
            # build them): its handle, as the Swift tool's AppleScript would reach it.
            direct = direct_guid_target(target.value, region) if target.kind == "chat_guid" \
                else None
            if direct is None:
                raise
            target = direct
    choice = choose_service(db, target.value, target.service,
                            text_only=text_only, allow_sms_fallback=allow_sms_fallback)
    services = SMS_ROUTE if choice.service == "sms" else frozenset()
    return _Route("buddy", target.value, choice.service,
                  Scope(handle=target.value, services=services),
                  f"{target.value} on {APPLE_SERVICE[choice.service]}", choice.sms_fallback)


def _chat_route(chat: ChatRef, region: str) -> _Route:
    service = chat.service.lower()
    handle = None if chat.is_group else _chat_handle(chat.identifier, region)
    if handle and service in APPLE_SERVICE:
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


def _deliver(route: _Route, text: str, file: str, timeout_s: float) -> _Route:
    """Run the send script for ``route``; return the route the message went out on."""
    if route.kind == "chat":
        applescript.send_to_chat(route.name, text=text, file=file, timeout_s=timeout_s,
                                 what=route.what)
        return route
    try:
        applescript.send_to_buddy(route.name, apple_service=route.apple_service, text=text,
                                  file=file, timeout_s=timeout_s, what=route.what)
    except SendError as err:
        if (not route.sms_fallback or err.disposition != "not_started"
                or isinstance(err, AutomationDenied | SendInterrupted)):
            raise
        route = route.over_sms()
        applescript.send_to_buddy(route.name, apple_service="SMS", text=text, file=file,
                                  timeout_s=timeout_s, what=route.what)
    return route


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
          timeout_s: float = 30.0,
          verify_timeout_s: float = REACTION_TIMEOUT_S) -> dict[str, object]:
    """Put a standard tapback on the latest message of chat ``chat_id`` and verify it.

    Limits: UI scripting through System Events. It needs Automation permission for Messages
    and System Events plus Accessibility; it brings Messages to the front and types into
    it; it opens the chat through Messages' search (``typed_text`` of its name, else its
    identifier, else its guid: control characters and line breaks are never typed, so a
    group name cannot put text into the compose field), so a similarly named chat can be
    picked; Cmd-T reacts to the chat's latest message only; custom emoji tapbacks are
    impossible. The tapback row is looked for in the chat for ``verify_timeout_s`` (2 s):
    SendNotConfirmed when it does not appear. Other failure modes as ``send``.
    """
    kind = parse_reaction(reaction)
    emoji, key = REACTIONS[kind]
    check_timeout(timeout_s)
    check_timeout(verify_timeout_s, "verification timeout")
    with ChatDB(db_path) as db:
        chat = db.chat_ref(chat_id)
        baseline = db.max_rowid()
        applescript.react_in_chat(chat.guid, lookup=search_text(chat), key=key,
                                  timeout_s=timeout_s, what=f"chat {chat.id} ({chat.guid})")
        confirm_reaction(db, baseline, chat.id, kind, timeout_s=verify_timeout_s)
    return {"success": True, "chat_id": chat_id, "reaction_type": kind, "reaction_emoji": emoji}


TYPED_LIMIT = 100
_UNTYPABLE = frozenset({"Cc", "Zl", "Zp"})  # controls (newline, tab, escape…), line breaks


def typed_text(value: str) -> str:
    """``value`` safe to type with ``keystroke``: control characters and line or paragraph
    separators become spaces, runs of white space one space, at most ``TYPED_LIMIT``
    characters. Typing never presses Return, Tab or Escape, whoever chose the text."""
    cleaned = "".join(" " if unicodedata.category(ch) in _UNTYPABLE else ch for ch in value)
    return " ".join(cleaned.split())[:TYPED_LIMIT]


def search_text(chat: ChatRef) -> str:
    """What to type into Messages' search to open the chat: its name, else its identifier,
    else its guid, each through ``typed_text``."""
    for candidate in (chat.name, chat.identifier, chat.guid):
        typed = typed_text(candidate)
        if typed:
            return typed
    return ""
