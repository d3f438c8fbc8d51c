"""The RPC methods the IMCore bridge enables, as plain functions ``(Context, Params) -> result``
over the context's bridge client (``ctx.bridge.client()``, never launching Messages).

Common rules (the Swift tool's):

- **Chat**: ``chat_guid`` is used verbatim; ``chat_id`` needs the database (-32002) and uses
  the chat's guid; ``chat_identifier`` becomes a stored chat's guid when the database knows it,
  else it is passed raw.
- **Message target** (tapback, ``message.*``): one of ``message_id``/``messageId``/
  ``message_guid``/``messageGuid``/``message``, a GUID; ``p:N/GUID`` selects part N.
- **No ready lock**: mutations fail ``not_started`` (-32603 "Delivery failed before dispatch",
  retry-safe); the read methods (``handles.check``, ``contacts.shouldShareContact``) -32003.
- **Results**: ``{"ok": true}`` plus ``guid``/``message_id`` (the same value) and
  ``chat_guid`` when the helper returned ``messageGuid``/``chatGuid``.
- Parameters are checked (``InvalidParams``, -32602) before any file is staged or any request
  is published. Every other failure is the client's (``imsg.bridge.client``).

``send_via_bridge`` is the bridge half of RPC ``send`` (§4.2's route table); ``send_tracked``
the bridge-only ``send.tracked``. ``bridge_events_subscribe`` returns a ``BridgeEventsSpec``
the session streams from (``imsg.rpc.subscriptions``).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from imsg.bridge import polls, vocab
from imsg.bridge.client import BridgeClient
from imsg.bridge.events import EventsReadFailed, EventsUnavailable, EventTail, open_tail
from imsg.bridge.files import stage, stage_voice
from imsg.bridge.observe import observe_sent
from imsg.bridge.probe import HelperStatus
from imsg.chatdb.models import Message
from imsg.chatdb.reader import ChatDB, ChatRef
from imsg.errors import (
    BridgeEventsUnavailable,
    BridgeNotReady,
    BridgeUnavailable,
    ChatNotFound,
    DatabaseError,
    ImsgError,
    InvalidInput,
    SendError,
)
from imsg.rpc import protocol
from imsg.rpc.context import Context
from imsg.rpc.errors import InvalidParams, RpcError
from imsg.rpc.lane import BlocksLane
from imsg.rpc.params import ChatSelector, Params, chat_selector
from imsg.rpc.subscriptions import Item, StreamSpec

log = logging.getLogger("imsg.rpc")

MAX_PARTS = 20
CAPTION_VERIFY_S = 2.0
DEFAULT_EVENTS_BUFFER = 256
MAX_EVENTS_BUFFER = 4096


# --- shared helpers ---------------------------------------------------------------------------

def _client(ctx: Context) -> BridgeClient:
    return ctx.bridge.client()


def _db(ctx: Context) -> ChatDB:
    return ctx.db.get()


def resolve_chat_guid(ctx: Context, selector: ChatSelector) -> str:
    """The chat GUID the selector names (module docstring)."""
    if selector.kind == "chat_guid":
        return str(selector.value)
    if selector.kind == "chat_id":
        return _db(ctx).chat_ref(int(selector.value)).guid
    identifier = str(selector.value)
    try:
        db = _db(ctx)
        return db.chat_ref(db.chat_id_by(identifier=identifier)).guid or identifier
    except (ChatNotFound, DatabaseError):
        return identifier


def _chat(ctx: Context, p: Params) -> str:
    selector = chat_selector(p)
    assert selector is not None
    return resolve_chat_guid(ctx, selector)


def _imessage_chat(ctx: Context, p: Params, refusal: str) -> ChatRef:
    """The stored chat the selector names, which must be an iMessage chat (``refusal``:
    the InvalidParams text otherwise); ChatNotFound when there is none."""
    selector = chat_selector(p)
    assert selector is not None
    ref = _db(ctx).chat_ref(_chat_id(ctx, selector))
    if ref.service.lower() != "imessage":
        raise InvalidParams(refusal)
    return ref


def _chat_id(ctx: Context, selector: ChatSelector) -> int:
    """The chat's ROWID (needs the database); ChatNotFound otherwise."""
    db = _db(ctx)
    if selector.kind == "chat_id":
        return int(selector.value)
    if selector.kind == "chat_guid":
        return db.chat_id_by(guid=str(selector.value))
    return db.chat_id_by(identifier=str(selector.value))


def _target(p: Params) -> tuple[str, int]:
    """``(GUID, part)`` of the message target, the part from ``p:N/`` or ``part_index``."""
    raw = p.string("message_id")
    if raw is None or not raw.strip():
        raise InvalidParams("message_id or message_guid is required")
    guid, embedded = vocab.message_target(raw)
    part = p.integer("part_index", minimum=0) if p.has("part_index") else None
    if embedded is not None and part is not None and embedded != part:
        raise InvalidParams(f"part_index {part} does not match the part in the message target "
                            f"(p:{embedded}/…)")
    return guid, part if part is not None else (embedded or 0)


def reply_guid(p: Params) -> str | None:
    value = p.string("reply_to")
    return value.strip() if value and value.strip() else None


def formatting_ranges(p: Params, name: str = "text_formatting") -> list[dict[str, Any]] | None:
    ranges = p.objects(name)
    if not p.has(name):
        return None
    try:
        return vocab.text_formatting(ranges, name)
    except InvalidInput as exc:
        raise InvalidParams(exc.message) from None


def _result(data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"ok": True}
    guid = data.get("messageGuid")
    if isinstance(guid, str) and guid:
        out.update(guid=guid, message_id=guid)
    chat = data.get("chatGuid")
    if isinstance(chat, str) and chat:
        out["chat_guid"] = chat
    out.update(extra)
    return out


def _helper(ctx: Context) -> HelperStatus | None:
    return ctx.bridge.helper()


def _needs(ctx: Context, action: str, check: str, missing: str) -> None:
    """Refuse ``action`` before dispatch (``not_started``) when the helper does not report
    ``check`` (a selector, or ``attachment_metadata``/``client_message_guid``)."""
    helper = _helper(ctx)
    if helper is None:
        return  # no answering helper: the call itself reports that
    have = {"attachment_metadata": helper.attachment_metadata,
            "client_message_guid": helper.client_message_guid}.get(check)
    if have is None:
        have = helper.selector(check)
    if not have:
        raise SendError(missing, disposition="not_started", transport=_client(ctx).transport,
                        operation=action)


def _observed(ctx: Context, chat_id: int, baseline: int, data: dict[str, Any], action: str,
              *, attachment: bool, transport: str) -> Message:
    guid = data.get("messageGuid") if isinstance(data.get("messageGuid"), str) else None
    message = observe_sent(_db(ctx), baseline, chat_id, guid, attachment=attachment)
    if message is None:
        from imsg.errors import SendNotConfirmed

        raise SendNotConfirmed(
            f"The bridge accepted {action} but no matching outgoing row appeared in chat "
            f"{chat_id}; it may still be delivered. Check before sending again.",
            transport=transport, operation=action)
    return message


# --- send and send.tracked ---------------------------------------------------------------------

REPLY_NEEDS_BRIDGE = ("reply_to requires bridge transport; AppleScript fallback cannot send "
                      "threaded replies")
NEEDS_CHAT = "bridge transport requires an existing chat target"
_GUID_PREFIXES = ("iMessage;-;", "any;-;", "SMS;-;", "iMessage;+;", "any;+;", "SMS;+;")
_tracked: set[str] = set()
_tracked_lock = threading.Lock()


@dataclass(frozen=True)
class Outgoing:
    """What RPC ``send``/``send.tracked`` validated: where and what to send."""

    to: str | None
    chat: ChatSelector | None
    text: str
    file: str
    service: str
    region: str
    reply_to: str | None
    formatting: list[dict[str, Any]] | None
    allow_sms_fallback: bool


def send_via_bridge(ctx: Context, out: Outgoing, transport: str) -> dict[str, Any] | None:
    """The bridge half of RPC ``send``: its result when the bridge sent it, None when the
    AppleScript path must (route table in the reference §4.2/§6.11):

    - ``applescript``: never the bridge (a ``reply_to`` is refused);
    - no chat GUID known (no chat target, no stored direct chat): ``bridge`` is refused
      (``bridge transport requires an existing chat target``), so is a ``reply_to``; ``auto``
      uses AppleScript;
    - ``auto`` without the ready lock: AppleScript (a ``reply_to`` is refused);
    - otherwise the bridge; a failure is raised when ``transport`` is ``bridge`` or there is a
      ``reply_to``; with ``auto`` only a ``not_started`` failure falls back to AppleScript
      (timeouts, claimed or vanished requests and malformed answers never do).
    """
    if transport == "applescript":
        if out.reply_to:
            raise InvalidParams(REPLY_NEEDS_BRIDGE)
        return None
    guid = bridge_chat_guid(ctx, out)
    if guid is None:
        if transport == "bridge":
            raise InvalidParams(NEEDS_CHAT)
        if out.reply_to:
            raise InvalidParams(REPLY_NEEDS_BRIDGE)
        return None
    try:
        client: BridgeClient | None = _client(ctx)
    except BridgeUnavailable:
        client = None
    if transport == "auto" and (client is None or not client.ready()):
        if out.reply_to:
            raise InvalidParams(REPLY_NEEDS_BRIDGE)
        return None
    if client is None:
        raise BridgeNotReady("send-attachment" if out.file else "send-message")
    try:
        data = _bridge_send(ctx, client, guid, out)
    except SendError as err:
        if transport == "bridge" or out.reply_to or not err.retry_safe:
            raise
        log.warning("bridge send not started (%s); sending through AppleScript", err.message)
        return None
    return _bridge_result(data, guid)


def _bridge_send(ctx: Context, client: BridgeClient, guid: str, out: Outgoing,
                 client_guid: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"chatGuid": guid}
    if out.reply_to:
        params["selectedMessageGuid"] = out.reply_to
    if out.formatting is not None:
        params["textFormatting"] = out.formatting
    if not out.file:
        if client_guid:
            params["clientMessageGuid"] = client_guid
        return client.call("send-message", {**params, "message": out.text})
    _needs(ctx, "send-attachment", "sendAttachment",
           "The running bridge does not report attachment sending (sendAttachment).")
    if out.text or out.reply_to:
        _needs(ctx, "send-attachment", "attachment_metadata",
               "The running bridge cannot send captions or replies with attachments "
               "(attachment_metadata); relaunch Messages with a current helper.")
    staged = stage(out.file, "send-attachment", client.transport)
    params.update(filePath=str(staged), isAudioMessage=False)
    if out.text:
        params["message"] = out.text
    return client.call("send-attachment", params)


def _bridge_result(data: dict[str, Any], guid: str, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"ok": True, "transport": "bridge", **extra}
    message = data.get("messageGuid")
    if isinstance(message, str) and message:
        result.update(guid=message, message_id=message)
    chat = data.get("chatGuid")
    result["chat_guid"] = chat if isinstance(chat, str) and chat else guid
    service = data.get("service")
    if isinstance(service, str) and service:
        result["service"] = service
    return result


def bridge_chat_guid(ctx: Context, out: Outgoing) -> str | None:
    """The chat GUID a bridge send goes to: the chat target's, or the stored direct chat of
    ``to`` on a compatible service; None when there is none (or the database cannot say)."""
    if out.chat is not None:
        if out.chat.kind != "chat_identifier":
            return resolve_chat_guid(ctx, out.chat)
        return _identifier_guid(ctx, str(out.chat.value))
    from imsg.send.service import choose_service
    from imsg.send.targets import target_from_fields

    target = target_from_fields(to=out.to, region=out.region, service=out.service)
    if target.kind == "chat_identifier":
        return _identifier_guid(ctx, target.value)
    if target.kind in ("chat_id", "chat_guid"):
        kind: Literal["chat_id", "chat_guid"] = (
            "chat_id" if target.kind == "chat_id" else "chat_guid")
        value: int | str = int(target.value) if kind == "chat_id" else target.value
        return resolve_chat_guid(ctx, ChatSelector(kind, value))
    service: str = target.service
    if service == "auto":
        try:
            chosen = choose_service(_db(ctx), target.value, "auto", text_only=not out.file,
                                    allow_sms_fallback=out.allow_sms_fallback).service
        except DatabaseError:
            return None
        service = "auto-sms" if chosen == "sms" else chosen
    return existing_direct_guid(ctx, target.value, service)


def _identifier_guid(ctx: Context, identifier: str) -> str | None:
    """A stored chat by exact identifier, else by a known GUID prefix (``any;+;`` groups
    too); None when the database has none or cannot be read."""
    try:
        db = _db(ctx)
        try:
            return db.chat_ref(db.chat_id_by(identifier=identifier)).guid or None
        except ChatNotFound:
            pass
        for prefix in _GUID_PREFIXES:
            try:
                return db.chat_ref(db.chat_id_by(guid=prefix + identifier)).guid or None
            except ChatNotFound:
                continue
    except DatabaseError:
        return None
    return None


def send_tracked(ctx: Context, p: Params) -> dict[str, Any]:
    """Exactly one text through the running bridge, under the caller's ``attempt_id`` (a
    UUID) as the message GUID: never AppleScript, never retried. If the answer is lost,
    ``message.send_status {guid: attempt_id}`` tells whether it went out."""
    from imsg.rpc.params import target_or_chat

    raw = p.string("attempt_id")
    if raw is None or not raw.strip():
        raise InvalidParams("attempt_id is required")
    try:
        attempt = str(uuid.UUID(raw.strip().lower()))
    except ValueError:
        raise InvalidParams("attempt_id must be a UUID") from None
    to, chat = target_or_chat(p)
    if p.string("file"):
        raise InvalidParams("send.tracked supports exactly one text message")
    text = p.string("text", "")
    if not text:
        raise InvalidParams("text is required")
    service = p.string("service", "auto")
    if service not in ("auto", "imessage", "sms"):
        raise InvalidParams(f"invalid service {service!r}: use auto, imessage or sms")
    transport = p.string("transport", "auto").lower()
    if transport not in ("auto", "bridge", "applescript"):
        raise InvalidParams(f"invalid transport {transport!r}: use auto, bridge or applescript")
    if transport == "applescript":
        raise InvalidParams("send.tracked requires bridge transport")
    out = Outgoing(to, chat, text, "", service, p.string("region", "US"), reply_guid(p),
                   formatting_ranges(p), p.boolean("allow_sms_fallback", True))
    db = _db(ctx)
    guid = bridge_chat_guid(ctx, out)
    if guid is None:
        raise InvalidParams(NEEDS_CHAT)
    client = _client(ctx)
    wanted = attempt.upper()
    with _tracked_lock:
        taken = wanted in _tracked or db.send_status_row(wanted) is not None
        if not taken:
            _tracked.add(wanted)
    if taken:
        raise SendError("attempt_id already identifies a message; choose a new UUID",
                        disposition="not_started", transport=client.transport,
                        operation="send-message")
    if client.ready():
        _needs(ctx, "send-message", "client_message_guid",
               "The running bridge does not support caller-chosen message GUIDs "
               "(client_message_guid).")
    data = _bridge_send(ctx, client, guid, out, client_guid=wanted)
    echoed = data.get("messageGuid")
    if not isinstance(echoed, str) or echoed.upper() != wanted:
        raise SendError(f"The bridge sent the message under another GUID ({echoed!r}) than "
                        f"attempt_id {raw.strip()}; do not retry: check message.send_status.",
                        transport=client.transport, operation="send-message")
    result = _bridge_result(data, guid, attempt_id=raw.strip())
    result.update(guid=echoed, message_id=echoed)
    return result


# --- typing and read --------------------------------------------------------------------------

def _handle_identifier(ctx: Context, p: Params, service: str = "imessage") -> str:
    """The chat GUID for typing/read: the chat's, the existing direct chat's, or a
    synthesized ``iMessage;-;<to>`` / ``SMS;-;<to>``."""
    from imsg.send.targets import normalize_handle

    to = p.string("to")
    chat = chat_selector(p, required=False)
    if to is not None and chat is not None:
        raise InvalidParams("use to or exactly one chat selector; not both")
    if chat is not None:
        return resolve_chat_guid(ctx, chat)
    if to is None:
        raise InvalidParams("to is required, or exactly one of chat_id, chat_identifier, or "
                            "chat_guid is required")
    if not to.strip():
        raise InvalidParams("to must be a non-empty string")
    try:
        handle = normalize_handle(to, "US")
    except InvalidInput as exc:
        raise InvalidParams(exc.message) from None
    existing = existing_direct_guid(ctx, handle, service)
    return existing or vocab.direct_guid(handle, service)


def existing_direct_guid(ctx: Context, handle: str, service: str) -> str | None:
    """The GUID of a stored direct chat with ``handle`` whose service is compatible (explicit
    ``imessage``/``sms`` never reuse the other's chat; ``auto`` SMS also takes ``any;-;``);
    None when there is none or the database cannot say."""
    try:
        db = _db(ctx)
        ref = db.chat_ref(db.chat_id_by(identifier=handle))
    except (ChatNotFound, DatabaseError):
        return None
    if ref.is_group or not ref.guid:
        return None
    stored = ref.service.lower()
    if service == "imessage" and stored not in ("imessage", "imessagelite"):
        return None
    if service == "sms" and stored not in ("sms", "rcs"):
        return None
    if service == "auto-sms" and stored not in ("sms", "rcs") and not ref.guid.startswith("any;"):
        return None
    return ref.guid


def typing(ctx: Context, p: Params) -> dict[str, Any]:
    """Show (``typing``: true, the default) or stop the typing indicator."""
    service = p.string("service", "imessage").lower()
    if service not in ("imessage", "sms"):
        raise InvalidParams("service must be imessage or sms")
    on = p.boolean("typing", True)
    handle = _handle_identifier(ctx, p, service)
    _client(ctx).call("typing", {"handle": handle, "typing": on})
    return {"ok": True}


def read(ctx: Context, p: Params) -> dict[str, Any]:
    """Mark the chat read (sends read receipts where they are on)."""
    handle = _handle_identifier(ctx, p)
    _client(ctx).call("read", {"handle": handle})
    return {"ok": True}


# --- sending ----------------------------------------------------------------------------------

def send_rich(ctx: Context, p: Params) -> dict[str, Any]:
    """Text with effect, subject, reply, part and formatting; or a file (caption and reply
    need ``attachment_metadata``; verified in chat.db); or a link card (``url`` alone)."""
    if p.has("url"):
        return _send_rich_link(ctx, p)
    selector = chat_selector(p)
    assert selector is not None
    text = p.string("text", "")
    file = p.string("file", "")
    if not text and not file:
        raise InvalidParams("text, file, or url is required")
    params = _effect_and_subject(p)
    reply = reply_guid(p)
    if reply:
        params["selectedMessageGuid"] = reply
    params["partIndex"] = p.integer("part_index", 0, minimum=0)
    dd_scan = p.boolean("dd_scan", True)
    formatting = formatting_ranges(p)
    if formatting is not None:
        params["textFormatting"] = formatting
    client = _client(ctx)
    if not file:
        chat = resolve_chat_guid(ctx, selector)
        data = client.call("send-message", {"chatGuid": chat, "message": text, **params,
                                            "ddScan": dd_scan})
        return _result(data)
    chat_id = _chat_id(ctx, selector)
    chat = _db(ctx).chat_ref(chat_id).guid
    _needs(ctx, "send-attachment", "sendAttachment",
           "The running bridge does not report attachment sending (sendAttachment).")
    if text or reply:
        _needs(ctx, "send-attachment", "attachment_metadata",
               "The running bridge cannot send captions or replies with attachments "
               "(attachment_metadata); relaunch Messages with a current helper.")
    staged = stage(file, "send-attachment", client.transport)
    baseline = _db(ctx).max_rowid()
    attachment: dict[str, Any] = {"chatGuid": chat, "filePath": str(staged),
                                  "isAudioMessage": False, **params}
    if text:
        attachment["message"] = text
    data = client.call("send-attachment", attachment)
    row = _observed(ctx, chat_id, baseline, data, "send-attachment", attachment=True,
                    transport=client.transport)
    return {"ok": True, "id": row.id, "guid": row.guid, "message_id": row.guid,
            "chat_guid": row.chat_guid or chat}


def _effect_and_subject(p: Params) -> dict[str, Any]:
    """The bridge fields for ``effect_id`` (a name or an expressive-send identifier) and
    ``subject``, shared by rich and multipart sends."""
    fields: dict[str, Any] = {}
    effect = p.string("effect_id")
    if effect and effect.strip():
        fields["effectId"] = vocab.effect_id(effect)
    subject = p.string("subject")
    if subject:
        fields["subject"] = subject
    return fields


def _send_rich_link(ctx: Context, p: Params) -> dict[str, Any]:
    for name in ("text", "file", "effect_id", "subject", "reply_to", "part_index", "dd_scan",
                 "text_formatting"):
        if p.has(name):
            raise InvalidParams(f"{name} is not supported with url")
    url = (p.string("url") or "").strip()
    if not url.lower().startswith(("http://", "https://")):
        raise InvalidParams("url must be an http or https URL")
    ref = _imessage_chat(ctx, p, "rich links need an existing iMessage chat")
    helper = _helper(ctx)
    if helper is not None and not (helper.selector("sendRichLinkAction")
                                   or helper.selector("urlPreviewMessage")):
        raise SendError("The running bridge does not report rich-link support.",
                        disposition="not_started", transport=_client(ctx).transport,
                        operation="send-rich-link")
    preview = {"url": url, "originalURL": url}  # a metadata-only card: nothing is fetched
    data = _client(ctx).call("send-rich-link", {"chatGuid": ref.guid, "message": url,
                                                "partIndex": 0, "ddScan": True,
                                                "richLinkPreview": preview})
    return _result(data)


def send_attachment(ctx: Context, p: Params) -> dict[str, Any]:
    """One file (``audio``: as a voice message, converted to CAF/Opus first), optionally as
    a reply (``part_index`` needs ``reply_to``)."""
    file = p.string("file")
    if file is None or not file.strip():
        raise InvalidParams("file is required")
    audio = p.boolean("audio")
    reply = reply_guid(p)
    part = p.integer("part_index", minimum=0)
    if part is not None and reply is None:
        raise InvalidParams("part_index requires reply_to")
    chat = _chat(ctx, p)
    client = _client(ctx)
    if reply:
        _needs(ctx, "send-attachment", "attachment_metadata",
               "The running bridge cannot send replies with attachments "
               "(attachment_metadata); relaunch Messages with a current helper.")
    staged = (stage_voice if audio else stage)(file, "send-attachment", client.transport)
    params: dict[str, Any] = {"chatGuid": chat, "filePath": str(staged),
                              "isAudioMessage": audio}
    if reply:
        params["selectedMessageGuid"] = reply
        params["partIndex"] = part or 0
    return _result(client.call("send-attachment", params))


def send_multipart(ctx: Context, p: Params) -> dict[str, Any]:
    """1–20 text parts in one message; verified in chat.db."""
    raw = p.objects("parts")
    if not 1 <= len(raw) <= MAX_PARTS:
        raise InvalidParams(f"parts must contain between 1 and {MAX_PARTS} text parts")
    parts = [_part(item) for item in raw]
    selector = chat_selector(p)
    assert selector is not None
    params: dict[str, Any] = {"parts": parts, **_effect_and_subject(p)}
    chat_id = _chat_id(ctx, selector)
    chat = _db(ctx).chat_ref(chat_id).guid
    client = _client(ctx)
    baseline = _db(ctx).max_rowid()
    data = client.call("send-multipart", {"chatGuid": chat, **params})
    row = _observed(ctx, chat_id, baseline, data, "send-multipart", attachment=False,
                    transport=client.transport)
    count = data.get("parts_count")
    return {"ok": True, "id": row.id, "guid": row.guid, "message_id": row.guid,
            "chat_guid": row.chat_guid or chat,
            "parts_count": count if isinstance(count, int) else len(parts)}


def _part(item: dict[str, Any]) -> dict[str, Any]:
    for key in ("file", "attachment", "mention", "mentions"):
        if key in item:
            raise InvalidParams(f"{key} parts are not supported")
    unknown = sorted(set(item) - {"text", "text_formatting", "textFormatting"})
    if unknown:
        raise InvalidParams(f"unknown send.multipart part param: {unknown[0]}")
    if "text_formatting" in item and "textFormatting" in item:
        raise InvalidParams("use only one of text_formatting, textFormatting")
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidParams("each part needs a non-empty text")
    part: dict[str, Any] = {"text": text}
    ranges = item.get("text_formatting", item.get("textFormatting"))
    if ranges is not None:
        if not isinstance(ranges, list):
            raise InvalidParams("text_formatting must be an array of objects")
        try:
            part["textFormatting"] = vocab.text_formatting(ranges)
        except InvalidInput as exc:
            raise InvalidParams(exc.message) from None
    return part


def send_sticker(ctx: Context, p: Params) -> dict[str, Any]:
    """A sticker image (checked: PNG/GIF/JPEG, ≤ 500 KiB, ≤ 618×618, ≤ 100 frames), on its
    own or stuck onto ``attach_to`` (a GUID or ``p:N/GUID``) in an iMessage chat."""
    from imsg.bridge.stickers import inspect

    file = p.string("file")
    if file is None or not file.strip():
        raise InvalidParams("file is required")
    attach = p.string("attach_to")
    part = p.integer("part_index", minimum=0)
    target: str | None = None
    if attach and attach.strip():
        target, embedded = vocab.message_target(attach)
        if embedded is not None and part is not None and part != embedded:
            raise InvalidParams(f"part_index {part} does not match the part in attach_to")
        part = part if part is not None else (embedded or 0)
    elif part is not None:
        raise InvalidParams("part_index requires attach_to")
    ref = _imessage_chat(ctx, p, "stickers need an iMessage chat")
    client = _client(ctx)
    staged = stage(file, "send-sticker", client.transport)
    try:
        image = inspect(staged.read_bytes(), staged.name)
    except InvalidInput as exc:
        raise InvalidParams(exc.message) from None
    params: dict[str, Any] = {
        "chatGuid": ref.guid, "filePath": str(staged), "contentHash": image.sha256,
        "pixelWidth": image.width, "pixelHeight": image.height,
        "accessibilityLabel": Path(file).stem, "targetPartIndex": part or 0,
    }
    if target:
        params["selectedMessageGuid"] = target
    data = client.call("send-sticker", params)
    out: dict[str, Any] = {"ok": True}
    if isinstance(data.get("transferGuid"), str):
        out["transfer_guid"] = data["transferGuid"]
    guid = data.get("messageGuid")
    if isinstance(guid, str) and guid:
        out.update(guid=guid, message_id=guid)
    return out


# --- tapbacks and message changes -------------------------------------------------------------

def tapback(ctx: Context, p: Params) -> dict[str, Any]:
    """A standard tapback (``reaction``/``kind``, ``remove``), or a custom ``emoji`` when the
    helper reports ``emojiTapbackSend`` (refused otherwise, never folded onto a kind). Answers
    ``{ok, reaction}`` with the type sent (``remove-like`` for a removal) or ``{ok, emoji}``."""
    guid, part = _target(p)
    reaction = p.string("reaction")
    emoji = p.string("emoji")
    remove = p.boolean("remove")
    if reaction is not None and emoji is not None:
        raise InvalidParams("use reaction or emoji, not both")
    if not (reaction and reaction.strip()) and not (emoji and emoji.strip()):
        raise InvalidParams("reaction, kind, or emoji is required")
    chat = _chat(ctx, p)
    client = _client(ctx)
    if emoji and emoji.strip():
        helper = _helper(ctx)
        if helper is None or not helper.selector("emojiTapbackSend"):
            raise InvalidParams("emoji tapbacks need a bridge helper that reports "
                                "emojiTapbackSend; use love, like, dislike, laugh, "
                                "emphasize, or question")
        client.call("send-reaction", {"chatGuid": chat, "selectedMessageGuid": guid,
                                      "emoji": emoji.strip(), "remove": remove,
                                      "partIndex": part})
        return {"ok": True, "emoji": emoji.strip()}
    try:
        kind, prefixed = vocab.tapback_kind(reaction or "")
    except InvalidInput as exc:
        raise InvalidParams(exc.message) from None
    reaction_type = f"remove-{kind}" if prefixed or remove else kind
    client.call("send-reaction", {"chatGuid": chat, "selectedMessageGuid": guid,
                                  "reactionType": reaction_type, "partIndex": part})
    return {"ok": True, "reaction": reaction_type}


def message_edit(ctx: Context, p: Params) -> dict[str, Any]:
    guid, part = _target(p)
    text = p.string("text")
    if text is None or not text.strip():
        raise InvalidParams("text is required")
    compat = p.string("backwards_compatibility_message") or text
    _client(ctx).call("edit-message", {"chatGuid": _chat(ctx, p), "messageGuid": guid,
                                       "editedMessage": text,
                                       "backwardsCompatibilityMessage": compat,
                                       "partIndex": part})
    return {"ok": True}


def message_unsend(ctx: Context, p: Params) -> dict[str, Any]:
    guid, part = _target(p)
    _client(ctx).call("unsend-message", {"chatGuid": _chat(ctx, p), "messageGuid": guid,
                                         "partIndex": part})
    return {"ok": True}


def message_delete(ctx: Context, p: Params) -> dict[str, Any]:
    guid, _ = _target(p)
    _client(ctx).call("delete-message", {"chatGuid": _chat(ctx, p), "messageGuid": guid})
    return {"ok": True}


def message_notify_anyways(ctx: Context, p: Params) -> dict[str, Any]:
    guid, _ = _target(p)
    _client(ctx).call("notify-anyways", {"chatGuid": _chat(ctx, p), "messageGuid": guid})
    return {"ok": True}


# --- chats and groups -------------------------------------------------------------------------

def chats_create(ctx: Context, p: Params) -> dict[str, Any]:
    """A new chat with ``addresses`` (every one must be reachable over iMessage, or nothing
    is created), optionally named and with a first message."""
    addresses = p.strings("addresses")
    if not addresses:
        raise InvalidParams("addresses is required")
    service = p.string("service", "iMessage")
    if service.strip().lower() != "imessage":
        raise InvalidParams("service must be iMessage")
    params: dict[str, Any] = {"addresses": addresses, "service": "iMessage"}
    name = p.string("name")
    if name:
        params["displayName"] = name
    text = p.string("text")
    if text:
        params["message"] = text
    data = _client(ctx).call("create-chat", params)
    out: dict[str, Any] = {"ok": True}
    for key, source in (("chat_guid", "chatGuid"), ("message_guid", "messageGuid"),
                        ("service", "service")):
        if isinstance(data.get(source), str) and data[source]:
            out[key] = data[source]
    return out


def _chat_action(action: str, **fields: str) -> Any:
    def handler(ctx: Context, p: Params) -> dict[str, Any]:
        params: dict[str, Any] = {"chatGuid": _chat(ctx, p)}
        for param, key in fields.items():
            value = p.string(param)
            if value is None or not value.strip():
                raise InvalidParams(f"{param} is required")
            params[key] = value.strip()
        _client(ctx).call(action, params)
        return {"ok": True}

    handler.__name__ = action.replace("-", "_")
    handler.__doc__ = f"The helper's ``{action}`` on the chat."
    return handler


chats_delete = _chat_action("delete-chat")
chats_mark_unread = _chat_action("mark-chat-unread")
group_rename = _chat_action("set-display-name", name="newName")
group_add_participant = _chat_action("add-participant", address="address")
group_remove_participant = _chat_action("remove-participant", address="address")
group_leave = _chat_action("leave-chat")


def group_set_icon(ctx: Context, p: Params) -> dict[str, Any]:
    """Set the group photo from ``file`` (staged securely first), or clear it."""
    chat = _chat(ctx, p)
    file = p.string("file")
    client = _client(ctx)
    params: dict[str, Any] = {"chatGuid": chat}
    if file and file.strip():
        params["filePath"] = str(stage(file, "update-group-photo", client.transport))
    client.call("update-group-photo", params)
    return {"ok": True}


def contacts_should_share(ctx: Context, p: Params) -> dict[str, Any]:
    data = _client(ctx).call("should-offer-nickname-sharing", {"chatGuid": _chat(ctx, p)})
    should = data.get("should_offer")
    return {"ok": True, "can_inspect_offer": data.get("can_inspect_offer") is True,
            "can_share": data.get("can_share") is True,
            "should_offer": should if isinstance(should, bool) else None}


def contacts_share_card(ctx: Context, p: Params) -> dict[str, Any]:
    data = _client(ctx).call("share-nickname", {"chatGuid": _chat(ctx, p)})
    return {"ok": True, "requested": True,
            "has_personal_nickname": data.get("has_personal_nickname") is True}


def handles_check(ctx: Context, p: Params) -> dict[str, Any]:
    """Whether ``address`` is reachable over iMessage (IDS), through the running helper."""
    address = p.string("address")
    if address is None or not address.strip():
        raise InvalidParams("address is required")
    address = address.strip()
    alias = p.string("alias_type") or ("email" if "@" in address else "phone")
    if alias not in ("phone", "email"):
        raise InvalidParams("alias_type must be phone or email")
    service = p.string("service", "iMessage")
    if service.lower() != "imessage":
        raise InvalidParams("handles.check only supports service iMessage")
    try:
        client = _client(ctx)
        ready = client.ready()
    except BridgeUnavailable:
        ready = False
    if not ready:
        raise ImsgError("handles.check requires bridge transport (Messages.app must be "
                        "injected)")
    data = client.call("check-imessage-availability", {"address": address, "aliasType": alias})
    out: dict[str, Any] = {"ok": True, "address": address, "alias_type": alias}
    for key in ("destination", "id_status", "available"):
        if key in data:
            out[key] = data[key]
    out["service"] = "iMessage"
    return out


# --- polls ------------------------------------------------------------------------------------

def poll_send(ctx: Context, p: Params) -> dict[str, Any] | BlocksLane:
    """A native poll, then (unless ``suppress_comment``) a caption: ``comment`` or the
    question, checked in chat.db for up to 2 s. The caption's failure never fails the poll;
    a caption still in flight blocks the mutation lane after this answer."""
    question = p.string("question")
    if question is None or not question.strip():
        raise InvalidParams("question is required")
    options = p.strings("options")
    if len(options) < 2:
        raise InvalidParams("options must contain at least 2 non-empty choices")
    comment = p.string("comment")
    suppress = p.boolean("suppress_comment")
    if comment is not None and suppress:
        raise InvalidParams("comment cannot be combined with suppress_comment: true")
    params: dict[str, Any] = {"chatGuid": _chat(ctx, p), "question": question.strip(),
                              "options": options}
    creator = p.string("creator_handle")
    if creator:
        params["creatorHandle"] = creator
    reply = reply_guid(p)
    if reply:
        params["selectedMessageGuid"] = reply
    client = _client(ctx)
    data = client.call("send-poll", params)
    out = _result(data, event="imessage.poll.created")
    out.pop("chat_guid", None)
    if suppress:
        out["comment"] = {"requested": False, "sent": None}
        return out
    caption, blocking = _caption(ctx, params["chatGuid"], comment or question.strip())
    out["comment"] = caption
    return BlocksLane(out, blocking) if blocking is not None else out


def _caption(ctx: Context, chat: str, text: str) -> tuple[dict[str, Any], SendError | None]:
    client = _client(ctx)
    report: dict[str, Any] = {"requested": True}
    baseline, chat_id = _caption_scope(ctx, chat)
    try:
        data = client.call("send-message", {"chatGuid": chat, "message": text})
    except SendError as err:
        report.update(sent=False if err.retry_safe else None, error=err.message,
                      disposition=err.disposition, retry_safe=err.retry_safe)
        return report, err if err.disposition == "still_in_flight" else None
    guid = data.get("messageGuid") if isinstance(data.get("messageGuid"), str) else None
    report["sent"] = True
    if guid:
        report["message_guid"] = guid
    if chat_id is not None and baseline is not None:
        try:
            seen = observe_sent(_db(ctx), baseline, chat_id, guid, timeout_s=CAPTION_VERIFY_S)
        except ImsgError:
            seen = None
        report["verified"] = seen is not None
    return report, None


def _caption_scope(ctx: Context, chat: str) -> tuple[int | None, int | None]:
    try:
        db = _db(ctx)
        return db.max_rowid(), db.chat_id_by(guid=chat)
    except ImsgError:
        return None, None


def poll_vote(ctx: Context, p: Params) -> dict[str, Any]:
    """Vote for one option (``option_id``, 1-based ``option_index`` or ``option`` text) of a
    poll found in local history."""
    _, chat, poll_guid, options = _poll(ctx, p)
    option_id, option_text = _choose(p, options)
    data = _client(ctx).call("send-poll-vote", {
        "chatGuid": chat, "pollMessageGuid": poll_guid, "optionIdentifier": option_id,
        "optionText": option_text})
    out: dict[str, Any] = {"ok": True, "event": "imessage.poll.voted", "poll_guid": poll_guid,
                           "option_id": option_id, "option_text": option_text}
    guid = data.get("messageGuid")
    if isinstance(guid, str) and guid:
        out.update(guid=guid, message_id=guid)
    return out


def poll_unvote(ctx: Context, p: Params) -> dict[str, Any]:
    """Withdraw one of this account's current votes; the others stay."""
    chat_id, chat, poll_guid, options = _poll(ctx, p)
    option_id, option_text = _choose(p, options)
    current = _my_selection(ctx, chat_id, poll_guid)
    if option_id not in current:
        raise InvalidParams(f"option_id {option_id} is not currently selected")
    remaining = [o for o in current if o != option_id]
    data = _client(ctx).call("send-poll-unvote", {
        "chatGuid": chat, "pollMessageGuid": poll_guid, "optionIdentifier": option_id,
        "optionText": option_text, "remainingOptionIdentifiers": remaining})
    out: dict[str, Any] = {"ok": True, "event": "imessage.poll.unvoted", "poll_guid": poll_guid,
                           "option_id": option_id, "option_text": option_text,
                           "remaining_option_ids": remaining}
    guid = data.get("messageGuid")
    if isinstance(guid, str) and guid:
        out.update(guid=guid, message_id=guid)
    return out


def _poll(ctx: Context, p: Params) -> tuple[int, str, str, list[polls.Option]]:
    raw = p.string("poll_guid")
    if raw is None or not raw.strip():
        raise InvalidParams("poll_guid is required")
    poll_guid, _ = vocab.message_target(raw)
    selector = chat_selector(p)
    assert selector is not None
    chat_id = _chat_id(ctx, selector)
    db = _db(ctx)
    guid, options = polls.poll_options(db, chat_id, poll_guid)
    return chat_id, db.chat_ref(chat_id).guid, guid, options


def _choose(p: Params, options: list[polls.Option]) -> polls.Option:
    index = p.integer("option_index")
    return polls.choose(options, option_id=p.string("option_id"), option_index=index,
                        option=p.string("option"))


def _my_selection(ctx: Context, chat_id: int, poll_guid: str) -> list[str]:
    return polls.my_selection(_db(ctx), chat_id, poll_guid)


# --- bridge events ----------------------------------------------------------------------------

class BridgeEventsSpec(StreamSpec):
    """``bridge.events.subscribe``: the helper's event log from its current end."""

    def __init__(self, tail: EventTail, buffer_limit: int) -> None:
        self.tail = tail
        self.buffer_limit = buffer_limit
        self.start_cursor = 0
        self.drop_on_overflow = False
        self._stop = threading.Event()

    def response(self, sid: int) -> dict[str, Any]:
        return {"subscription": sid, "buffer_limit": self.buffer_limit, "resumable": False}

    def items(self, sid: int) -> Iterator[Item]:
        try:
            for event in self.tail.follow(self._stop):
                yield None, protocol.notification("bridge.event",
                                                  {"subscription": sid, "event": event})
        except EventsReadFailed as exc:
            log.warning("subscription %d: %s", sid, exc)
            yield None, _events_error(sid, "event_log_read_failed", str(exc))
        finally:
            self.tail.close()

    def close(self) -> None:
        self._stop.set()

    def overflow_frame(self, sid: int, delivered: int) -> bytes:
        return protocol.notification("bridge.events.overflow", {
            "subscription": sid, "reason": "buffer_limit_exceeded", "resumable": False,
            "terminal": True})

    def error_frame(self, sid: int, error: RpcError, delivered: int) -> bytes:
        detail = error.data if isinstance(error.data, str) and error.data else error.message
        return _events_error(sid, "event_stream_failed", detail)


def _events_error(sid: int, code: str, message: str) -> bytes:
    """The terminal ``bridge.events.error`` notification."""
    return protocol.notification("bridge.events.error", {
        "subscription": sid, "error": {"code": code, "message": message}, "terminal": True})


def bridge_events_subscribe(ctx: Context, p: Params) -> BridgeEventsSpec:
    """Stream ``bridge.event`` notifications from the helper's event log (no replay)."""
    buffer_limit = p.integer("buffer_limit", DEFAULT_EVENTS_BUFFER, minimum=1,
                             maximum=MAX_EVENTS_BUFFER)
    container = _client(ctx).container
    try:
        tail = open_tail(container.events)
    except EventsUnavailable as exc:
        raise BridgeEventsUnavailable(str(exc)) from None
    return BridgeEventsSpec(tail, buffer_limit)
