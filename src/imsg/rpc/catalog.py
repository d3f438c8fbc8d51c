"""Every RPC method: its names, lane, accepted parameters, handler and requirements.

The order is the Swift tool's descriptor order; ``supported_methods`` lists every name in it,
``methods`` (in ``status``/``initialize``) only those whose requirements hold right now:

- ``needs_db``: the database opens (and has the listed schema features, see
  ``imsg.rpc.status.database_features``);
- ``bridge``: the injected helper answered a probe with ``bridge_version`` and
  ``v2_ready``, plus (when ``registry``) ``registry_available``, every selector in ``all`` and
  at least one in ``any`` true (and, for events, a usable events file).

Lanes: ``control`` runs independently of the others (an unsubscribe never waits behind a
send), ``read`` on a pool of reader threads (replies may come out of order), ``mutation`` on one
FIFO worker shared by the whole server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from imsg.rpc import methods, status
from imsg.rpc.context import Context
from imsg.rpc.params import CHAT_SELECTOR, Accepted, Params

Lane = Literal["control", "read", "mutation"]
Handler = Callable[[Context, Params], Any]


@dataclass(frozen=True)
class BridgeNeed:
    registry: bool = True
    all: tuple[str, ...] = ()
    any: tuple[str, ...] = ()
    events: bool = False

    def met(self, bridge: Mapping[str, Any]) -> bool:
        if "bridge_version" not in bridge or bridge.get("v2_ready") is not True:
            return False
        if self.registry and bridge.get("registry_available") is not True:
            return False
        if self.events and bridge.get("events_available") is not True:
            return False
        selectors = bridge.get("selectors") or {}
        if not all(selectors.get(name) is True for name in self.all):
            return False
        return not self.any or any(selectors.get(name) is True for name in self.any)


@dataclass(frozen=True)
class MethodSpec:
    names: tuple[str, ...]  # the main name first, then aliases
    lane: Lane
    handler: Handler
    params: Accepted
    needs_db: bool | tuple[str, ...] = False  # True: the database; a tuple: these features too
    bridge: BridgeNeed | None = None
    streams: bool = False  # answers with a subscription (counts against the session's cap)

    def available(self, db_features: Mapping[str, bool] | None,
                  bridge: Mapping[str, Any]) -> bool:
        if self.needs_db:
            if db_features is None:
                return False
            if isinstance(self.needs_db, tuple) and not all(
                    db_features.get(feature) for feature in self.needs_db):
                return False
        return self.bridge is None or self.bridge.met(bridge)


_MESSAGE_FILTERS: Accepted = {"participants": (), "start": (), "end": (), "attachments": (),
                              "convert_attachments": ()}
_SEND: Accepted = {
    "to": (), **CHAT_SELECTOR, "text": (), "file": (), "service": (), "transport": (),
    "region": (), "allow_sms_fallback": ("allowSMSFallback",),
    "text_formatting": ("textFormatting", "formatting"),
    "reply_to": ("replyTo", "reply_to_guid", "message_guid"), "attempt_id": (),
}

CATALOG: list[MethodSpec] = [
    MethodSpec(("initialize",), "control", status.initialize, {"protocol_version": ()}),
    MethodSpec(("status",), "read", status.status, {}),
    MethodSpec(("watch.unsubscribe",), "control", methods.watch_unsubscribe,
               {"subscription": ()}),
    MethodSpec(("chats.list",), "read", methods.chats_list,
               {"limit": (), "unread_only": ("unreadOnly",)}, needs_db=True),
    MethodSpec(("chats.get", "group"), "read", methods.chats_get, {"chat_id": ()},
               needs_db=True),
    MethodSpec(("messages.history",), "read", methods.messages_history,
               {"chat_id": (), "limit": (), **_MESSAGE_FILTERS, "edit_history": ()},
               needs_db=True),
    MethodSpec(("messages.search",), "read", methods.messages_search,
               {"query": (), "match": (), "limit": (), "chat_id": (), "attachments": (),
                "edit_history": ()}, needs_db=True),
    MethodSpec(("watch.subscribe",), "control", methods.watch_subscribe,
               {"chat_id": (), "since_rowid": (), **_MESSAGE_FILTERS, "include_reactions": (),
                "include_updates": (), "debounce_ms": ("debounceMs",),
                "buffer_limit": ("bufferLimit",)}, needs_db=True, streams=True),
    MethodSpec(("message.send_status",), "read", methods.send_status, {"guid": ()},
               needs_db=True),
    MethodSpec(("send",), "mutation", methods.send, _SEND, needs_db=True),
]

BY_NAME: dict[str, MethodSpec] = {name: spec for spec in CATALOG for name in spec.names}


def supported_methods() -> list[str]:
    return [name for spec in CATALOG for name in spec.names]


def available_methods(db_features: Mapping[str, bool] | None,
                      bridge: Mapping[str, Any]) -> list[str]:
    return [name for spec in CATALOG if spec.available(db_features, bridge)
            for name in spec.names]
