"""A simulated IMCore helper: the helper side of the bridge's file IPC, against a simulated
chat.db, so every bridge feature is tested (and bots are tested in CI) without a Mac.

It behaves as the injected helper does: it takes ``.imsg-bridge-owner.lock`` (one serving
helper per container; a second one waits), removes orphan claims, makes ``.imsg-rpc/in`` and
``/out`` (0700), writes ``.imsg-bridge-ready`` with its PID, and scans the inbox every
``interval_s`` (100 ms, like the real one). Each ``<ID>.json`` is claimed by renaming it to
``<ID>.processing.<pid>`` (a lost rename means another consumer won), dispatched, answered
through ``out/<ID>.json.tmp`` renamed to ``out/<ID>.json``, and the claim deleted. Legacy v1
commands (``.imsg-command.json``) are served too. Responses are
``{"v":2,"id","success","data","error"?,"timestamp"}``.

What each action writes is what Messages writes: outgoing rows (``thread_originator_guid`` /
``thread_originator_part`` and ``reply_to_guid`` for threaded replies, the effect in
``expressive_send_style_id``, ``subject``), attachments, tapback rows (2000–2006 /
3000–3006, custom emoji; a sticker on a message is 2007 on macOS 26, 1000 before), edits
and unsends (``SimDB.edit``/``unsend``: the summary info and date columns of the schema's
macOS), read state, new chats, group changes with their group-event rows, polls (a Polls
balloon row; votes as type-4000 rows), and
``started-typing``/``stopped-typing`` lines in ``.imsg-events.jsonl`` (rotated at
``rotate_bytes``).

Failures on demand (``IMSG_SIM_BRIDGE_FAIL`` / ``failure``), ``MODE[=VALUE][:ACTION,…]``
(without actions, a mode about answers applies to every action but the probe ``status``):

- ``never-ready``: never writes the ready lock;
- ``unresponsive``: claims requests and never answers (the claim stays);
- ``malformed``: answers with a body that is not JSON;
- ``crash``: claims the request, then dies (the process exits with status 70; in a thread,
  the claim is left with a dead PID and serving stops): an orphan claim;
- ``slow[=SECONDS]``: waits (default 2 s) after claiming, then answers;
- ``wrong-id``: answers with another request's id;
- ``error``: answers ``success: false`` without doing anything;
- ``symlink-inbox``: ``.imsg-rpc/in`` is a symlink to a real directory it serves from.

``without`` turns selectors off in ``status`` (to test method gating), and with ``registry``,
``v2``, ``attachment_metadata`` or ``clientMessageGuid`` the status flags of those names.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import mimetypes
import os
import plistlib
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imsg.chatdb.typedstream import encode_attributed_string
from imsg.sim.messages import ME, PART, SimAttachment, SimDB

INTERVAL_S = 0.1
ROTATE_BYTES = 1024 * 1024
HELPER_VERSION = "0.15.10"
POLLS_BALLOON = ("com.apple.messages.MSMessageExtensionBalloonPlugin:0000000000:"
                 "com.apple.messages.Polls")
FAILURE_MODES = ("never-ready", "unresponsive", "malformed", "crash", "slow", "wrong-id", "error",
                 "symlink-inbox")
SELECTORS = (
    "sendMessage", "sendAttachment", "sendMultipart", "sendReaction", "emojiTapbackSend",
    "clientMessageGuid", "clientMessageGuidReservation", "editMessageItemTranslation",
    "editMessageItem", "editMessage", "retractMessagePart", "deleteMessage", "notifyAnyways",
    "sendMessageReason", "pollPayloadMessage", "pollVoteMessage", "pollUpdateMessage",
    "nicknameLookup", "namePhotoShouldOffer", "namePhotoShare", "stickerSetIsSticker",
    "stickerSetUserInfo", "stickerSetAttribution", "stickerTransferCenter", "stickerReplyTo",
    "stickerTargetMembership", "stickerTargetLookup", "stickerAttachmentMessage",
    "stickerAssociatedMessage", "stickerSend", "stickerAttach", "urlPreviewMessage",
    "sendRichLinkAction", "createChat", "deleteChat", "removeChat", "markChatUnread",
    "setDisplayName", "updateGroupPhoto", "addParticipant", "removeParticipant", "leaveChat",
    "checkIMessageAvailability",
)
_TAPBACK_NAMES = {"love": "love", "like": "like", "dislike": "dislike", "laugh": "laugh",
                  "emphasize": "emphasis", "question": "question"}


class ActionError(Exception):
    """The helper's ``success: false`` with this message."""


@dataclass(frozen=True)
class Failure:
    mode: str
    value: float | None = None
    actions: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> Failure | None:
        """``MODE[=VALUE][:ACTION,…]``; None for an empty text; ValueError otherwise."""
        text = text.strip()
        if not text:
            return None
        head, _, scope = text.partition(":")
        mode, _, value = head.partition("=")
        if mode not in FAILURE_MODES:
            raise ValueError(f"unknown failure mode {mode!r}; use one of "
                             f"{', '.join(FAILURE_MODES)}")
        number = float(value) if value else None
        actions = frozenset(a.strip() for a in scope.split(",") if a.strip())
        return cls(mode, number, actions)

    def applies(self, action: str) -> bool:
        if self.actions:
            return action in self.actions
        return action not in ("status", "bridge-status")


@dataclass
class SimHelper:
    """The simulated helper for one chat.db and one container (module docstring)."""

    db_path: str
    container: Path
    interval_s: float = INTERVAL_S
    failure: Failure | None = None
    without: frozenset[str] = frozenset()
    rotate_bytes: int = ROTATE_BYTES
    exit_on_crash: bool = True
    timing: bool = False
    _db: SimDB | None = field(default=None, init=False, repr=False)
    _owner_fd: int = field(default=-1, init=False, repr=False)
    _typing: dict[str, bool] = field(default_factory=dict, init=False, repr=False)
    _legacy_mtime: float = field(default=0.0, init=False, repr=False)
    crashed: bool = field(default=False, init=False)

    # --- life cycle --------------------------------------------------------------------------

    @property
    def inbox(self) -> Path:
        return self.container / ".imsg-rpc" / "in"

    @property
    def outbox(self) -> Path:
        return self.container / ".imsg-rpc" / "out"

    @property
    def ready_lock(self) -> Path:
        return self.container / ".imsg-bridge-ready"

    @property
    def events_path(self) -> Path:
        return self.container / ".imsg-events.jsonl"

    def start(self, stop: threading.Event | None = None) -> bool:
        """Become the container's helper (waiting for the owner lock) and publish readiness;
        False when ``stop`` was set while waiting."""
        self.container.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.container / ".imsg-bridge-owner.lock", os.O_RDWR | os.O_CREAT, 0o600)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if stop is not None and stop.wait(self.interval_s):
                    os.close(fd)
                    return False
                if stop is None:
                    time.sleep(self.interval_s)
        self._owner_fd = fd
        rpc = self.container / ".imsg-rpc"
        rpc.mkdir(mode=0o700, exist_ok=True)
        if self.failure is not None and self.failure.mode == "symlink-inbox":
            real = rpc / "in-real"
            real.mkdir(mode=0o700, exist_ok=True)
            if not self.inbox.is_symlink():
                with contextlib.suppress(FileNotFoundError):
                    self.inbox.rmdir()
                self.inbox.symlink_to(real)
        else:
            self.inbox.mkdir(mode=0o700, exist_ok=True)
        self.outbox.mkdir(mode=0o700, exist_ok=True)
        self._remove_orphans()
        self.events_path.touch(exist_ok=True)
        self._db = SimDB(self.db_path)
        if not (self.failure is not None and self.failure.mode == "never-ready"):
            self.ready_lock.write_text(str(os.getpid()))
        return True

    def close(self) -> None:
        """Stop being the helper: the ready lock goes (unless crashed), the owner lock is
        released."""
        if not self.crashed:
            with contextlib.suppress(FileNotFoundError):
                if self.ready_lock.read_text().strip() == str(os.getpid()):
                    self.ready_lock.unlink()
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._owner_fd >= 0:
            os.close(self._owner_fd)
            self._owner_fd = -1

    def serve(self, stop: threading.Event) -> None:
        """Scan until ``stop`` is set (or a crash)."""
        if not self.start(stop):
            return
        try:
            while not stop.is_set() and not self.crashed:
                self.scan()
                stop.wait(self.interval_s)
        finally:
            self.close()

    def scan(self) -> None:
        """One pass over the inbox (and the legacy command file)."""
        try:
            names = sorted(n for n in os.listdir(self.inbox) if n.endswith(".json"))
        except OSError:
            names = []
        for name in names:
            if self.crashed:
                return
            self._take(name[: -len(".json")])
        self._serve_legacy()

    # --- requests ----------------------------------------------------------------------------

    def _take(self, rid: str) -> None:
        claim = self.inbox / f"{rid}.processing.{os.getpid()}"
        try:
            os.rename(self.inbox / f"{rid}.json", claim)
        except OSError:
            return  # another consumer won
        claimed_at = time.time()
        try:
            request = json.loads(claim.read_bytes())
        except (OSError, ValueError):
            request = {}
        action = request.get("action") if isinstance(request, dict) else None
        action = action if isinstance(action, str) else ""
        if self._fails("unresponsive", action):
            return
        if self._fails("crash", action):
            self._crash(claim)
            return
        if self._fails("slow", action):
            time.sleep(self.failure.value if self.failure and self.failure.value else 2.0)
        answer = self._answer(request, action)
        if self.timing:
            answer.setdefault("data", {})["_timing"] = {"claimed_at": claimed_at,
                                                        "answered_at": time.time()}
        body = json.dumps(answer).encode()
        if self._fails("malformed", action):
            body = b'{"v":2,"id":'
        temporary = self.outbox / f"{rid}.json.tmp"
        temporary.write_bytes(body)
        os.rename(temporary, self.outbox / f"{rid}.json")
        with contextlib.suppress(FileNotFoundError):
            claim.unlink()

    def _answer(self, request: Any, action: str) -> dict[str, Any]:
        rid = request.get("id") if isinstance(request, dict) else None
        if self._fails("wrong-id", action):
            rid = str(uuid.uuid4()).upper()
        answer: dict[str, Any] = {"v": 2, "id": rid, "success": True,
                                  "timestamp": datetime.now(UTC).isoformat()}
        try:
            if self._fails("error", action):
                raise ActionError(f"simulated failure of {action}")
            params = request.get("params") if isinstance(request, dict) else None
            answer["data"] = self.dispatch(action, params if isinstance(params, dict) else {})
        except ActionError as exc:
            answer.update(success=False, error=str(exc))
        except (sqlite3.Error, OSError, ValueError, TypeError) as exc:  # the helper answers
            answer.update(success=False, error=f"{action} failed: {exc}")
        return answer

    def _serve_legacy(self) -> None:
        command = self.container / ".imsg-command.json"
        try:
            info = command.lstat()
        except OSError:
            return
        if info.st_size <= 2 or info.st_mtime == self._legacy_mtime:
            return
        self._legacy_mtime = info.st_mtime
        try:
            request = json.loads(command.read_bytes())
        except (OSError, ValueError):
            return
        action = request.get("action") if isinstance(request, dict) else ""
        answer = self._answer(request, action if isinstance(action, str) else "")
        answer.pop("v", None)
        (self.container / ".imsg-response.json").write_text(json.dumps(answer))
        command.write_bytes(b"")

    def _fails(self, mode: str, action: str) -> bool:
        return (self.failure is not None and self.failure.mode == mode
                and self.failure.applies(action))

    def _crash(self, claim: Path) -> None:
        self.crashed = True
        if self.exit_on_crash:
            os._exit(70)
        dead = _dead_pid()
        claim.rename(claim.with_name(claim.name.rsplit(".", 1)[0] + f".{dead}"))

    def _remove_orphans(self) -> None:
        from imsg.bridge.outcome import ORPHAN_AFTER_S, pid_alive

        now = time.time()
        for name in os.listdir(self.inbox):
            if ".processing." not in name:
                continue
            path = self.inbox / name
            pid = name.rsplit(".", 1)[-1]
            with contextlib.suppress(OSError):
                old = now - path.lstat().st_mtime >= ORPHAN_AFTER_S
                if old or not pid.isdigit() or not pid_alive(int(pid)):
                    path.unlink()

    # --- actions -----------------------------------------------------------------------------

    @property
    def db(self) -> SimDB:
        assert self._db is not None, "start() first"
        return self._db

    def dispatch(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        """Do ``action`` as the helper would; raises ActionError."""
        if not action:
            raise ActionError("Missing action")
        handler = self._handlers().get(action)
        if handler is None:
            raise ActionError(f"Unknown action: {action}")
        return handler(params)

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "ping": lambda p: {"pong": True},
            "status": self._status,
            "bridge-status": self._status,
            "list_chats": self._list_chats,
            "typing": self._typing_action,
            "start-typing": lambda p: self._set_typing(self._chat_guid(p), True),
            "stop-typing": lambda p: self._set_typing(self._chat_guid(p), False),
            "check-typing-status": lambda p: {
                "typing": self._typing.get(self._chat_guid(p), False)},
            "read": lambda p: self._mark(self._chat_for(_required(p, "handle")), read=True),
            "mark-chat-read": lambda p: self._mark(self._chat(p), read=True),
            "mark-chat-unread": lambda p: self._mark(self._chat(p), read=False),
            "send-message": self._send_message,
            "send-rich-link": self._send_rich_link,
            "send-multipart": self._send_multipart,
            "send-attachment": self._send_attachment,
            "send-sticker": self._send_sticker,
            "send-poll": self._send_poll,
            "send-poll-vote": lambda p: self._vote(p, [_required(p, "optionIdentifier")]),
            "send-poll-unvote": lambda p: self._vote(p, _strings(p, "remainingOptionIdentifiers")),
            "send-reaction": self._send_reaction,
            "edit-message": self._edit,
            "unsend-message": self._unsend,
            "delete-message": self._delete_message,
            "notify-anyways": self._notify_anyways,
            "add-participant": lambda p: self._membership(p, add=True),
            "remove-participant": lambda p: self._membership(p, add=False),
            "set-display-name": self._rename,
            "update-group-photo": self._group_photo,
            "leave-chat": self._leave,
            "delete-chat": self._delete_chat,
            "create-chat": self._create_chat,
            "get-account-info": lambda p: {"login": ME, "vetted_aliases": [ME],
                                           "service": "iMessage", "active": True},
            "get-nickname-info": lambda p: {"has_nickname": False,
                                            "description": "no personal nickname"},
            "should-offer-nickname-sharing": lambda p: {
                "chatGuid": self._chat_guid(p), "can_inspect_offer": True, "can_share": True,
                "should_offer": False},
            "share-nickname": lambda p: {"chatGuid": self._chat_guid(p), "requested": True,
                                         "has_personal_nickname": True},
            "check-imessage-availability": self._check_availability,
            "download-purged-attachment": lambda p: {
                "attachmentGuid": _required(p, "attachmentGuid"), "queued": True},
        }

    def _status(self, params: dict[str, Any]) -> dict[str, Any]:
        (chats,) = self.db.conn.execute("SELECT COUNT(*) FROM chat").fetchone()
        selectors = {name: name not in self.without for name in SELECTORS}
        return {
            "injected": True, "registry_available": "registry" not in self.without,
            "chat_count": chats, "typing_available": True, "read_available": True,
            "bridge_version": 2, "v2_ready": "v2" not in self.without,
            "attachment_metadata": "attachment_metadata" not in self.without,
            "helper_version": HELPER_VERSION,
            "client_message_guid": "clientMessageGuid" not in self.without,
            "selectors": selectors,
        }

    def _list_chats(self, params: dict[str, Any]) -> dict[str, Any]:
        rows = self.db.conn.execute("SELECT ROWID, guid, chat_identifier FROM chat").fetchall()
        chats = [{"guid": guid, "identifier": identifier, "participants": self._members(rowid)}
                 for rowid, guid, identifier in rows]
        return {"chats": chats, "count": len(chats)}

    # typing and read state

    def _typing_action(self, params: dict[str, Any]) -> dict[str, Any]:
        handle = _required(params, "handle")
        typing = params.get("typing", True)
        guid = self._guid_of(self._chat_for(handle))
        return self._set_typing(guid, typing is not False)

    def _set_typing(self, chat_guid: str, typing: bool) -> dict[str, Any]:
        self._typing[chat_guid] = typing
        self.event("started-typing" if typing else "stopped-typing", {"chatGuid": chat_guid})
        return {}

    def event(self, name: str, data: dict[str, Any]) -> None:
        """Append one line to the event log, rotating it at ``rotate_bytes``."""
        with contextlib.suppress(OSError):
            if self.events_path.stat().st_size >= self.rotate_bytes:
                os.replace(self.events_path, self.container / ".imsg-events.jsonl.1")
        line = json.dumps({"event": name, "data": data,
                           "ts": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
        with open(self.events_path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def _mark(self, chat_id: int, *, read: bool) -> dict[str, Any]:
        incoming = ("SELECT m.ROWID FROM message m JOIN chat_message_join j ON j.message_id ="
                    " m.ROWID WHERE j.chat_id = ? AND m.is_from_me = 0")
        if read:
            self.db.conn.execute(
                f"UPDATE message SET is_read = 1, date_read = ? WHERE ROWID IN ({incoming})"
                " AND is_read = 0", (self.db.apple_now(), chat_id))
        else:
            self.db.conn.execute(
                f"UPDATE message SET is_read = 0, date_read = 0 WHERE ROWID = (SELECT MAX(ROWID)"
                f" FROM ({incoming}))", (chat_id,))
        return {"chatGuid": self._guid_of(chat_id)}

    # sends

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        text = _required(params, "message")
        guid = params.get("clientMessageGuid")
        if guid is not None and self._rowid_or_none(str(guid)) is not None:
            raise ActionError(f"Message GUID {guid} already exists")
        rowid = self.db.send(chat, text, **self._send_columns(params, text, guid))
        return self._sent(chat, rowid)

    def _send_columns(self, params: dict[str, Any], text: str,
                      guid: Any = None) -> dict[str, Any]:
        columns: dict[str, Any] = {}
        if guid:
            columns["guid"] = str(guid)
        effect = params.get("effectId")
        if effect:
            columns["expressive_send_style_id"] = str(effect)
        subject = params.get("subject")
        if subject:
            columns["subject"] = str(subject)
        parent = params.get("selectedMessageGuid")
        if parent:
            quoted = self.db.text_of(self._rowid(str(parent)))
            part = params.get("partIndex") or 0
            columns.update(thread_originator_guid=str(parent),
                           thread_originator_part=f"{part}:0:{len(quoted)}",
                           reply_to_guid=str(parent))
        return columns

    def _sent(self, chat: int, rowid: int) -> dict[str, Any]:
        service = self.db.chat_info(chat)[0]
        return {"messageGuid": self.db.guid_of(rowid), "chatGuid": self._guid_of(chat),
                "service": service}

    def _send_rich_link(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        url = _required(params, "message")
        preview = params.get("richLinkPreview")
        title = preview.get("title", "") if isinstance(preview, dict) else ""
        rowid = self.db.url_preview(chat, url, from_me=True, title=str(title or ""))
        return self._sent(chat, rowid)

    def _send_multipart(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        parts = params.get("parts")
        if not isinstance(parts, list) or not parts:
            raise ActionError("Missing parameter: parts")
        texts = [str(p.get("text", "")) for p in parts if isinstance(p, dict)]
        joined = "".join(texts)
        runs = [(len(t.encode("utf-16-le")) // 2, {PART: i}) for i, t in enumerate(texts)]
        body = encode_attributed_string(joined, runs)
        columns = self._send_columns(params, joined)
        rowid = self.db.message(chat, joined, from_me=True, body=body, part_count=len(texts),
                                **columns)
        return {**self._sent(chat, rowid), "parts_count": len(texts)}

    def _send_attachment(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        attachment = self._attachment(_required(params, "filePath"))
        caption = params.get("message") or None
        audio = params.get("isAudioMessage") is True
        columns = self._send_columns(params, caption or "")
        if audio:
            columns["is_audio_message"] = 1
        rowid = self.db.message(chat, caption, from_me=True, attachments=[attachment], **columns)
        return self._sent(chat, rowid)

    def _send_sticker(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        path = _required(params, "filePath")
        base = self._attachment(path)
        sticker = SimAttachment(base.name, base.mime_type, base.uti, base.size, is_sticker=True)
        target = params.get("selectedMessageGuid")
        columns: dict[str, Any] = {}
        if target:
            self._rowid(str(target))
            part = params.get("targetPartIndex") or 0
            # macOS 15+ sends a sticker tapback (2007); older systems stick it on (1000)
            columns.update(associated_message_guid=f"p:{part}/{target}",
                           associated_message_type=2007 if self.db.is_tahoe else 1000)
        rowid = self.db.message(chat, None, from_me=True, attachments=[sticker], **columns)
        (transfer,) = self.db.conn.execute(
            "SELECT a.guid FROM attachment a JOIN message_attachment_join j ON"
            " j.attachment_id = a.ROWID WHERE j.message_id = ?", (rowid,)).fetchone()
        return {"transferGuid": transfer, "messageGuid": self.db.guid_of(rowid)}

    def _attachment(self, path: str) -> SimAttachment:
        file = Path(path)
        if file.is_symlink() or not file.is_file():
            raise ActionError(f"Attachment file not found: {path}")
        mime = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        return SimAttachment(file.name, mime, _uti(mime), file.stat().st_size)

    # polls

    def _send_poll(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        question = _required(params, "question")
        options = _strings(params, "options")
        creator = str(params.get("creatorHandle") or ME)
        ordered = [{"optionIdentifier": str(uuid.uuid4()).upper(), "text": text,
                    "creatorHandle": creator} for text in options]
        payload = {"question": question, "orderedPollOptions": ordered, "creatorHandle": creator}
        columns: dict[str, Any] = {"balloon_bundle_id": POLLS_BALLOON,
                                   "payload_data": _archive(payload)}
        parent = params.get("selectedMessageGuid")
        if parent:
            self._rowid(str(parent))
            columns.update(thread_originator_guid=str(parent), reply_to_guid=str(parent))
        rowid = self.db.message(chat, None, from_me=True,
                                body=encode_attributed_string("\ufffc"), **columns)
        guid = self.db.guid_of(rowid)
        return {**self._sent(chat, rowid), "pollGuid": guid, "question": question,
                "options": [{"id": o["optionIdentifier"], "text": o["text"]} for o in ordered]}

    def _vote(self, params: dict[str, Any], selected: list[str]) -> dict[str, Any]:
        chat = self._chat(params)
        poll = _required(params, "pollMessageGuid")
        self._rowid(poll)
        votes = [{"voteOptionIdentifier": option, "participantHandle": ME} for option in selected]
        rowid = self.db.message(
            chat, None, from_me=True, body=encode_attributed_string("\ufffc"),
            balloon_bundle_id=POLLS_BALLOON, associated_message_guid=poll,
            associated_message_type=4000, payload_data=_archive({"votes": votes}))
        return self._sent(chat, rowid)

    # tapbacks, edits, unsends

    def _send_reaction(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        target = self._rowid(_required(params, "selectedMessageGuid"))
        part = int(params.get("partIndex") or 0)
        emoji = params.get("emoji")
        if emoji:
            rowid = self.db.react(chat, target, "custom", from_me=True, emoji=str(emoji),
                                  remove=params.get("remove") is True, part=part)
        else:
            reaction = _required(params, "reactionType")
            remove = reaction.startswith("remove-")
            kind = _TAPBACK_NAMES.get(reaction.removeprefix("remove-"))
            if kind is None:
                raise ActionError(f"Unknown reaction type: {reaction}")
            rowid = self.db.react(chat, target, kind, from_me=True, remove=remove, part=part)
        return {"messageGuid": self.db.guid_of(rowid)}

    def _edit(self, params: dict[str, Any]) -> dict[str, Any]:
        self._chat(params)
        rowid = self._own_message(params)
        self.db.edit(rowid, _required(params, "editedMessage"))
        return {}

    def _unsend(self, params: dict[str, Any]) -> dict[str, Any]:
        self._chat(params)
        self.db.unsend(self._own_message(params))
        return {}

    def _delete_message(self, params: dict[str, Any]) -> dict[str, Any]:
        self._chat(params)
        rowid = self._rowid(_required(params, "messageGuid"))
        conn = self.db.conn
        self._deletion_tables()
        conn.execute("DELETE FROM chat_message_join WHERE message_id = ?", (rowid,))
        conn.execute("DELETE FROM message_attachment_join WHERE message_id = ?", (rowid,))
        conn.execute("DELETE FROM message WHERE ROWID = ?", (rowid,))
        return {}

    def _deletion_tables(self) -> None:
        """The tables Messages' delete triggers write to (missing from the macOS 26 capture
        the simulator builds from, present in Messages' own databases)."""
        for table, extra in (("deleted_messages", ""), ("sync_deleted_messages", ", recordID"),
                             ("sync_deleted_chats", ", recordID, timestamp"),
                             ("sync_deleted_attachments", ", recordID")):
            self.db.conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (ROWID INTEGER PRIMARY "
                                 f"KEY AUTOINCREMENT UNIQUE, guid TEXT NOT NULL{extra})")

    def _notify_anyways(self, params: dict[str, Any]) -> dict[str, Any]:
        self._chat(params)
        rowid = self._rowid(_required(params, "messageGuid"))
        self.db.conn.execute("UPDATE message SET did_notify_recipient = 1 WHERE ROWID = ?",
                             (rowid,))
        return {}

    def _own_message(self, params: dict[str, Any]) -> int:
        rowid = self._rowid(_required(params, "messageGuid"))
        (from_me,) = self.db.conn.execute(
            "SELECT is_from_me FROM message WHERE ROWID = ?", (rowid,)).fetchone()
        if not from_me:
            raise ActionError("Only your own messages can be edited or unsent")
        return rowid

    # chats and groups

    def _membership(self, params: dict[str, Any], *, add: bool) -> dict[str, Any]:
        chat = self._chat(params)
        address = _required(params, "address")
        service = self.db.chat_info(chat)[0]
        handle = self.db.handle(address, service)
        if add:
            self.db.conn.execute("INSERT OR IGNORE INTO chat_handle_join (chat_id, handle_id)"
                                 " VALUES (?, ?)", (chat, handle))
        else:
            self.db.conn.execute("DELETE FROM chat_handle_join WHERE chat_id = ? AND"
                                 " handle_id = ?", (chat, handle))
        self.db.group_event(chat, "added" if add else "removed", other=address)
        return {}

    def _rename(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        name = str(params.get("newName") or "")
        self.db.conn.execute("UPDATE chat SET display_name = ? WHERE ROWID = ?", (name, chat))
        self.db.group_event(chat, "renamed", title=name)
        return {}

    def _group_photo(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        path = params.get("filePath")
        if path:
            self._attachment(str(path))
        self.db.group_event(chat, "photo")
        return {}

    def _leave(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        self.db.group_event(chat, "left")
        return {}

    def _delete_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        conn = self.db.conn
        self._deletion_tables()
        conn.execute("DELETE FROM chat_message_join WHERE chat_id = ?", (chat,))
        conn.execute("DELETE FROM chat_handle_join WHERE chat_id = ?", (chat,))
        conn.execute("DELETE FROM chat WHERE ROWID = ?", (chat,))
        return {}

    def _create_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        addresses = _strings(params, "addresses")
        if not addresses:
            raise ActionError("Missing parameter: addresses")
        name = str(params.get("displayName") or "")
        chat = self.db.chat(addresses, name=name, group=len(addresses) > 1)
        out: dict[str, Any] = {"chatGuid": self._guid_of(chat), "service": "iMessage"}
        text = params.get("message")
        if text:
            out["messageGuid"] = self.db.guid_of(self.db.send(chat, str(text)))
        return out

    def _check_availability(self, params: dict[str, Any]) -> dict[str, Any]:
        address = _required(params, "address")
        alias = str(params.get("aliasType") or ("email" if "@" in address else "phone"))
        services = {row[0] for row in self.db.conn.execute(
            "SELECT service FROM handle WHERE id = ?", (address,))}
        status = 2 if services and "iMessage" not in services else 1
        scheme = "mailto:" if alias == "email" else "tel:"
        return {"address": address, "alias_type": alias, "destination": scheme + address,
                "id_status": status, "available": status == 1}

    # look-ups

    def _chat_guid(self, params: dict[str, Any]) -> str:
        return self._guid_of(self._chat(params))

    def _chat(self, params: dict[str, Any]) -> int:
        return self._chat_for(_required(params, "chatGuid"))

    def _chat_for(self, value: str) -> int:
        """A chat by guid, identifier, or the handle of a synthesized direct guid."""
        conn = self.db.conn
        row = conn.execute("SELECT ROWID FROM chat WHERE guid = ?", (value,)).fetchone()
        if row is None:
            identifier = value.split(";", 2)[2] if value.count(";") >= 2 else value
            row = conn.execute("SELECT ROWID FROM chat WHERE chat_identifier = ? ORDER BY"
                               " ROWID DESC", (identifier,)).fetchone()
        if row is None:
            raise ActionError(f"Chat not found: {value}")
        return int(row[0])

    def _guid_of(self, chat_id: int) -> str:
        (guid,) = self.db.conn.execute("SELECT guid FROM chat WHERE ROWID = ?",
                                       (chat_id,)).fetchone()
        return str(guid)

    def _members(self, chat_id: int) -> list[str]:
        rows = self.db.conn.execute(
            "SELECT h.id FROM chat_handle_join j JOIN handle h ON h.ROWID = j.handle_id"
            " WHERE j.chat_id = ? ORDER BY h.id", (chat_id,)).fetchall()
        return [row[0] for row in rows]

    def _rowid_or_none(self, guid: str) -> int | None:
        row = self.db.conn.execute("SELECT ROWID FROM message WHERE guid = ?",
                                   (guid,)).fetchone()
        return None if row is None else int(row[0])

    def _rowid(self, guid: str) -> int:
        rowid = self._rowid_or_none(guid)
        if rowid is None:
            raise ActionError(f"Message not found: {guid}")
        return rowid


def _required(params: dict[str, Any], key: str) -> str:
    value = params.get(key)
    if not isinstance(value, str) or not value:
        raise ActionError(f"Missing parameter: {key}")
    return value


def _strings(params: dict[str, Any], key: str) -> list[str]:
    value = params.get(key)
    if not isinstance(value, list):
        return []
    return [str(item) for item in value if isinstance(item, str) and item]


def _uti(mime: str) -> str:
    return {"image/jpeg": "public.jpeg", "image/png": "public.png", "image/gif":
            "com.compuserve.gif", "audio/x-caf": "com.apple.coreaudio-format"}.get(mime,
                                                                                    "public.data")


def _archive(payload: dict[str, Any]) -> bytes:
    """A Polls balloon payload: a keyed archive whose URL carries the JSON, base64-encoded."""
    encoded = base64.b64encode(json.dumps(payload).encode()).decode()
    archive = {"$version": 100000, "$archiver": "NSKeyedArchiver",
               "$top": {"root": plistlib.UID(1)},
               "$objects": ["$null", {"URL": f"data:application/json;base64,{encoded}"}]}
    return plistlib.dumps(archive, fmt=plistlib.FMT_BINARY)


def _dead_pid() -> int:
    """A PID that no longer runs (a child that already exited and was reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def run(db_path: str, container: Path, *, interval_s: float = INTERVAL_S,
        failure: Failure | None = None, without: frozenset[str] = frozenset(),
        timing: bool = False) -> None:
    """Serve until SIGINT/SIGTERM (the ``imsg sim bridge`` command)."""
    import signal

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    helper = SimHelper(db_path, container, interval_s=interval_s, failure=failure,
                       without=without, timing=timing)
    helper.serve(stop)


def placeholder_dylib(container: Path) -> Path:
    """A stand-in file named like the helper dylib, for ``IMSG_BRIDGE_DYLIB`` (``imsg status``
    and ``imsg launch`` look for one; the simulated helper needs no real one)."""
    path = container / "imsg-bridge-helper.dylib"
    if not path.exists():
        path.write_text("simulated imsg bridge helper (not a dylib)\n")
    return path
