"""Echo cache, self-chat cache, loop breaker, reflection guard, payload validation."""

from __future__ import annotations

from typing import Any

import pytest

from imsg.gateway.guards import (
    EchoCache,
    LoopBreaker,
    SelfChatCache,
    reflection_marker,
)
from imsg.gateway.inbound import MalformedMessage, parse_message, strip_length_prefix
from tests.gateway.kit import message

# --- echo cache ---------------------------------------------------------------------------


def test_echo_ids_and_texts_have_their_own_ttls() -> None:
    cache = EchoCache()
    cache.remember("s", text="hello", ids=["G1", 5], now=100.0)
    assert cache.is_echo(["s"], ids=["G1"], text="", now=159.0)
    assert not cache.is_echo(["s"], ids=["G1"], text="", now=161.0)
    assert cache.is_echo(["s"], ids=[], text="hello", now=104.0)
    assert not cache.is_echo(["s"], ids=[], text="hello", now=104.5)


def test_echo_placeholder_ids_are_never_stored() -> None:
    cache = EchoCache()
    cache.remember("s", ids=["ok", "unknown", "", None], now=0.0)
    assert not cache.is_echo(["s"], ids=["ok", "unknown"], text="", now=1.0)


def test_echo_text_is_normalized() -> None:
    cache = EchoCache()
    cache.remember("s", text="  line one\r\nline two \n", now=0.0)
    assert cache.is_echo(["s"], ids=[], text="line one\nline two", now=1.0)


def test_each_remembered_text_absorbs_one_echo() -> None:
    cache = EchoCache()
    cache.remember("s", text="ok!", now=0.0)
    assert cache.is_echo(["s"], ids=[], text="ok!", now=1.0)
    cache.absorb(["s"], ids=[], text="ok!", now=1.0)
    assert not cache.is_echo(["s"], ids=[], text="ok!", now=1.5)


def test_two_sends_of_the_same_text_absorb_two_echoes() -> None:
    cache = EchoCache()
    cache.remember("s", text="ok!", now=0.0)
    cache.remember("s", text="ok!", now=0.1)
    for _ in range(2):
        assert cache.is_echo(["s"], ids=[], text="ok!", now=1.0)
        cache.absorb(["s"], ids=[], text="ok!", now=1.0)
    assert not cache.is_echo(["s"], ids=[], text="ok!", now=1.0)


def test_long_texts_differing_in_the_middle_do_not_collide() -> None:
    cache = EchoCache()
    cache.remember("s", text="a" * 500 + "X" + "a" * 500, now=0.0)
    assert not cache.is_echo(["s"], ids=[], text="a" * 500 + "Y" + "a" * 500, now=1.0)


def test_echo_cache_memory_is_bounded() -> None:
    cache = EchoCache()
    for index in range(20_000):
        cache.remember(f"scope{index}", text=f"t{index}", ids=[index], now=float(index))
    assert len(cache._ids) <= 4096 and len(cache._texts) <= 4096


# --- self-chat cache ----------------------------------------------------------------------

def test_self_chat_cache_ttl_and_cap() -> None:
    cache = SelfChatCache(ttl_s=10.0, max_entries=3)
    keys = [cache.key("scope", "2027-01-01T00:00:00Z", f"text {i}") for i in range(4)]
    for key in keys:
        cache.remember(key, now=0.0)
    assert not cache.seen(keys[0], now=1.0)  # evicted by the cap
    assert cache.seen(keys[3], now=10.0)
    assert not cache.seen(keys[3], now=10.5)


def test_self_chat_keys_differ_by_scope_time_and_text() -> None:
    key = SelfChatCache.key
    base = key("a", "t1", "hello")
    assert base == key("a", "t1", " hello\r\n")
    assert len({base, key("b", "t1", "hello"), key("a", "t2", "hello"),
                key("a", "t1", "hellO")}) == 4


# --- loop breaker -------------------------------------------------------------------------

def test_loop_breaker_threshold_window_and_isolation() -> None:
    breaker = LoopBreaker(threshold=5, window_s=60.0)
    for second in range(4):
        breaker.record("dm:a", float(second))
    assert not breaker.tripped("dm:a", 4.0)
    breaker.record("dm:a", 4.0)
    assert breaker.tripped("dm:a", 10.0)
    assert not breaker.tripped("dm:b", 10.0)
    assert not breaker.tripped("dm:a", 61.0)  # the window passed: it resets


# --- reflection guard ---------------------------------------------------------------------

@pytest.mark.parametrize("text,marker", [
    ("a #+#+#+ b", "separator"),
    ("assistant to=functions.run {}", "assistant to="),
    ("<think>x</think>", "thinking tag"),
    ("<thinking>", "thinking tag"),
    ("<thought>", "thinking tag"),
    ("<antthinking>", "thinking tag"),
    ("<relevant_memories>", "memory tag"),
    ("<relevant-memories>", "memory tag"),
    ("<final>", "final tag"),
    ("<final answer>", "final tag"),
])
def test_reflection_markers(text: str, marker: str) -> None:
    assert reflection_marker(text) == marker


@pytest.mark.parametrize("text", [
    "plain words", "a <thought experiment", "`<thinking>` in code",
    "```\n<final>\n```", "use # + # + separators", "the assistant said to go",
])
def test_reflection_markers_absent(text: str) -> None:
    assert reflection_marker(text) is None


# --- length-prefix stripping --------------------------------------------------------------

@pytest.mark.parametrize("wrapped,plain", [
    (b"\n\x05hello", "hello"),
    (b"\n!" + b"!" * 33, "!" * 33),  # a printable length byte (0x21)
    (b"\n\xc8\x01" + b"x" * 200, "x" * 200),  # a two-byte varint
    (b"\n\x06h\xc3\xa9llo", "h\u00e9llo"),  # the length counts bytes, not characters
])
def test_length_prefix_removed(wrapped: bytes, plain: str) -> None:
    # As a reader hands such text over: undecodable bytes as surrogate escapes.
    assert strip_length_prefix(wrapped.decode("utf-8", "surrogateescape")) == plain


@pytest.mark.parametrize("text", [
    "\nhello",  # looks like a prefix but the length does not match
    "\x0bhello",  # wrong tag
    "\n\x09hello",  # length mismatch
    "hello",  # no tag
    "",
    "\n\x05",  # a length with nothing after it
])
def test_length_prefix_lookalikes_unchanged(text: str) -> None:
    assert strip_length_prefix(text) == text


# --- payload validation -------------------------------------------------------------------

@pytest.mark.parametrize("field,value,error", [
    ("id", "12", "id must be an integer"),
    ("id", True, "id must be an integer"),
    ("text", 5, "text must be a string"),
    ("is_from_me", "false", "is_from_me must be a boolean"),
    ("participants", "a,b", "participants must be an array of strings"),
    ("attachments", [1], "attachments must be an array of objects"),
    ("attachments", [{"missing": "no"}], "attachments[].missing must be a boolean"),
    ("chat_id", 1.5, "chat_id must be an integer"),
])
def test_malformed_payloads_rejected(field: str, value: Any, error: str) -> None:
    payload = message(1)
    payload[field] = value
    with pytest.raises(MalformedMessage, match=error.replace("[", r"\[").replace("]", r"\]")):
        parse_message(payload)


def test_payload_without_id_rejected() -> None:
    payload = message(1)
    del payload["id"]
    with pytest.raises(MalformedMessage, match="id is required"):
        parse_message(payload)


def test_unknown_fields_kept_and_destination_preserved() -> None:
    parsed = parse_message({**message(3), "brand_new_key": {"x": 1}})
    assert parsed.raw["brand_new_key"] == {"x": 1}
    assert parsed.destination_caller_id == "me@icloud.com"
    assert parsed.resume_rowid == 3
    assert parse_message({**message(3), "cursor": 9}).resume_rowid == 9
