"""``initialize`` and ``status``: the protocol v1 snapshot of what this server can do now.

Keys are the Swift tool's (``version``, ``protocol_version``, ``database``, ``bridge``,
``contacts``, ``methods``, ``supported_methods``, ``capabilities``); imsg's own diagnostics
live under ``server`` (pid, transport, schema profile, what is known of the permissions, this
client's subscriptions), never in place of Swift's. Building it retries the database open and
never launches anything; it cannot fail.
"""

from __future__ import annotations

from typing import Any

from imsg import version
from imsg.chatdb.connection import Schema
from imsg.errors import DatabaseNotFound, ImsgError, PermissionDenied
from imsg.rpc.context import Context
from imsg.rpc.errors import InvalidParams
from imsg.rpc.params import Params

PROTOCOL_VERSION = 1


def database_features(schema: Schema) -> dict[str, bool]:
    """What this database's columns allow (the Swift tool's derivations)."""
    m = schema.columns.get("message", frozenset())
    c = schema.columns.get("chat", frozenset())
    return {
        "unread_state": "is_read" in m,
        "scheduled_messages": {"schedule_type", "schedule_state"} <= m,
        "reactions": {"guid", "associated_message_guid", "associated_message_type"} <= m,
        "reply_context": bool({"reply_to_guid", "thread_originator_guid"} & m),
        "routing_metadata": "destination_caller_id" in m
        or bool({"account_id", "account_login", "last_addressed_handle"} & c),
        "balloon_payloads": "balloon_bundle_id" in m
        and bool({"payload_data", "message_summary_info"} & m),
    }


def snapshot(ctx: Context) -> dict[str, Any]:
    from imsg.rpc.catalog import available_methods, supported_methods

    database: dict[str, Any] = {"path": ctx.db.path}
    features: dict[str, bool] | None = None
    profile: str | None = None
    try:
        schema = ctx.db.schema()
    except ImsgError as err:
        database.update(ready=False, error=_database_error(err))
        if isinstance(err, PermissionDenied):
            ctx.permissions.full_disk_access = "denied"
    else:
        features = database_features(schema)
        profile = schema.profile
        database.update(ready=True, features=features)
        ctx.permissions.full_disk_access = "granted"
    bridge = ctx.bridge.snapshot()
    public_bridge = {k: v for k, v in bridge.items() if k != "events_available"}
    server: dict[str, Any] = {
        "pid": _pid(), "transport": ctx.transport,
        "permissions": {"full_disk_access": ctx.permissions.full_disk_access,
                        "automation": ctx.permissions.automation},
        "subscriptions": len(ctx.subscriptions),
    }
    if profile is not None:
        server["schema_profile"] = profile
    return {
        "version": version(),
        "protocol_version": PROTOCOL_VERSION,
        "database": database,
        "bridge": public_bridge,
        "contacts": {"available": _contacts_available()},
        "methods": available_methods(features, bridge),
        "supported_methods": supported_methods(),
        "capabilities": {
            "engine": {"version": version(), "commit": "unknown", "built_at": "unknown"},
            "features": _capability_features(bridge),
        },
        "server": server,
    }


def _database_error(err: ImsgError) -> str:
    detail = getattr(err, "detail", None)
    if isinstance(detail, str):
        return detail
    return DatabaseNotFound.detail if isinstance(err, DatabaseNotFound) else err.message


def _capability_features(bridge: dict[str, Any]) -> dict[str, int]:
    selectors = bridge.get("selectors") or {}
    return {"tapback.emoji": 2} if selectors.get("emojiTapbackSend") is True else {}


def _contacts_available() -> bool:
    from imsg.chatdb.contacts import contact_book

    return contact_book().available(wait=False)  # never waits for the first load, as Swift


def _pid() -> int:
    import os

    return os.getpid()


def status(ctx: Context, p: Params) -> dict[str, Any]:
    """The snapshot; takes no parameters."""
    return snapshot(ctx)


def initialize(ctx: Context, p: Params) -> dict[str, Any]:
    """The snapshot, after checking ``protocol_version`` (optional; must be 1)."""
    requested = p.integer("protocol_version")
    if requested is not None and requested != PROTOCOL_VERSION:
        raise InvalidParams(f"unsupported protocol_version {requested}; supported version is "
                            f"{PROTOCOL_VERSION}")
    return snapshot(ctx)
