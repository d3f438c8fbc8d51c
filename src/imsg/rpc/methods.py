"""The RPC methods as plain functions ``(Context, Params) -> result``; no JSON in sight.

Results are dicts whose values may be msgspec Structs (the wire models); the protocol layer
encodes them. Failures are ``InvalidParams`` for bad parameters and ``imsg.errors`` for the rest
(``ChatNotFound``/``InvalidDate``/``InvalidTarget`` → -32602, database and send failures →
-32603); nothing here catches them.

``watch.subscribe`` returns a ``WatchSpec``: the watcher, created here so its cursor is fixed
and a bad ``chat_id`` fails the request, plus delivery options. The session registers it and
starts streaming only after the ``{"subscription": N}`` response is queued.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import msgspec

from imsg import __version__
from imsg.chatdb.models import Message
from imsg.chatdb.reader import ChatDB, Filters
from imsg.errors import AutomationDenied
from imsg.rpc.errors import InvalidParams
from imsg.rpc.params import Params

if TYPE_CHECKING:
    from imsg.watch import Watcher

log = logging.getLogger("imsg.rpc")

DEFAULT_BUFFER = 1024
MAX_BUFFER = 65536


class RpcChat(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """``chats.list`` item: the Swift tool's smaller RPC chat shape (``guid`` always present)."""

    id: int
    identifier: str
    guid: str
    name: str
    service: str
    last_message_at: str
    participants: list[str]
    is_group: bool


class Subscriptions(Protocol):
    def __len__(self) -> int: ...

    def cancel(self, subscription: int) -> None: ...


@dataclass
class Permissions:
    """What the server has learned about macOS permissions (shared by all clients)."""

    full_disk_access: str = "granted"
    automation: str = "unknown"


@dataclass
class Context:
    db: ChatDB
    subscriptions: Subscriptions
    transport: str = "stdio"
    permissions: Permissions = field(default_factory=Permissions)


@dataclass(frozen=True)
class WatchSpec:
    watcher: Watcher
    attachments: bool
    buffer_size: int


def rpc_message(message: Message, attachments: bool) -> Message:
    """RPC messages carry attachment metadata only when asked (``attachments=true``)."""
    if attachments or not message.attachments:
        return message
    return msgspec.structs.replace(message, attachments=[])


def chats_list(ctx: Context, p: Params) -> dict[str, Any]:
    """``{"chats": [RpcChat]}``, newest activity first; ``limit`` (20) below 1 or not an
    integer → InvalidParams."""
    limit = p.integer("limit", 20, minimum=1)
    chats = [
        RpcChat(id=c.id, identifier=c.identifier, guid=c.guid or "", name=c.name,
                service=c.service, last_message_at=c.last_message_at,
                participants=c.participants, is_group=c.is_group)
        for c in ctx.db.chats(limit)
    ]
    return {"chats": chats}


def chats_get(ctx: Context, p: Params) -> dict[str, Any]:
    """``{"chat": Group}`` (also ``group``); ``chat_id`` missing → InvalidParams, unknown →
    ChatNotFound."""
    return {"chat": ctx.db.group(p.require_integer("chat_id"))}


def messages_history(ctx: Context, p: Params) -> dict[str, Any]:
    """``{"messages": [Message]}``, newest first, tapbacks folded into ``reactions``. Fails
    with InvalidParams (``chat_id`` missing, an ill-typed value), ChatNotFound, InvalidDate
    (``start``/``end``) or InvalidInput (start not before end)."""
    chat_id = p.require_integer("chat_id")
    limit = p.integer("limit", 50, minimum=1)
    filters = Filters.parse(p.strings("participants"), p.string("start"), p.string("end"))
    attachments = p.boolean("attachments")
    messages = ctx.db.history(chat_id, limit=limit, filters=filters,
                              edit_history=p.boolean("edit_history"))
    return {"messages": [rpc_message(m, attachments) for m in messages]}


def messages_search(ctx: Context, p: Params) -> dict[str, Any]:
    """``{"messages": [Message]}`` whose text contains (``match=contains``) or is
    (``exact``) ``query``, case-insensitive, newest first. Fails with InvalidParams
    (``query`` missing), InvalidInput (another ``match``) or ChatNotFound (``chat_id``)."""
    query = p.require_string("query")
    match = p.string("match", "contains")
    limit = p.integer("limit", 50, minimum=1)
    attachments = p.boolean("attachments")
    messages = ctx.db.search(query, match=match, limit=limit, chat_id=p.integer("chat_id"),
                             edit_history=p.boolean("edit_history"))
    return {"messages": [rpc_message(m, attachments) for m in messages]}


def watch_subscribe(ctx: Context, p: Params) -> WatchSpec:
    """Validate, then create the watcher (fixing its cursor). ``since_rowid`` absent or 0
    starts at the newest row; N > 0 replays rows after N; a negative value replays all.
    Extensions: ``include_updates`` (edits and unsends as ``message`` notifications with
    ``event``), ``buffer_size`` (notifications held for a slow client, 1024). Fails with
    InvalidParams, ChatNotFound, InvalidDate or a DatabaseError."""
    from imsg.watch import Watcher

    chat_id = p.integer("chat_id")
    since = p.integer("since_rowid")
    filters = Filters.parse(p.strings("participants"), p.string("start"), p.string("end"))
    debounce_ms = p.integer("debounce_ms", 500, minimum=0, maximum=60_000,
                            aliases=("debounceMs",))
    attachments = p.boolean("attachments")
    buffer_size = p.integer("buffer_size", DEFAULT_BUFFER, minimum=1, maximum=MAX_BUFFER)
    reactions, updates = p.boolean("include_reactions"), p.boolean("include_updates")
    watcher = Watcher(
        ctx.db.path, since_rowid=since or None, chat_id=chat_id, filters=filters,
        reactions=reactions, updates=updates, debounce_s=debounce_ms / 1000, on_status=_log_status,
    )
    return WatchSpec(watcher, attachments, buffer_size)


def _log_status(status: str) -> None:
    log.info("watch: %s", status)


def watch_unsubscribe(ctx: Context, p: Params) -> dict[str, Any]:
    """``{"ok": true}``, also for an id this client does not have."""
    ctx.subscriptions.cancel(p.require_integer("subscription"))
    return {"ok": True}


def send(ctx: Context, p: Params) -> dict[str, Any]:
    """Send ``text`` and/or ``file`` to ``to`` (any target form, see ``imsg.send.targets``) or
    to one of ``chat_id``, ``chat_identifier``, ``chat_guid``. Blocks for the AppleScript round
    trip and the verification in chat.db (on a sender thread: nothing else waits for it).

    Fails with InvalidParams (no or two kinds of target, nothing to send, a transport other
    than auto/applescript), InvalidTarget/ChatNotFound/AttachmentError (-32602) and the
    SendError family (-32603); an AutomationDenied is remembered for ``status``."""
    from imsg.send.sender import send as send_message
    from imsg.send.targets import target_from_fields

    to = p.string("to")
    chat_id = p.integer("chat_id")
    chat_identifier = p.string("chat_identifier")
    chat_guid = p.string("chat_guid")
    chat_given = not (chat_id is None and chat_identifier is None and chat_guid is None)
    if to is not None and chat_given:
        raise InvalidParams("use to or chat_*; not both")
    if to is None and not chat_given:
        raise InvalidParams("to is required for direct sends")
    text, file = p.string("text"), p.string("file")
    if not text and not file:
        raise InvalidParams("text or file is required")
    transport = p.string("transport", "auto").lower()
    if transport not in ("auto", "applescript"):
        raise InvalidParams(f"invalid transport {transport!r}: this server sends with "
                            "AppleScript (use auto or applescript)")
    region = p.string("region", "US")
    target = target_from_fields(to=to, chat_id=chat_id, chat_identifier=chat_identifier,
                                chat_guid=chat_guid, region=region,
                                service=p.string("service", "auto"))
    try:
        result = send_message(target, text=text, file=os.path.expanduser(file) if file else None,
                              db_path=ctx.db.path, region=region)
    except AutomationDenied:
        ctx.permissions.automation = "denied"
        raise
    ctx.permissions.automation = "granted"
    return {**result.to_dict(), "transport": "applescript"}


def status(ctx: Context, p: Params) -> dict[str, Any]:
    """Version, process, database and schema profile, what is known of the permissions, this
    client's subscription count and the method names. Never fails."""
    return {
        "version": __version__,
        "pid": os.getpid(),
        "transport": ctx.transport,
        "db_path": ctx.db.path,
        "schema_profile": ctx.db.schema.profile,
        "permissions": {"full_disk_access": ctx.permissions.full_disk_access,
                        "automation": ctx.permissions.automation},
        "subscriptions": len(ctx.subscriptions),
        "rpc_methods": sorted(METHODS),
    }


RunsOn = Literal["loop", "reader", "watcher", "sender"]


@dataclass(frozen=True)
class Method:
    """A handler and where it runs: on the event loop (instant), on the reader thread (the
    shared database connection serializes queries anyway; one thread spares them a contest),
    on a watcher thread (a new subscription opens its own connection) or on a sender thread
    (slow, never holding up the others)."""

    handler: Callable[[Context, Params], Any]
    runs_on: RunsOn


METHODS: dict[str, Method] = {
    "chats.list": Method(chats_list, "reader"),
    "chats.get": Method(chats_get, "reader"),
    "group": Method(chats_get, "reader"),
    "messages.history": Method(messages_history, "reader"),
    "messages.search": Method(messages_search, "reader"),
    "watch.subscribe": Method(watch_subscribe, "watcher"),
    "watch.unsubscribe": Method(watch_unsubscribe, "loop"),
    "send": Method(send, "sender"),
    "status": Method(status, "loop"),
}
