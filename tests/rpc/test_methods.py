"""The handlers as plain functions over the reader: no JSON, no process."""

from __future__ import annotations

import os

import msgspec
import pytest

from imsg.chatdb.reader import ChatDB
from imsg.errors import ChatNotFound, DatabaseNotFound, InvalidDate, InvalidInput, InvalidTarget
from imsg.rpc.errors import InvalidParams
from imsg.rpc.methods import (
    METHODS,
    Context,
    RpcChat,
    WatchSpec,
    chats_get,
    chats_list,
    messages_history,
    messages_search,
    send,
    status,
    watch_subscribe,
    watch_unsubscribe,
)
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
def ctx(reader: ChatDB, demo: dict[str, int]) -> Context:
    return Context(reader, NoSubscriptions())


def test_chats_list_is_the_small_rpc_shape(ctx: Context, demo: dict[str, int]) -> None:
    chats = chats_list(ctx, Params({}))["chats"]
    assert [c.id for c in chats] == [demo["trip"], demo["sms"], demo["alice"]]
    assert all(type(c) is RpcChat for c in chats)
    assert list(msgspec.to_builtins(chats[0])) == [
        "id", "identifier", "guid", "name", "service", "last_message_at", "participants",
        "is_group"]
    assert len(chats_list(ctx, Params({"limit": "1"}))["chats"]) == 1


def test_chats_get_and_unknown_chat(ctx: Context, demo: dict[str, int]) -> None:
    chat = chats_get(ctx, Params({"chat_id": demo["trip"]}))["chat"]
    assert chat.name == "Weekend Trip" and chat.is_group
    with pytest.raises(ChatNotFound):
        chats_get(ctx, Params({"chat_id": 999}))
    assert METHODS["group"].handler is chats_get


def test_history_attachments_only_when_asked(ctx: Context, demo: dict[str, int]) -> None:
    params = {"chat_id": demo["alice"], "limit": 1}
    [plain] = messages_history(ctx, Params(params))["messages"]
    [full] = messages_history(ctx, Params({**params, "attachments": "true"}))["messages"]
    assert plain.id == full.id and plain.attachments == [] and full.attachments


def test_history_reactions_filters_and_failures(ctx: Context, demo: dict[str, int]) -> None:
    messages = messages_history(ctx, Params({"chat_id": demo["trip"]}))["messages"]
    assert any(m.reactions for m in messages)
    only_bob = messages_history(ctx, Params({"chat_id": demo["trip"],
                                             "participants": "bob@example.com"}))["messages"]
    assert only_bob and {m.sender for m in only_bob} == {"bob@example.com"}
    with pytest.raises(InvalidParams, match="chat_id is required"):
        messages_history(ctx, Params({}))
    with pytest.raises(InvalidDate):
        messages_history(ctx, Params({"chat_id": demo["trip"], "end": "tomorrow"}))
    with pytest.raises(ChatNotFound):
        messages_history(ctx, Params({"chat_id": 404}))
    with pytest.raises(InvalidInput, match="before"):
        messages_history(ctx, Params({"chat_id": demo["trip"], "start": "2026-02-02T00:00:00Z",
                                      "end": "2026-02-01T00:00:00Z"}))


def test_search(ctx: Context, demo: dict[str, int]) -> None:
    found = messages_search(ctx, Params({"query": "thanks!", "match": "exact"}))["messages"]
    assert [m.text for m in found] == ["Thanks!"]
    assert messages_search(ctx, Params({"query": "cabin", "chat_id": demo["sms"]})) == {
        "messages": []}


def test_subscribe_fixes_the_cursor(ctx: Context, sim: SimDB, demo: dict[str, int]) -> None:
    newest = ctx.db.max_rowid()
    specs: list[WatchSpec] = []
    try:
        for params, cursor in [({}, newest), ({"since_rowid": 0}, newest),
                               ({"since_rowid": "5"}, 5), ({"since_rowid": -1}, -1)]:
            spec = watch_subscribe(ctx, Params(params))
            specs.append(spec)
            assert spec.watcher.cursor == cursor
        assert specs[0].attachments is False and specs[0].buffer_size == 1024
    finally:
        for spec in specs:
            spec.watcher.close()


def test_subscribe_failures(ctx: Context) -> None:
    with pytest.raises(InvalidParams, match="buffer_size must be at least 1"):
        watch_subscribe(ctx, Params({"buffer_size": 0}))
    with pytest.raises(ChatNotFound):
        watch_subscribe(ctx, Params({"chat_id": 999}))
    with pytest.raises(InvalidParams, match="debounce_ms must be at least 0"):
        watch_subscribe(ctx, Params({"debounceMs": -5}))
    with pytest.raises(InvalidDate):
        watch_subscribe(ctx, Params({"start": "soon"}))


def test_subscribe_to_a_vanished_database(ctx: Context) -> None:
    os.unlink(ctx.db.path)
    with pytest.raises(DatabaseNotFound):
        watch_subscribe(ctx, Params({}))


def test_unsubscribe_is_ok_for_any_id(ctx: Context) -> None:
    assert watch_unsubscribe(ctx, Params({"subscription": "12"})) == {"ok": True}
    assert isinstance(ctx.subscriptions, NoSubscriptions)
    assert ctx.subscriptions.cancelled == [12]


@pytest.mark.parametrize(("params", "error", "match"), [
    ({"text": "hi"}, InvalidParams, "to is required"),
    ({"to": "+15555550123", "chat_guid": "x", "text": "hi"}, InvalidParams, "not both"),
    ({"chat_id": 1}, InvalidParams, "text or file is required"),
    ({"chat_id": 1, "text": "hi", "transport": "bridge"}, InvalidParams, "invalid transport"),
    ({"to": "no such thing", "text": "hi"}, InvalidTarget, "no such thing"),
    ({"chat_id": 0, "text": "hi"}, InvalidTarget, "chat id"),
])
def test_send_refuses_before_sending(ctx: Context, params: dict[str, object],
                                     error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        send(ctx, Params(params))


def test_status(ctx: Context) -> None:
    info = status(ctx, Params({}))
    assert info["db_path"] == ctx.db.path and info["subscriptions"] == 0
    assert info["schema_profile"] == ctx.db.schema.profile
    assert info["permissions"] == {"full_disk_access": "granted", "automation": "unknown"}
    assert info["rpc_methods"] == sorted(METHODS)
