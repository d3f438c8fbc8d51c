"""The tools that act: ``send_message``, ``react``, and with the IMCore bridge ``typing`` and
``mark_read``, all behind one ``Policy``.

**Policy.** Nothing is sent unless the server runs with ``--allow-send``; ``--allow-to`` (any
number of targets: handles, ``chat_id:N``, ``chat_guid:G``, ``chat_identifier:S``, contact
names) then limits every action to those recipients. A handle allows its direct chats; a direct
chat allows its handle; a group is allowed only by its own entry, never because a member is.
A refusal is ``SendNotAllowed`` and happens before anything is staged or run. ``--read-only``
servers do not list these tools at all.

**Sends** go through ``imsg.send.sender.send`` (fixed AppleScript, values as argv, verified in
chat.db: a send is reported only with its row) one at a time, and each is logged on stderr
with its outcome. Failures keep the library's message and delivery object (``retry_safe``).

**Tapbacks**: on any message through the bridge when its helper is ready, else on the chat's
latest message through Messages' UI (``imsg.send.sender.react``), which cannot reach an older
message: asking for one is an error saying so, before anything runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from imsg.chatdb.chats import ChatRef
from imsg.chatdb.reader import ChatDB
from imsg.errors import (
    ChatNotFound,
    ContactNotFound,
    ImsgError,
    InvalidInput,
    InvalidTarget,
    SendNotAllowed,
)
from imsg.send.service import find_chat
from imsg.send.targets import Target, looks_like_name, parse_target, target_from_fields

log = logging.getLogger("imsg.mcp")

SEND_TIMEOUT_S = 150.0
_NOT_ENABLED = ("Sending is off: this imsg mcp server was started without --allow-send, so it "
                "can only read. Ask the user to enable sending in the MCP host's configuration "
                "if they want it.")


@dataclass(frozen=True, slots=True)
class Allowed:
    """The recipients ``--allow-to`` names, resolved: handles and chat ids."""

    handles: frozenset[str]
    chats: frozenset[Target]  # chat targets, matched against the chat a send resolves to


@dataclass(frozen=True, slots=True)
class Policy:
    allow_send: bool = False
    read_only: bool = False
    allowed: Allowed | None = None  # None: any recipient

    @classmethod
    def parse(cls, *, allow_send: bool, read_only: bool, allow_to: Sequence[str],
              region: str = "US") -> Policy:
        """Check the flags together and resolve ``allow_to``; raises InvalidInput (flags that
        contradict, a malformed target) or InvalidTarget (a contact name that names nobody or
        several people)."""
        if read_only and allow_send:
            raise InvalidInput("--read-only and --allow-send cannot be combined")
        if allow_to and not allow_send:
            raise InvalidInput("--allow-to limits sending: it needs --allow-send")
        if not allow_to:
            return cls(allow_send, read_only)
        handles: set[str] = set()
        chats: set[Target] = set()
        for entry in allow_to:
            target = _allow_target(entry, region)
            if target.is_chat:
                chats.add(target)
            else:
                handles.add(target.value)
        return cls(allow_send, read_only, Allowed(frozenset(handles), frozenset(chats)))

    def describe(self) -> str:
        if self.read_only:
            return "read-only"
        if not self.allow_send:
            return "sending off"
        if self.allowed is None:
            return "sending on, any recipient"
        return f"sending on, only to {self.recipients()}"

    def recipients(self) -> str:
        """The ``--allow-to`` entries as resolved, for messages."""
        if self.allowed is None:
            return "anyone"
        return ", ".join(sorted(self.allowed.handles) + sorted(
            f"{t.kind}:{t.value}" for t in self.allowed.chats))

    def require_sending(self) -> None:
        """Raise SendNotAllowed unless the server runs with ``--allow-send``."""
        if not self.allow_send:
            raise SendNotAllowed(_NOT_ENABLED)

    def check(self, db: ChatDB, target: Target, what: str) -> None:
        """Raise SendNotAllowed unless ``target`` may receive ``what`` (module docstring)."""
        self.require_sending()
        if self.allowed is None:
            return
        keys = _recipient_keys(db, target)
        if keys & self.allowed.handles or _chat_allowed(db, target, self.allowed):
            return
        shown = target.value if target.kind == "handle" else f"{target.kind}:{target.value}"
        raise SendNotAllowed(f"Not allowed to {what} {shown}: this server may only act for "
                             f"{self.recipients()} (--allow-to)")


def _allow_target(entry: str, region: str) -> Target:
    try:
        return parse_target(entry, region=region)
    except InvalidTarget:
        if not looks_like_name(entry):
            raise
        return target_from_fields(to=entry, region=region)


def _recipient_keys(db: ChatDB, target: Target) -> set[str]:
    """The handles a target reaches: itself, or a direct chat's one member."""
    if not target.is_chat:
        return {target.value}
    try:
        chat = find_chat(db, target)
    except ChatNotFound:
        return set()
    if chat.is_group:
        return set()
    return {*chat.participants, chat.identifier} if len(chat.participants) <= 1 else set()


def _chat_allowed(db: ChatDB, target: Target, allowed: Allowed) -> bool:
    """Whether an allowed chat entry names the chat ``target`` resolves to (or, for a handle
    target, a direct chat with that handle)."""
    if not allowed.chats:
        return False
    try:
        wanted = find_chat(db, target).id if target.is_chat else None
    except ChatNotFound:
        return False
    for entry in allowed.chats:
        try:
            chat = find_chat(db, entry)
        except ChatNotFound:
            continue
        if wanted is not None and chat.id == wanted:
            return True
        if wanted is None and not chat.is_group and target.value in {*chat.participants,
                                                                      chat.identifier}:
            return True
    return False


class Actions:
    """The acting tools of one server: its policy, its database path, one action at a time."""

    def __init__(self, db_path: str, policy: Policy, region: str = "US") -> None:
        self.db_path = db_path
        self.policy = policy
        self.region = region
        self._lock = threading.Lock()

    def target(self, to: str | None, chat_id: int | None) -> Target:
        return target_from_fields(to=to, chat_id=chat_id, region=self.region)

    def send(self, db: ChatDB, *, to: str | None, chat_id: int | None, text: str | None,
             file: str | None) -> dict[str, object]:
        """Send after the policy check; the verified result (``SendResult.to_dict``) plus the
        chat's name. Raises SendNotAllowed, the target errors and the SendError family."""
        from imsg.send.sender import send

        self.policy.require_sending()
        try:
            target = self.target(to, chat_id)
        except ContactNotFound as err:
            raise InvalidTarget(err.message + _suggestions(db, to or "")) from None
        self.policy.check(db, target, "send to")
        what = _describe(text, file)
        with self._lock:
            log.warning("send to %s:%s (%s)", target.kind, target.value, what)
            try:
                result = send(target, text=text, file=file, db_path=self.db_path,
                              region=self.region, timeout_s=SEND_TIMEOUT_S)
            except ImsgError as err:
                log.warning("send to %s:%s failed: %s", target.kind, target.value, err.message)
                raise
        log.warning("sent to %s:%s as message %d in chat %d", target.kind, target.value,
                    result.id, result.chat_id)
        return result.to_dict()

    def react(self, db: ChatDB, *, message_id: int, reaction: str,
              bridge_ready: bool) -> dict[str, object]:
        """A tapback on message ``message_id`` (module docstring)."""
        self.policy.require_sending()
        found = db.messages_by_rowid([message_id])
        if not found or found[0][0].chat_id == 0:
            raise InvalidInput(f"No message #{message_id} in any chat")
        message = found[0][0]
        chat = db.chat_ref(message.chat_id)
        self.policy.check(db, Target("chat_id", str(chat.id)), "react in")
        with self._lock:
            log.warning("tapback %s on message %d in chat %d", reaction, message_id, chat.id)
            if bridge_ready:
                return _bridge_tapback(chat, message.guid, reaction)
            from imsg.send.sender import parse_reaction, react

            parse_reaction(reaction)
            latest = db.history(chat.id, limit=1)
            if not latest or latest[0].id != message_id:
                raise InvalidInput(
                    f"Without the IMCore bridge only the latest message of a chat can get a "
                    f"tapback (#{latest[0].id if latest else '?'} in chat {chat.id}); run "
                    "`imsg launch` to react to older messages")
            return react(chat.id, reaction, db_path=self.db_path)

    def bridge_call(self, db: ChatDB, action: str, chat_ref: ChatRef,
                    params: dict[str, object]) -> None:
        """A bridge ``typing``/``read`` for ``chat_ref`` after the policy check."""
        from imsg.bridge.client import BridgeClient

        what = "show typing in" if action == "typing" else "mark as read"
        self.policy.check(db, Target("chat_id", str(chat_ref.id)), what)
        with self._lock:
            log.warning("%s in chat %d", action, chat_ref.id)
            BridgeClient().call(action, {"handle": chat_ref.guid, **params})


def _suggestions(db: ChatDB, name: str) -> str:
    """`` Did you mean …`` with the direct chats a name nearly matches (or nothing)."""
    from imsg.mcp.finding import find_chats
    from imsg.mcp.formatting import chat_title

    names: dict[str, str] = {}
    try:
        found = [f.chat for f in find_chats(db, name, 5, names) if not f.chat.is_group]
    except ImsgError:
        return ""
    if not found:
        return ""
    listed = "; ".join(f"{chat_title(chat, names)}: to=\"{chat.identifier}\"" for chat in found[:3])
    return f". Did you mean: {listed}?"


def _bridge_tapback(chat: ChatRef, guid: str, reaction: str) -> dict[str, object]:
    from imsg.bridge import vocab
    from imsg.bridge.client import BridgeClient

    kind, remove = vocab.tapback_kind(reaction)
    BridgeClient().call("send-reaction", {
        "chatGuid": chat.guid, "selectedMessageGuid": guid,
        "reactionType": f"remove-{kind}" if remove else kind, "partIndex": 0})
    return {"success": True, "chat_id": chat.id, "reaction_type": kind, "transport": "bridge"}


def _describe(text: str | None, file: str | None) -> str:
    parts = []
    if text:
        parts.append(f"{len(text)} characters of text")
    if file:
        parts.append(f"file {file}")
    return ", ".join(parts) or "nothing"
