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

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from imsg.rpc import bridge_params as bp
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
    handler: str  # "module:function", imported on first use (startup imports none of them)
    params: Accepted
    needs_db: bool | tuple[str, ...] = False  # True: the database; a tuple: these features too
    bridge: BridgeNeed | None = None
    streams: bool = False  # answers with a subscription (counts against the session's cap)
    slow: bool = False  # a read that may take seconds: runs apart from the quick ones

    def available(self, db_features: Mapping[str, bool] | None,
                  bridge: Mapping[str, Any]) -> bool:
        if self.needs_db:
            if db_features is None:
                return False
            if isinstance(self.needs_db, tuple) and not all(
                    db_features.get(feature) for feature in self.needs_db):
                return False
        return self.bridge is None or self.bridge.met(bridge)

    def resolve(self) -> Handler:
        """The handler function (imported on the first call, then cached)."""
        found = _HANDLERS.get(self.handler)
        if found is None:
            module, _, name = self.handler.partition(":")
            found = _HANDLERS[self.handler] = getattr(importlib.import_module(module), name)
        return found


_HANDLERS: dict[str, Handler] = {}


M, S, B = "imsg.rpc.methods:", "imsg.rpc.status:", "imsg.rpc.bridge_methods:"
_MESSAGE_FILTERS: Accepted = {"participants": (), "start": (), "end": (), "attachments": (),
                              "convert_attachments": ()}
_SEND: Accepted = {
    "to": (), **CHAT_SELECTOR, "text": (), "file": (), "service": (), "transport": (),
    "region": (), "allow_sms_fallback": ("allowSMSFallback",),
    "text_formatting": ("textFormatting", "formatting"),
    "reply_to": ("replyTo", "reply_to_guid", "message_guid"), "attempt_id": (),
}

_BRIDGE_MUTATIONS: list[MethodSpec] = [  # (the reference's order, after send)
    MethodSpec(("send.tracked",), "mutation", B + "send_tracked", _SEND, needs_db=True,
               bridge=BridgeNeed(all=("clientMessageGuidReservation",))),
    MethodSpec(("chats.create",), "mutation", B + "chats_create", bp.PARAMS["chats.create"],
               bridge=BridgeNeed(all=("createChat",))),
    MethodSpec(("chats.delete",), "mutation", B + "chats_delete", bp.PARAMS["chat"],
               bridge=BridgeNeed(any=("deleteChat", "removeChat"))),
    MethodSpec(("chats.markUnread",), "mutation", B + "chats_mark_unread", bp.PARAMS["chat"],
               bridge=BridgeNeed(all=("markChatUnread",))),
    MethodSpec(("send.rich",), "mutation", B + "send_rich", bp.PARAMS["send.rich"],
               bridge=BridgeNeed(all=("sendMessage",))),
    MethodSpec(("send.attachment",), "mutation", B + "send_attachment",
               bp.PARAMS["send.attachment"], bridge=BridgeNeed(all=("sendAttachment",))),
    MethodSpec(("send.multipart",), "mutation", B + "send_multipart", bp.PARAMS["send.multipart"],
               needs_db=True, bridge=BridgeNeed(all=("sendMultipart",))),
    MethodSpec(("send.sticker",), "mutation", B + "send_sticker", bp.PARAMS["send.sticker"],
               needs_db=True, bridge=BridgeNeed(all=("stickerSend",))),
    MethodSpec(("poll.send", "messages.poll.send"), "mutation", B + "poll_send",
               bp.PARAMS["poll.send"], bridge=BridgeNeed(all=("pollPayloadMessage",))),
    MethodSpec(("poll.vote", "messages.poll.vote"), "mutation", B + "poll_vote",
               bp.PARAMS["poll.vote"], needs_db=("balloon_payloads",),
               bridge=BridgeNeed(all=("pollVoteMessage",))),
    MethodSpec(("poll.unvote", "polls.unvote", "messages.poll.unvote"), "mutation",
               B + "poll_unvote", bp.PARAMS["poll.vote"],
               needs_db=("balloon_payloads", "reactions"),
               bridge=BridgeNeed(all=("pollVoteMessage",))),
    MethodSpec(("tapback",), "mutation", B + "tapback", bp.PARAMS["tapback"],
               bridge=BridgeNeed(all=("sendReaction",))),
    # typing/read: the Swift tool lists them without a bridge (it falls back to IMCore
    # directly); imsg has only the bridge, so they are listed when a v2 helper answers.
    MethodSpec(("typing",), "mutation", B + "typing", bp.PARAMS["typing"],
               bridge=BridgeNeed(registry=False)),
    MethodSpec(("read",), "mutation", B + "read", bp.PARAMS["read"],
               bridge=BridgeNeed(registry=False)),
    MethodSpec(("message.edit",), "mutation", B + "message_edit", bp.PARAMS["message.edit"],
               bridge=BridgeNeed(any=("editMessageItemTranslation", "editMessageItem",
                                      "editMessage"))),
    MethodSpec(("message.unsend",), "mutation", B + "message_unsend",
               bp.PARAMS["message.unsend"], bridge=BridgeNeed(all=("retractMessagePart",))),
    MethodSpec(("message.delete",), "mutation", B + "message_delete",
               bp.PARAMS["message.target"], bridge=BridgeNeed(all=("deleteMessage",))),
    MethodSpec(("message.notifyAnyways",), "mutation", B + "message_notify_anyways",
               bp.PARAMS["message.target"], bridge=BridgeNeed(all=("notifyAnyways",))),
    MethodSpec(("group.rename",), "mutation", B + "group_rename", bp.PARAMS["group.rename"],
               bridge=BridgeNeed(all=("setDisplayName",))),
    MethodSpec(("group.setIcon",), "mutation", B + "group_set_icon", bp.PARAMS["group.setIcon"],
               bridge=BridgeNeed(all=("updateGroupPhoto",))),
    MethodSpec(("group.addParticipant",), "mutation", B + "group_add_participant",
               bp.PARAMS["group.member"], bridge=BridgeNeed(all=("addParticipant",))),
    MethodSpec(("group.removeParticipant",), "mutation", B + "group_remove_participant",
               bp.PARAMS["group.member"], bridge=BridgeNeed(all=("removeParticipant",))),
    MethodSpec(("group.leave",), "mutation", B + "group_leave", bp.PARAMS["chat"],
               bridge=BridgeNeed(all=("leaveChat",))),
    MethodSpec(("contacts.shouldShareContact",), "read", B + "contacts_should_share",
               bp.PARAMS["chat"], bridge=BridgeNeed(all=("namePhotoShouldOffer",))),
    MethodSpec(("contacts.shareContactCard",), "mutation", B + "contacts_share_card",
               bp.PARAMS["chat"], bridge=BridgeNeed(all=("namePhotoShare",))),
    MethodSpec(("handles.check",), "read", B + "handles_check", bp.PARAMS["handles.check"],
               bridge=BridgeNeed(registry=False, all=("checkIMessageAvailability",))),
]

CATALOG: list[MethodSpec] = [
    MethodSpec(("initialize",), "control", S + "initialize", {"protocol_version": ()}),
    MethodSpec(("status",), "read", S + "status", {}),
    MethodSpec(("watch.unsubscribe",), "control", M + "watch_unsubscribe",
               {"subscription": ()}),
    MethodSpec(("chats.list",), "read", M + "chats_list",
               {"limit": (), "unread_only": ("unreadOnly",)}, needs_db=True),
    MethodSpec(("chats.get", "group"), "read", M + "chats_get", {"chat_id": ()},
               needs_db=True),
    MethodSpec(("messages.stats",), "read", M + "messages_stats",
               {"chat_id": (), "time_zone": (), "include_media": ()}, needs_db=True, slow=True),
    MethodSpec(("messages.history",), "read", M + "messages_history",
               {"chat_id": (), "limit": (), **_MESSAGE_FILTERS, "edit_history": ()},
               needs_db=True),
    MethodSpec(("messages.search",), "read", M + "messages_search",
               {"query": (), "match": (), "limit": (), "chat_id": (), "attachments": (),
                "edit_history": ()}, needs_db=True, slow=True),
    MethodSpec(("messages.after",), "read", M + "messages_after",
               {"since_rowid": (), "chat_id": (), "limit": (), "attachments": (),
                "convert_attachments": (), "include_reactions": ()}, needs_db=True),
    MethodSpec(("messages.scheduled",), "read", M + "messages_scheduled", {"limit": ()},
               needs_db=("scheduled_messages",)),
    MethodSpec(("watch.subscribe",), "control", M + "watch_subscribe",
               {"chat_id": (), "since_rowid": (), **_MESSAGE_FILTERS, "include_reactions": (),
                "include_updates": (), "debounce_ms": ("debounceMs",),
                "buffer_limit": ("bufferLimit",)}, needs_db=True, streams=True),
    MethodSpec(("bridge.events.subscribe",), "control", B + "bridge_events_subscribe",
               bp.PARAMS["bridge.events.subscribe"], bridge=BridgeNeed(registry=False,
                                                                      events=True),
               streams=True),
    MethodSpec(("message.send_status",), "read", M + "send_status", {"guid": ()},
               needs_db=True),
    MethodSpec(("send",), "mutation", M + "send", _SEND, needs_db=True),
    *_BRIDGE_MUTATIONS,
]

BY_NAME: dict[str, MethodSpec] = {name: spec for spec in CATALOG for name in spec.names}


def supported_methods() -> list[str]:
    return [name for spec in CATALOG for name in spec.names]


def available_methods(db_features: Mapping[str, bool] | None,
                      bridge: Mapping[str, Any]) -> list[str]:
    return [name for spec in CATALOG if spec.available(db_features, bridge)
            for name in spec.names]
