"""Strict parameters (protocol v1): every misuse and the exact InvalidParams text it gets."""

from __future__ import annotations

import pytest

from imsg.rpc.catalog import BY_NAME
from imsg.rpc.errors import InvalidParams
from imsg.rpc.params import Params, chat_selector, target_or_chat

ACCEPTED = {"limit": (), "unread_only": ("unreadOnly",), "names": (), "parts": (), "flag": (),
            "text": ()}


def params(raw: object) -> Params:
    return Params("chats.list", raw, ACCEPTED)


@pytest.mark.parametrize(("raw", "data"), [
    ([], "params must be an object when present"),
    ([1], "params must be an object when present"),
    (None, "params must be an object when present"),
    ("x", "params must be an object when present"),
    ({"bogus": 1, "also": 2}, "unknown chats.list param: also"),
    ({"chatId": 1}, "unknown chats.list param: chatId"),
    ({"unread_only": True, "unreadOnly": True}, "use only one of unread_only, unreadOnly"),
    ({"limit": None}, "limit must not be null"),
])
def test_the_object_is_checked_before_any_getter(raw: object, data: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        params(raw)
    assert caught.value.data == data


@pytest.mark.parametrize("value", [True, 1.0, 4.5, "4", "", [1], 2**63, -(2**63) - 1])
def test_integers_are_json_integers_only(value: object) -> None:
    with pytest.raises(InvalidParams, match=r"^limit must be an integer$"):
        params({"limit": value}).integer("limit")


def test_integer_ranges_in_the_swift_words() -> None:
    assert params({"limit": 2**63 - 1}).integer("limit") == 2**63 - 1
    with pytest.raises(InvalidParams, match=r"^limit must be a positive integer$"):
        params({"limit": 0}).integer("limit", minimum=1)
    with pytest.raises(InvalidParams, match=r"^limit must be a non-negative integer$"):
        params({"limit": -1}).integer("limit", minimum=0)
    with pytest.raises(InvalidParams, match=r"^limit must be an integer between 1 and 500$"):
        params({"limit": 501}).integer("limit", minimum=1, maximum=500)
    with pytest.raises(InvalidParams, match=r"^limit is required$"):
        params({}).require_integer("limit")


@pytest.mark.parametrize("value", ["true", 1, 0, "false"])
def test_booleans_are_true_or_false_only(value: object) -> None:
    with pytest.raises(InvalidParams, match=r"^unread_only must be a boolean$"):
        params({"unreadOnly": value}).boolean("unread_only")


def test_aliases_are_read_under_the_canonical_name() -> None:
    assert params({"unreadOnly": True}).boolean("unread_only") is True
    assert params({}).boolean("unread_only") is False


def test_strings_arrays_and_objects() -> None:
    assert params({"names": ["a", " b ", ""]}).strings("names") == ["a", "b"]
    for bad in ["a,b", ["a", 1], [None]]:
        with pytest.raises(InvalidParams, match=r"^names must be an array of strings$"):
            params({"names": bad}).strings("names")
    assert params({"parts": [{"text": "x"}]}).objects("parts") == [{"text": "x"}]
    with pytest.raises(InvalidParams, match=r"^parts must be an array of objects$"):
        params({"parts": [1]}).objects("parts")
    with pytest.raises(InvalidParams, match=r"^text must be a string$"):
        params({"text": 5}).string("text")
    with pytest.raises(InvalidParams, match=r"^text must not contain NUL characters$"):
        params({"text": "a\x00b"}).string("text")


SEND = BY_NAME["send"].params


@pytest.mark.parametrize(("raw", "data"), [
    ({}, "to is required, or exactly one of chat_id, chat_identifier, or chat_guid is required"),
    ({"chat_id": 1, "chat_guid": "g"},
     "exactly one of chat_id, chat_identifier, or chat_guid is required"),
    ({"chat_id": 0}, "chat_id must be a positive integer"),
    ({"chat_id": -4}, "chat_id must be a positive integer"),
    ({"chat_identifier": " "}, "chat_identifier must be a non-empty string"),
    ({"chat_guid": ""}, "chat_guid must be a non-empty string"),
    ({"to": "+15555550123", "chat_id": 3}, "use to or exactly one chat selector; not both"),
    ({"to": ""}, "to must be a non-empty string"),
])
def test_targets_and_chat_selectors(raw: dict[str, object], data: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        target_or_chat(Params("send", raw, SEND))
    assert caught.value.data == data


def test_a_chat_selector_is_returned_typed() -> None:
    selector = chat_selector(Params("send", {"chat_guid": "iMessage;-;x"}, SEND))
    assert selector is not None and (selector.kind, selector.value) == ("chat_guid", "iMessage;-;x")
    assert chat_selector(Params("send", {}, SEND), required=False) is None
