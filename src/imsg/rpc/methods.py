"""The core RPC methods as plain functions ``(Context, Params) -> result``; no JSON in sight.

Results are dicts whose values may be msgspec Structs (the wire models); the protocol layer
encodes them. Parameters are validated (``Params``, strict) before the database is touched.
Failures are ``InvalidParams`` for bad parameters and ``imsg.errors`` for the rest
(``ChatNotFound``/``InvalidDate``/``InvalidTarget`` → -32602, an unopenable database -32002,
send failures -32603/-32001 with the delivery object); nothing here catches them.

``watch.subscribe`` returns a ``WatchSpec``: the watcher, created here so its cursor is fixed
and a bad ``chat_id`` fails the request, plus delivery options. The session registers it and
starts streaming only after the ``{"subscription": N, "buffer_limit": B}`` response is queued.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from imsg.chatdb.filters import Filters
from imsg.chatdb.models import Message
from imsg.errors import AutomationDenied
from imsg.rpc.context import Context
from imsg.rpc.errors import InvalidParams
from imsg.rpc.params import Params, chat_selector, target_or_chat

if TYPE_CHECKING:
    from imsg.chatdb.reader import ChatDB
    from imsg.watch import Watcher

log = logging.getLogger("imsg.rpc")

DEFAULT_BUFFER_LIMIT = 256
MAX_BUFFER_LIMIT = 4096
SEARCH_LIMIT_MAX = 100


@dataclass(frozen=True)
class WatchSpec:
    watcher: Watcher
    attachments: bool
    buffer_limit: int
    convert: bool = False  # convert_attachments: on the subscription's own thread


def rpc_message(message: Message, attachments: bool) -> Message:
    """RPC messages carry attachment metadata only when asked (``attachments=true``)."""
    if attachments or not message.attachments:
        return message
    return msgspec.structs.replace(message, attachments=[])


def _chat_id(db: ChatDB, p: Params) -> int:
    """The chat the selector names (``chat_id``, ``chat_identifier`` or ``chat_guid``)."""
    selector = chat_selector(p)
    assert selector is not None
    if selector.kind == "chat_id":
        assert isinstance(selector.value, int)
        return selector.value
    if selector.kind == "chat_guid":
        return db.chat_id_by(guid=str(selector.value))
    return db.chat_id_by(identifier=str(selector.value))


def chats_list(ctx: Context, p: Params) -> dict[str, Any]:
    """``{"chats": [Chat]}`` (the full CLI payload), newest activity first."""
    limit = p.integer("limit", 20, minimum=1)
    unread_only = p.boolean("unread_only")
    db = ctx.db.get()
    if unread_only and not db.schema.has("message", "is_read"):
        raise InvalidParams("unread_only is unavailable because this Messages database has no "
                            "read-state column")
    return {"chats": db.chats(limit, unread_only=unread_only)}


def messages_stats(ctx: Context, p: Params) -> Any:
    """Counts by chat, sender, service and day in ``time_zone`` (default the local zone), with
    ``include_media`` attachment totals. A bad ``chat_id`` is an error, never all chats."""
    chat_id = p.integer("chat_id", minimum=1)
    time_zone = p.string("time_zone")
    return ctx.db.get().stats(chat_id=chat_id, time_zone=time_zone,
                              include_media=p.boolean("include_media"))


def messages_scheduled(ctx: Context, p: Params) -> dict[str, Any]:
    """``{"messages": [...]}``: Send Later rows still to go, soonest first."""
    limit = p.integer("limit", 50, minimum=1)
    db = ctx.db.get()
    if not db.schema.has("message", "schedule_type"):
        raise InvalidParams("messages.scheduled is unavailable because this Messages database "
                            "has no scheduling columns")
    return {"messages": db.scheduled(limit)}


def chats_get(ctx: Context, p: Params) -> Any:
    """The bare Group object of ``chat_id``; unknown → ChatNotFound (-32602)."""
    chat_id = p.require_integer("chat_id", minimum=1)
    return ctx.db.get().group(chat_id)


def messages_history(ctx: Context, p: Params) -> dict[str, Any]:
    """``{"messages": [Message]}``, newest first, tapbacks folded into ``reactions``, link
    previews folded into their text row."""
    chat_id = p.require_integer("chat_id", minimum=1)
    limit = p.integer("limit", 50, minimum=1)
    filters = Filters.parse(p.strings("participants"), p.string("start"), p.string("end"))
    attachments = p.boolean("attachments")
    convert = p.boolean("convert_attachments")
    edit_history = p.boolean("edit_history")
    messages = ctx.db.get().history(chat_id, limit=limit, filters=filters,
                                    edit_history=edit_history)
    return {"messages": [with_attachments(m, attachments, convert) for m in messages]}


def messages_search(ctx: Context, p: Params) -> dict[str, Any]:
    """``{"messages": [Message]}`` whose text contains (``match=contains``) or is
    (``exact``) ``query``, case-insensitive, newest first, at most 100; through the search
    index (built on the first search, caught up before each) with the same answers as the
    scan it replaces."""
    query = p.require_string("query")
    match = p.string("match", "contains")
    if match not in ("contains", "exact"):
        raise InvalidParams("match must be contains or exact")
    limit = p.integer("limit", 50, minimum=1, maximum=SEARCH_LIMIT_MAX)
    chat_id = p.integer("chat_id", minimum=1)
    attachments = p.boolean("attachments")
    edit_history = p.boolean("edit_history")
    from imsg.index import search  # the full-text index when usable, else the scan

    messages = search(ctx.db.get(), query, match=match, limit=limit, chat_id=chat_id,
                      edit_history=edit_history)
    return {"messages": [rpc_message(m, attachments) for m in messages]}


def with_attachments(message: Message, attachments: bool, convert: bool) -> Message:
    """The message as RPC sends it: attachments only when asked, converted when asked."""
    message = rpc_message(message, attachments or convert)
    if convert:
        from imsg.chatdb.convert import with_converted_attachments

        message = with_converted_attachments(message)
    return message


def messages_after(ctx: Context, p: Params) -> dict[str, Any]:
    """``{messages, next_rowid, has_more}``: rows after ``since_rowid`` in ROWID order, decided
    by the watcher's own rules (``imsg.watch.paging``), so paging and a live watch never
    disagree. imsg adds ``skipped`` (rows given up: never joined to a chat, or unreadable) and
    ``waiting_on`` (the young unjoined row the page stopped at) when there are any."""
    from imsg.watch.paging import MAX_LIMIT, page_after

    since = p.integer("since_rowid")
    if since is None:
        raise InvalidParams("since_rowid must be an integer")
    if since < 0:
        raise InvalidParams("since_rowid must be a non-negative integer")
    chat_id = p.integer("chat_id", minimum=1)
    limit = p.integer("limit", 100, minimum=1, maximum=MAX_LIMIT)
    attachments, convert = p.boolean("attachments"), p.boolean("convert_attachments")
    page = page_after(ctx.db.get(), since, chat_id=chat_id, limit=limit,
                      reactions=p.boolean("include_reactions"),
                      attachments=attachments or convert)
    result: dict[str, Any] = {
        "messages": [with_attachments(m, attachments, convert) for m in page.messages],
        "next_rowid": page.next_rowid, "has_more": page.has_more}
    if page.skipped:
        result["skipped"] = [{"rowid": row.rowid, "guid": row.guid, "reason": row.reason}
                             for row in page.skipped]
    if page.waiting_on is not None:
        result["waiting_on"] = page.waiting_on
    return result


def watch_subscribe(ctx: Context, p: Params) -> WatchSpec:
    """Validate, then create the watcher (fixing its cursor). ``since_rowid`` absent or 0
    starts at the newest row; N > 0 resumes after N; -1 replays all. Extensions:
    ``include_updates`` (edits and unsends as ``message`` notifications with ``event``)."""
    from imsg.watch import Watcher

    chat_id = p.integer("chat_id", minimum=1)
    since = p.integer("since_rowid", minimum=-1)
    filters = Filters.parse(p.strings("participants"), p.string("start"), p.string("end"))
    debounce_ms = p.integer("debounce_ms", 500, minimum=0)
    buffer_limit = p.integer("buffer_limit", DEFAULT_BUFFER_LIMIT, minimum=1,
                             maximum=MAX_BUFFER_LIMIT)
    convert = p.boolean("convert_attachments")
    attachments = p.boolean("attachments") or convert
    reactions, updates = p.boolean("include_reactions"), p.boolean("include_updates")
    ctx.db.get()  # -32002 now, rather than a failing stream later
    watcher = Watcher(
        ctx.db.path, since_rowid=since or None, chat_id=chat_id, filters=filters,
        reactions=reactions, updates=updates, debounce_s=min(debounce_ms, 3_600_000) / 1000,
        on_status=_log_status, report_skipped=True,
    )
    return WatchSpec(watcher, attachments, buffer_limit, convert)


def _log_status(status: str) -> None:
    log.warning("watch: %s", status)


def watch_unsubscribe(ctx: Context, p: Params) -> dict[str, Any]:
    """``{"ok": true}``, also for an id this client does not have; no notification of it
    follows the answer."""
    ctx.subscriptions.cancel(p.require_integer("subscription", minimum=1))
    return {"ok": True}


TRANSPORTS = ("auto", "bridge", "applescript")
SEND_TIMEOUT_S = 150.0  # Swift's bound on one osascript send


def send(ctx: Context, p: Params) -> dict[str, Any]:
    """Send ``text`` and/or ``file`` to ``to`` (any target form, see ``imsg.send.targets``) or
    to one chat selector: through the bridge when ``transport`` and the route table say so
    (``imsg.rpc.bridge_methods.send_via_bridge``: ``reply_to`` and ``text_formatting`` work
    only there), else through AppleScript, confirmed in chat.db.

    Fails with InvalidParams (no or two kinds of target, nothing to send, a bad transport,
    ``reply_to`` without a bridge, ``attempt_id``), InvalidTarget/ChatNotFound/AttachmentError
    (-32602), DatabaseUnavailable (-32002, for a ``chat_id`` target) and the SendError family
    (-32603 "Delivery failed before dispatch" / -32001 "Delivery outcome unknown" with the
    delivery object); an AutomationDenied is remembered for ``status``."""
    from imsg.rpc.bridge_methods import Outgoing, formatting_ranges, reply_guid, send_via_bridge
    from imsg.send.sender import send as send_message
    from imsg.send.targets import target_from_fields

    if p.has("attempt_id"):
        raise InvalidParams("attempt_id is only supported by send.tracked")
    to, chat = target_or_chat(p)
    text, file = p.string("text", ""), p.string("file", "")
    if not text and not file:
        raise InvalidParams("text or file is required")
    service = p.string("service", "auto")
    if service not in ("auto", "imessage", "sms"):
        raise InvalidParams(f"invalid service {service!r}: use auto, imessage or sms")
    transport = p.string("transport", "auto").lower()
    if transport not in TRANSPORTS:
        raise InvalidParams(f"invalid transport {transport!r}: use auto, bridge or applescript")
    allow_sms_fallback = p.boolean("allow_sms_fallback", True)
    region = p.string("region", "US")
    bridged = send_via_bridge(ctx, Outgoing(
        to, chat, text, file, service, region, reply_guid(p), formatting_ranges(p),
        allow_sms_fallback), transport)
    if bridged is not None:
        return bridged
    target = target_from_fields(
        to=to, region=region, service=service,
        chat_id=chat.value if chat and chat.kind == "chat_id" else None,
        chat_identifier=str(chat.value) if chat and chat.kind == "chat_identifier" else None,
        chat_guid=str(chat.value) if chat and chat.kind == "chat_guid" else None)
    try:
        result = send_message(target, text=text or None, file=file or None,
                              db_path=ctx.db.path, region=region,
                              allow_sms_fallback=allow_sms_fallback, timeout_s=SEND_TIMEOUT_S)
    except AutomationDenied:
        ctx.permissions.automation = "denied"
        raise
    ctx.permissions.automation = "granted"
    return result.to_dict()


def send_status(ctx: Context, p: Params) -> dict[str, Any]:
    """``message.send_status {guid}``: the newest row with that guid, from chat.db alone."""
    from imsg.send.status import send_status as status_of

    return status_of(ctx.db.get(), p.require_string("guid"))
