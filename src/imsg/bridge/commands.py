"""The bridge actions behind the CLI's bridge commands (``imsg tapback``, ``send-rich``…),
as functions over a ``BridgeClient``: each checks its input (``InvalidInput``), builds the
helper's camelCase params and returns the helper's ``data`` (what the Swift CLI prints),
sometimes with the row chat.db shows for it.

The CLI uses a *launching* client (``launching_client``): when no helper is ready it runs
``imsg launch``'s flow first (SIP off and the dylib present, else ``LaunchFailed``). Failures
are the client's (``imsg.bridge.client``) plus ``InvalidInput``/``ChatNotFound`` for bad
flags and the staging errors of ``imsg.bridge.files`` (``not_started``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from imsg.bridge import files, polls, vocab
from imsg.bridge.client import BridgeClient
from imsg.bridge.container import Container
from imsg.bridge.observe import observe_sent
from imsg.chatdb.reader import ChatDB
from imsg.errors import ChatNotFound, DatabaseError, InvalidInput, SendNotConfirmed

MAX_PARTS = 20
CLI_CAPTION_VERIFY_S = 8.0


def launching_client(container: Container | None = None) -> BridgeClient:
    """A client that runs ``imsg launch``'s flow when no helper is ready."""
    def launch() -> None:
        from imsg.bridge.launch import launch as run_launch

        print("imsg: the bridge is not ready; launching Messages.app with the helper",
              file=sys.stderr)
        run_launch(container)

    return BridgeClient(container, launch=launch)


def chat_guid_of(db_path: str | None, chat_id: int) -> str:
    """The GUID of chat ``chat_id``; raises ChatNotFound and the DatabaseError family."""
    with ChatDB(db_path) as db:
        return db.chat_ref(chat_id).guid


def direct_target(db_path: str | None, *, to: str | None, chat_id: int | None,
                  chat_identifier: str | None, chat_guid: str | None,
                  service: str = "imessage") -> str:
    """The ``handle`` for ``typing``/``read``: a chat's GUID, else the stored direct chat of
    ``to``, else ``iMessage;-;<to>`` / ``SMS;-;<to>``."""
    from imsg.send.targets import normalize_handle

    given = [v for v in (to, chat_id, chat_identifier, chat_guid) if v is not None]
    if len(given) != 1:
        raise InvalidInput("Give exactly one of --to, --chat-id, --chat-identifier or "
                           "--chat-guid")
    if chat_guid is not None:
        return chat_guid
    if chat_id is not None:
        return chat_guid_of(db_path, chat_id)
    try:
        with ChatDB(db_path) as db:
            if chat_identifier is not None:
                return db.chat_ref(db.chat_id_by(identifier=chat_identifier)).guid
            handle = normalize_handle(str(to), "US")
            ref = db.chat_ref(db.chat_id_by(identifier=handle))
            if not ref.is_group and ref.service.lower() == (
                    "sms" if service == "sms" else "imessage"):
                return ref.guid
    except (ChatNotFound, DatabaseError):
        if chat_identifier is not None:
            return chat_identifier
    return vocab.direct_guid(normalize_handle(str(to), "US"), service)


def formatting_from(text: str | None, path: str | None) -> list[dict[str, Any]] | None:
    """``--format JSON`` or ``--format-file P``: formatting ranges, checked."""
    import json

    if text is None and path is None:
        return None
    if text is not None and path is not None:
        raise InvalidInput("Invalid value for option: --format (give --format or "
                           "--format-file, not both)")
    try:
        raw = json.loads(text if text is not None else Path(str(path)).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"Invalid value for option: --format ({exc})") from None
    if not isinstance(raw, list):
        raise InvalidInput("Invalid value for option: --format (a JSON array of ranges)")
    return vocab.text_formatting(raw, "--format")


def send_rich(client: BridgeClient, db_path: str | None, chat: str, *, text: str | None,
              file: str | None, url: str | None, effect: str | None, subject: str | None,
              reply_to: str | None, part: int, formatting: list[dict[str, Any]] | None,
              dd_scan: bool) -> tuple[dict[str, Any], str]:
    """``(data, how)`` where ``how`` is ``message``, ``attachment`` or ``link``."""
    if url:
        if text or file:
            raise InvalidInput("Invalid value for option: --url (use --url alone)")
        data = client.call("send-rich-link", {
            "chatGuid": chat, "message": url, "partIndex": 0, "ddScan": True,
            "richLinkPreview": {"url": url, "originalURL": url}})
        return data, "link"
    if not text and not file:
        raise InvalidInput("Missing required option: --text or --file")
    params: dict[str, Any] = {"chatGuid": chat, "partIndex": part}
    if effect:
        params["effectId"] = vocab.effect_id(effect)
    if subject:
        params["subject"] = subject
    if reply_to:
        params["selectedMessageGuid"] = reply_to
    if formatting is not None:
        params["textFormatting"] = formatting
    if not file:
        return client.call("send-message", {**params, "message": text, "ddScan": dd_scan}), \
            "message"
    staged = files.stage(file, "send-attachment", client.transport)
    params.update(filePath=str(staged), isAudioMessage=False)
    if text:
        params["message"] = text
    return _observed_send(client, db_path, chat, "send-attachment", params,
                          attachment=True), "attachment"


def send_attachment(client: BridgeClient, db_path: str | None, chat: str, file: str, *,
                    audio: bool = False, reply_to: str | None = None,
                    part: int = 0) -> dict[str, Any]:
    """One file (a voice note with ``audio``), optionally threaded under ``reply_to``."""
    stage = files.stage_voice if audio else files.stage
    params: dict[str, Any] = {"chatGuid": chat,
                              "filePath": str(stage(file, "send-attachment", client.transport)),
                              "isAudioMessage": audio}
    if reply_to:
        params.update(selectedMessageGuid=reply_to, partIndex=part)
    return client.call("send-attachment", params)


def send_multipart(client: BridgeClient, db_path: str | None, chat: str,
                   parts: list[Any], *, effect: str | None,
                   subject: str | None) -> dict[str, Any]:
    if not isinstance(parts, list) or not 1 <= len(parts) <= MAX_PARTS:
        raise InvalidInput(f"parts must contain between 1 and {MAX_PARTS} text parts")
    checked = []
    for item in parts:
        if isinstance(item, str):
            item = {"text": item}
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) \
                or not item["text"].strip():
            raise InvalidInput("each part needs a non-empty text")
        part: dict[str, Any] = {"text": item["text"]}
        ranges = item.get("text_formatting", item.get("textFormatting"))
        if ranges is not None:
            if not isinstance(ranges, list):
                raise InvalidInput("text_formatting must be an array of objects")
            part["textFormatting"] = vocab.text_formatting(ranges)
        checked.append(part)
    params: dict[str, Any] = {"chatGuid": chat, "parts": checked}
    if effect:
        params["effectId"] = vocab.effect_id(effect)
    if subject:
        params["subject"] = subject
    return _observed_send(client, db_path, chat, "send-multipart", params, attachment=False)


def _observed_send(client: BridgeClient, db_path: str | None, chat: str, action: str,
                   params: dict[str, Any], *, attachment: bool) -> dict[str, Any]:
    """Send, then wait for the row in chat.db (when it can be read): ``data`` plus ``id``."""
    try:
        db = ChatDB(db_path)
    except DatabaseError:
        return client.call(action, params)
    with db:
        try:
            chat_id: int | None = db.chat_id_by(guid=chat)
        except ChatNotFound:
            chat_id = None
        baseline = db.max_rowid()
        data = client.call(action, params)
        if chat_id is None:
            return data
        guid = data.get("messageGuid") if isinstance(data.get("messageGuid"), str) else None
        row = observe_sent(db, baseline, chat_id, guid, attachment=attachment)
        if row is None:
            raise SendNotConfirmed(f"The bridge accepted {action} but no matching outgoing row "
                                   f"appeared in chat {chat_id}; it may still be delivered.",
                                   transport=client.transport, operation=action)
        return {**data, "id": row.id, "messageGuid": data.get("messageGuid") or row.guid}


def send_sticker(client: BridgeClient, chat: str, file: str, *, attach_to: str | None,
                 part: int | None) -> dict[str, Any]:
    from imsg.bridge.stickers import inspect

    target: str | None = None
    if attach_to:
        target, embedded = vocab.message_target(attach_to)
        part = part if part is not None else (embedded or 0)
    staged = files.stage(file, "send-sticker", client.transport)
    image = inspect(staged.read_bytes(), staged.name)
    params: dict[str, Any] = {
        "chatGuid": chat, "filePath": str(staged), "contentHash": image.sha256,
        "pixelWidth": image.width, "pixelHeight": image.height,
        "accessibilityLabel": Path(file).stem, "targetPartIndex": part or 0}
    if target:
        params["selectedMessageGuid"] = target
    return client.call("send-sticker", params)


def poll_send(client: BridgeClient, db_path: str | None, chat: str, question: str,
              options: list[str], *, comment: str | None, no_comment: bool,
              reply_to: str | None) -> dict[str, Any]:
    """The poll, then its caption (``comment`` or the question) unless ``no_comment``;
    ``data`` gets a ``comment`` report like RPC's (the caption is checked for 8 s)."""
    options = [o.strip() for o in options if o.strip()]
    if not question.strip():
        raise InvalidInput("Missing required option: --question")
    if len(options) < 2:
        raise InvalidInput("Give at least two --option values")
    if comment is not None and no_comment:
        raise InvalidInput("--comment cannot be combined with --no-comment")
    params: dict[str, Any] = {"chatGuid": chat, "question": question.strip(),
                              "options": options}
    if reply_to:
        params["selectedMessageGuid"] = reply_to
    data = dict(client.call("send-poll", params))
    if no_comment:
        return data
    from imsg.errors import SendError

    report: dict[str, Any] = {"requested": True}
    try:
        sent = _observed_caption(client, db_path, chat, comment or question.strip())
    except SendError as err:
        report.update(sent=False if err.retry_safe else None, error=err.message,
                      disposition=err.disposition, retry_safe=err.retry_safe)
    else:
        report.update(sent=True, **sent)
    data["comment"] = report
    return data


def _observed_caption(client: BridgeClient, db_path: str | None, chat: str,
                      text: str) -> dict[str, Any]:
    try:
        db = ChatDB(db_path)
    except DatabaseError:
        data = client.call("send-message", {"chatGuid": chat, "message": text})
        return {"message_guid": data.get("messageGuid")}
    with db:
        baseline = db.max_rowid()
        data = client.call("send-message", {"chatGuid": chat, "message": text})
        guid = data.get("messageGuid") if isinstance(data.get("messageGuid"), str) else None
        try:
            row = observe_sent(db, baseline, db.chat_id_by(guid=chat), guid,
                               timeout_s=CLI_CAPTION_VERIFY_S)
        except ChatNotFound:
            row = None
        return {"message_guid": guid, "verified": row is not None}


def poll_vote(client: BridgeClient, db_path: str | None, chat: str, poll: str, *,
              option_id: str | None, option_index: int | None, option: str | None,
              unvote: bool) -> dict[str, Any]:
    poll_guid, _ = vocab.message_target(poll)
    with ChatDB(db_path) as db:
        chat_id = db.chat_id_by(guid=chat)
        guid, options = polls.poll_options(db, chat_id, poll_guid)
        chosen_id, chosen_text = polls.choose(options, option_id=option_id,
                                              option_index=option_index, option=option)
        params: dict[str, Any] = {"chatGuid": chat, "pollMessageGuid": guid,
                                  "optionIdentifier": chosen_id, "optionText": chosen_text}
        if not unvote:
            return {**client.call("send-poll-vote", params), "poll_guid": guid,
                    "option_id": chosen_id, "option_text": chosen_text}
        current = polls.my_selection(db, chat_id, guid)
    if chosen_id not in current:
        raise InvalidInput(f"option_id {chosen_id} is not currently selected")
    remaining = [o for o in current if o != chosen_id]
    params["remainingOptionIdentifiers"] = remaining
    return {**client.call("send-poll-unvote", params), "poll_guid": guid,
            "option_id": chosen_id, "option_text": chosen_text,
            "remaining_option_ids": remaining}


def attachment_via_bridge(transport: str, chat_guid: str | None, chat_id: int | None,
                          file: str, *, audio: bool, reply_to: str | None, part: int,
                          db_path: str | None) -> dict[str, Any] | None:
    """``imsg send-attachment``'s bridge route: the result when the bridge sent the file,
    None when AppleScript must. ``applescript``: never the bridge; ``dylib``: the bridge only
    (launching Messages with the helper when needed); ``auto``: the bridge when its ready
    lock exists, else (and after a ``not_started`` failure) AppleScript; voice notes
    (``audio``) and threaded replies (``reply_to``) never fall back once the bridge is
    tried."""
    from imsg.errors import SendError

    if transport == "applescript":
        return None
    if (chat_guid is None) == (chat_id is None):
        raise InvalidInput("Missing required option: --chat" if chat_guid is None else
                           "Invalid value for option: --chat (give --chat or --chat-id, not "
                           "both)")
    bridge_only = transport == "dylib" or audio or reply_to is not None
    client = launching_client() if transport == "dylib" else BridgeClient()
    if transport == "auto" and not client.ready():
        return None  # AppleScript (which refuses voice notes and replies before sending)
    chat = chat_guid if chat_guid is not None else chat_guid_of(db_path, int(str(chat_id)))
    try:
        data = send_attachment(client, db_path, chat, file, audio=audio, reply_to=reply_to,
                               part=part)
    except SendError as err:
        if bridge_only or not err.retry_safe:
            raise
        print(f"imsg: bridge send not started ({err.message}); using AppleScript",
              file=sys.stderr)
        return None
    result: dict[str, Any] = {"ok": True, "transport": "bridge", **data}
    guid = data.get("messageGuid")
    if isinstance(guid, str) and guid:
        result.update(guid=guid, message_id=guid)
    result["chat_guid"] = data.get("chatGuid") or chat
    return result


def react_via_bridge(chat_id: int, reaction: str, db_path: str | None) -> dict[str, Any] | None:
    """``imsg react`` through the bridge when a helper is ready and reports ``sendReaction``
    (a real tapback on the chat's latest message, no UI scripting); None otherwise. The
    result has the UI path's keys plus ``transport: "bridge"``."""
    from imsg.bridge.probe import probe
    from imsg.errors import ImsgError
    from imsg.send.sender import REACTIONS

    client = BridgeClient()
    if not client.ready():
        return None
    try:
        if not probe(client).selector("sendReaction"):
            return None
    except ImsgError:
        return None
    kind, remove = vocab.tapback_kind(reaction)
    with ChatDB(db_path) as db:
        chat = db.chat_ref(chat_id)
        latest = db.history(chat_id, limit=1)
    if not latest:
        raise InvalidInput(f"Chat {chat_id} has no message to react to")
    client.call("send-reaction", {"chatGuid": chat.guid, "selectedMessageGuid": latest[0].guid,
                                  "reactionType": f"remove-{kind}" if remove else kind,
                                  "partIndex": 0})
    name = "emphasis" if kind == "emphasize" else kind
    return {"success": True, "chat_id": chat_id, "reaction_type": name,
            "reaction_emoji": REACTIONS[name][0], "transport": "bridge"}
