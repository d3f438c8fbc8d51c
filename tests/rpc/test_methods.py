"""The handlers as plain functions over the reader: no JSON, no process."""

from __future__ import annotations

import os
from typing import Any

import pytest

from imsg.chatdb.models import Chat, Group
from imsg.errors import ChatNotFound, DatabaseNotFound, InvalidDate, InvalidInput, InvalidTarget
from imsg.rpc.catalog import BY_NAME, supported_methods
from imsg.rpc.context import Context, Database
from imsg.rpc.errors import InvalidParams
from imsg.rpc.methods import WatchSpec
from imsg.rpc.params import Params
from imsg.sim.messages import SimDB


class NoSubscriptions:
    def __init__(self) -> None:
        self.cancelled: list[int] = []

    def __len__(self) -> int:
        return 0

    def cancel(self, subscription: int) -> None:
        self.cancelled.append(subscription)


@pytest.fixture
def ctx(sim: SimDB, demo: dict[str, int]) -> Context:
    return Context(Database(sim.path), NoSubscriptions())


def call(ctx: Context, method: str, params: dict[str, Any] | None = None) -> Any:
    """Run ``method`` as the server does: strict params, then the handler."""
    spec = BY_NAME[method]
    return spec.resolve()(ctx, Params(method, params or {}, spec.params))


def test_chats_list_is_the_full_chat_payload(ctx: Context, demo: dict[str, int]) -> None:
    chats = call(ctx, "chats.list")["chats"]
    assert [c.id for c in chats] == [demo["trip"], demo["sms"], demo["alice"]]
    assert all(type(c) is Chat for c in chats)
    assert len(call(ctx, "chats.list", {"limit": 1})["chats"]) == 1
    with pytest.raises(InvalidParams, match="limit must be a positive integer"):
        call(ctx, "chats.list", {"limit": 0})


def test_chats_get_is_the_bare_group(ctx: Context, demo: dict[str, int]) -> None:
    chat = call(ctx, "chats.get", {"chat_id": demo["trip"]})
    assert type(chat) is Group and chat.name == "Weekend Trip" and chat.is_group
    assert call(ctx, "group", {"chat_id": demo["trip"]}) == chat
    with pytest.raises(ChatNotFound):
        call(ctx, "chats.get", {"chat_id": 999})
    with pytest.raises(InvalidParams, match="chat_id is required"):
        call(ctx, "chats.get")


def test_history_attachments_only_when_asked(ctx: Context, demo: dict[str, int]) -> None:
    params = {"chat_id": demo["alice"], "limit": 1}
    [plain] = call(ctx, "messages.history", params)["messages"]
    [full] = call(ctx, "messages.history", {**params, "attachments": True})["messages"]
    assert plain.id == full.id and plain.attachments == [] and full.attachments


def test_history_reactions_filters_and_failures(ctx: Context, demo: dict[str, int]) -> None:
    messages = call(ctx, "messages.history", {"chat_id": demo["trip"]})["messages"]
    assert any(m.reactions for m in messages)
    only_bob = call(ctx, "messages.history", {"chat_id": demo["trip"],
                                              "participants": ["bob@example.com"]})["messages"]
    assert only_bob and {m.sender for m in only_bob} == {"bob@example.com"}
    with pytest.raises(InvalidParams, match="chat_id is required"):
        call(ctx, "messages.history")
    with pytest.raises(InvalidParams, match="participants must be an array of strings"):
        call(ctx, "messages.history", {"chat_id": demo["trip"], "participants": "a,b"})
    with pytest.raises(InvalidDate):
        call(ctx, "messages.history", {"chat_id": demo["trip"], "end": "tomorrow"})
    with pytest.raises(ChatNotFound):
        call(ctx, "messages.history", {"chat_id": 404})
    with pytest.raises(InvalidInput, match="before"):
        call(ctx, "messages.history", {"chat_id": demo["trip"], "start": "2026-02-02T00:00:00Z",
                                       "end": "2026-02-01T00:00:00Z"})


def test_search(ctx: Context, demo: dict[str, int]) -> None:
    found = call(ctx, "messages.search", {"query": "thanks!", "match": "exact"})["messages"]
    assert [m.text for m in found] == ["Thanks!"]
    assert call(ctx, "messages.search", {"query": "cabin", "chat_id": demo["sms"]}) == {
        "messages": []}
    with pytest.raises(InvalidParams, match="limit must be an integer between 1 and 100"):
        call(ctx, "messages.search", {"query": "x", "limit": 101})
    with pytest.raises(InvalidParams, match="match must be contains or exact"):
        call(ctx, "messages.search", {"query": "x", "match": "regex"})
    with pytest.raises(InvalidParams, match="query is required"):
        call(ctx, "messages.search", {"query": "  "})


def test_unread_stats_and_scheduled(ctx: Context, demo: dict[str, int], schema: str) -> None:
    unread = call(ctx, "chats.list", {"unreadOnly": True})["chats"]
    assert all(chat.unread_count for chat in unread)
    stats = call(ctx, "messages.stats", {"chat_id": demo["trip"], "time_zone": "UTC"})
    assert stats.total_messages > 0 and [c.chat_id for c in stats.chats] == [demo["trip"]]
    with pytest.raises(ChatNotFound):
        call(ctx, "messages.stats", {"chat_id": 999})
    with pytest.raises(InvalidInput):
        call(ctx, "messages.stats", {"time_zone": "Mars/Olympus"})
    if schema == "tahoe":
        assert call(ctx, "messages.scheduled", {"limit": 5}) == {"messages": []}
    else:
        with pytest.raises(InvalidParams, match="no scheduling columns"):
            call(ctx, "messages.scheduled")


def test_subscribe_fixes_the_cursor(ctx: Context, sim: SimDB, demo: dict[str, int]) -> None:
    newest = ctx.db.get().max_rowid()
    specs: list[WatchSpec] = []
    try:
        for params, cursor in [({}, newest), ({"since_rowid": 0}, newest),
                               ({"since_rowid": 5}, 5), ({"since_rowid": -1}, -1)]:
            spec = call(ctx, "watch.subscribe", params)
            specs.append(spec)
            assert spec.watcher.cursor == cursor
        assert specs[0].attachments is False and specs[0].buffer_limit == 256
        specs.append(call(ctx, "watch.subscribe", {"bufferLimit": 4096}))
        assert specs[-1].buffer_limit == 4096
    finally:
        for spec in specs:
            spec.watcher.close()


@pytest.mark.parametrize(("params", "error", "match"), [
    ({"buffer_limit": 0}, InvalidParams, "buffer_limit must be an integer between 1 and 4096"),
    ({"buffer_limit": 4097}, InvalidParams, "buffer_limit must be an integer between 1 and 4096"),
    ({"debounceMs": -5}, InvalidParams, "debounce_ms must be a non-negative integer"),
    ({"buffer_size": 10}, InvalidParams, "unknown watch.subscribe param: buffer_size"),
    ({"since_rowid": -2}, InvalidParams, "since_rowid must be at least -1"),
    ({"chat_id": 999}, ChatNotFound, "Chat not found: 999"),
    ({"start": "soon"}, InvalidDate, "soon"),
])
def test_subscribe_failures(ctx: Context, params: dict[str, Any], error: type[Exception],
                            match: str) -> None:
    with pytest.raises(error, match=match):
        call(ctx, "watch.subscribe", params)


def test_subscribe_to_a_vanished_database(ctx: Context) -> None:
    os.unlink(ctx.db.path)
    with pytest.raises(DatabaseNotFound) as caught:
        call(ctx, "watch.subscribe")
    assert caught.value.rpc_code == -32002


def test_unsubscribe_is_ok_for_any_id(ctx: Context) -> None:
    assert call(ctx, "watch.unsubscribe", {"subscription": 12}) == {"ok": True}
    assert isinstance(ctx.subscriptions, NoSubscriptions)
    assert ctx.subscriptions.cancelled == [12]
    with pytest.raises(InvalidParams, match="subscription is required"):
        call(ctx, "watch.unsubscribe")


@pytest.mark.parametrize(("params", "error", "match"), [
    ({"text": "hi"}, InvalidParams, "to is required"),
    ({"to": "+15555550123", "chat_guid": "x", "text": "hi"}, InvalidParams, "not both"),
    ({"chat_id": 1}, InvalidParams, "text or file is required"),
    ({"chat_id": 1, "text": "hi", "transport": "carrier-pigeon"}, InvalidParams,
     "invalid transport"),
    ({"chat_id": 1, "text": "hi", "service": "iMessage"}, InvalidParams, "invalid service"),
    ({"chat_id": 1, "text": "hi", "reply_to": "GUID"}, InvalidParams,
     "reply_to requires bridge transport"),
    ({"chat_id": 1, "text": "hi", "replyTo": "GUID"}, InvalidParams,
     "reply_to requires bridge transport"),
    ({"chat_id": 1, "text": "hi", "attempt_id": "x"}, InvalidParams,
     "attempt_id is only supported by send.tracked"),
    ({"chat_id": 1, "text": "hi", "allowSMSFallback": "no"}, InvalidParams,
     "allow_sms_fallback must be a boolean"),
    ({"to": "no such thing", "text": "hi"}, InvalidTarget, "no such thing"),
])
def test_send_refuses_before_sending(ctx: Context, params: dict[str, object],
                                     error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call(ctx, "send", params)


def test_status_and_initialize(ctx: Context) -> None:
    info = call(ctx, "status")
    assert info["protocol_version"] == 1
    assert info["database"]["path"] == ctx.db.path and info["database"]["ready"] is True
    assert info["database"]["features"]["reactions"] is True
    assert info["bridge"]["ready"] is False and "imsg launch" in info["bridge"]["error"]
    assert info["supported_methods"] == supported_methods()
    assert "chats.list" in info["methods"] and "send" in info["methods"]
    assert info["server"]["permissions"] == {"full_disk_access": "granted",
                                             "automation": "unknown"}
    assert call(ctx, "initialize", {"protocol_version": 1})["methods"] == info["methods"]
    with pytest.raises(InvalidParams, match="unsupported protocol_version 2; supported version "
                                            "is 1"):
        call(ctx, "initialize", {"protocol_version": 2})
    with pytest.raises(InvalidParams, match="unknown status param: x"):
        call(ctx, "status", {"x": 1})


def test_status_without_a_database_drops_the_methods_that_need_it(tmp_path: Any) -> None:
    ctx = Context(Database(str(tmp_path / "missing.db")), NoSubscriptions())
    info = call(ctx, "status")
    assert info["database"]["ready"] is False and "does not exist" in info["database"]["error"]
    assert "chats.list" not in info["methods"] and "send" not in info["methods"]
    assert {"initialize", "status", "watch.unsubscribe"} <= set(info["methods"])
