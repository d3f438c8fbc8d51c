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

from imsg.rpc import bridge_methods as bm
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

_BRIDGE_MUTATIONS: list[MethodSpec] = [  # (the reference's order, after send)
    MethodSpec(("send.tracked",), "mutation", bm.send_tracked, _SEND, needs_db=True,
               bridge=BridgeNeed(all=("clientMessageGuidReservation",))),
    MethodSpec(("chats.create",), "mutation", bm.chats_create, bm.PARAMS["chats.create"],
               bridge=BridgeNeed(all=("createChat",))),
    MethodSpec(("chats.delete",), "mutation", bm.chats_delete, bm.PARAMS["chat"],
               bridge=BridgeNeed(any=("deleteChat", "removeChat"))),
    MethodSpec(("chats.markUnread",), "mutation", bm.chats_mark_unread, bm.PARAMS["chat"],
               bridge=BridgeNeed(all=("markChatUnread",))),
    MethodSpec(("send.rich",), "mutation", bm.send_rich, bm.PARAMS["send.rich"],
               bridge=BridgeNeed(all=("sendMessage",))),
    MethodSpec(("send.attachment",), "mutation", bm.send_attachment,
               bm.PARAMS["send.attachment"], bridge=BridgeNeed(all=("sendAttachment",))),
    MethodSpec(("send.multipart",), "mutation", bm.send_multipart, bm.PARAMS["send.multipart"],
               needs_db=True, bridge=BridgeNeed(all=("sendMultipart",))),
    MethodSpec(("send.sticker",), "mutation", bm.send_sticker, bm.PARAMS["send.sticker"],
               needs_db=True, bridge=BridgeNeed(all=("stickerSend",))),
    MethodSpec(("poll.send", "messages.poll.send"), "mutation", bm.poll_send,
               bm.PARAMS["poll.send"], bridge=BridgeNeed(all=("pollPayloadMessage",))),
    MethodSpec(("poll.vote", "messages.poll.vote"), "mutation", bm.poll_vote,
               bm.PARAMS["poll.vote"], needs_db=("balloon_payloads",),
               bridge=BridgeNeed(all=("pollVoteMessage",))),
    MethodSpec(("poll.unvote", "polls.unvote", "messages.poll.unvote"), "mutation",
               bm.poll_unvote, bm.PARAMS["poll.vote"],
               needs_db=("balloon_payloads", "reactions"),
               bridge=BridgeNeed(all=("pollVoteMessage",))),
    MethodSpec(("tapback",), "mutation", bm.tapback, bm.PARAMS["tapback"],
               bridge=BridgeNeed(all=("sendReaction",))),
    # typing/read: the Swift tool lists them without a bridge (it falls back to IMCore
    # directly); imsg has only the bridge, so they are listed when a v2 helper answers.
    MethodSpec(("typing",), "mutation", bm.typing, bm.PARAMS["typing"],
               bridge=BridgeNeed(registry=False)),
    MethodSpec(("read",), "mutation", bm.read, bm.PARAMS["read"],
               bridge=BridgeNeed(registry=False)),
    MethodSpec(("message.edit",), "mutation", bm.message_edit, bm.PARAMS["message.edit"],
               bridge=BridgeNeed(any=("editMessageItemTranslation", "editMessageItem",
                                      "editMessage"))),
    MethodSpec(("message.unsend",), "mutation", bm.message_unsend,
               bm.PARAMS["message.unsend"], bridge=BridgeNeed(all=("retractMessagePart",))),
    MethodSpec(("message.delete",), "mutation", bm.message_delete,
               bm.PARAMS["message.target"], bridge=BridgeNeed(all=("deleteMessage",))),
    MethodSpec(("message.notifyAnyways",), "mutation", bm.message_notify_anyways,
               bm.PARAMS["message.target"], bridge=BridgeNeed(all=("notifyAnyways",))),
    MethodSpec(("group.rename",), "mutation", bm.group_rename, bm.PARAMS["group.rename"],
               bridge=BridgeNeed(all=("setDisplayName",))),
    MethodSpec(("group.setIcon",), "mutation", bm.group_set_icon, bm.PARAMS["group.setIcon"],
               bridge=BridgeNeed(all=("updateGroupPhoto",))),
    MethodSpec(("group.addParticipant",), "mutation", bm.group_add_participant,
               bm.PARAMS["group.member"], bridge=BridgeNeed(all=("addParticipant",))),
    MethodSpec(("group.removeParticipant",), "mutation", bm.group_remove_participant,
               bm.PARAMS["group.member"], bridge=BridgeNeed(all=("removeParticipant",))),
    MethodSpec(("group.leave",), "mutation", bm.group_leave, bm.PARAMS["chat"],
               bridge=BridgeNeed(all=("leaveChat",))),
    MethodSpec(("contacts.shouldShareContact",), "read", bm.contacts_should_share,
               bm.PARAMS["chat"], bridge=BridgeNeed(all=("namePhotoShouldOffer",))),
    MethodSpec(("contacts.shareContactCard",), "mutation", bm.contacts_share_card,
               bm.PARAMS["chat"], bridge=BridgeNeed(all=("namePhotoShare",))),
    MethodSpec(("handles.check",), "read", bm.handles_check, bm.PARAMS["handles.check"],
               bridge=BridgeNeed(registry=False, all=("checkIMessageAvailability",))),
]

CATALOG: list[MethodSpec] = [
    MethodSpec(("initialize",), "control", status.initialize, {"protocol_version": ()}),
    MethodSpec(("status",), "read", status.status, {}),
    MethodSpec(("watch.unsubscribe",), "control", methods.watch_unsubscribe,
               {"subscription": ()}),
    MethodSpec(("chats.list",), "read", methods.chats_list,
               {"limit": (), "unread_only": ("unreadOnly",)}, needs_db=True),
    MethodSpec(("chats.get", "group"), "read", methods.chats_get, {"chat_id": ()},
               needs_db=True),
    MethodSpec(("messages.stats",), "read", methods.messages_stats,
               {"chat_id": (), "time_zone": (), "include_media": ()}, needs_db=True),
    MethodSpec(("messages.history",), "read", methods.messages_history,
               {"chat_id": (), "limit": (), **_MESSAGE_FILTERS, "edit_history": ()},
               needs_db=True),
    MethodSpec(("messages.search",), "read", methods.messages_search,
               {"query": (), "match": (), "limit": (), "chat_id": (), "attachments": (),
                "edit_history": ()}, needs_db=True),
    MethodSpec(("messages.after",), "read", methods.messages_after,
               {"since_rowid": (), "chat_id": (), "limit": (), "attachments": (),
                "convert_attachments": (), "include_reactions": ()}, needs_db=True),
    MethodSpec(("messages.scheduled",), "read", methods.messages_scheduled, {"limit": ()},
               needs_db=("scheduled_messages",)),
    MethodSpec(("watch.subscribe",), "control", methods.watch_subscribe,
               {"chat_id": (), "since_rowid": (), **_MESSAGE_FILTERS, "include_reactions": (),
                "include_updates": (), "debounce_ms": ("debounceMs",),
                "buffer_limit": ("bufferLimit",)}, needs_db=True, streams=True),
    MethodSpec(("bridge.events.subscribe",), "control", bm.bridge_events_subscribe,
               bm.PARAMS["bridge.events.subscribe"], bridge=BridgeNeed(registry=False,
                                                                      events=True),
               streams=True),
    MethodSpec(("message.send_status",), "read", methods.send_status, {"guid": ()},
               needs_db=True),
    MethodSpec(("send",), "mutation", methods.send, _SEND, needs_db=True),
    *_BRIDGE_MUTATIONS,
]

BY_NAME: dict[str, MethodSpec] = {name: spec for spec in CATALOG for name in spec.names}


def supported_methods() -> list[str]:
    return [name for spec in CATALOG for name in spec.names]


def available_methods(db_features: Mapping[str, bool] | None,
                      bridge: Mapping[str, Any]) -> list[str]:
    return [name for spec in CATALOG if spec.available(db_features, bridge)
            for name in spec.names]
