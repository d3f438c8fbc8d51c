"""Fuzzing the framing of a live ``imsg rpc``: random bytes, deep nesting, huge numbers,
invalid UTF-8, lone surrogates. The process never dies, every line that calls for an answer
gets exactly one well-formed answer, and stdout stays valid JSON lines.

How many answers a line calls for comes from ``protocol.parse`` (whose classification the
unit tests pin); what is checked here is the process: it answers, in shape, and survives.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imsg.rpc import protocol
from tests.rpc.harness import Rpc, demo_db, sim_env

_ids = itertools.count()
METHODS = ["chats.list", "chats.get", "group", "messages.history", "messages.search", "status",
           "watch.unsubscribe", "nope", ""]


@pytest.fixture(scope="module")
def rpc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rpc]:
    db = demo_db(tmp_path_factory.mktemp("fuzz") / "chat.db")
    server = Rpc("--db", db, env=sim_env(db))
    yield server
    try:
        code, rest = server.finish()
        assert code == 0 and rest == []
    finally:
        server.kill()


def answers_due(line: bytes) -> int:
    if not line.strip():
        return 0
    frame = protocol.parse(line.rstrip(b"\r"))
    due = [item for item in frame.items
           if isinstance(item, protocol.Rejected) or not item.is_notification]
    return 1 if due and frame.is_batch else len(due)


def well_formed(answer: Any) -> bool:
    if not (isinstance(answer, dict) and answer.get("jsonrpc") == "2.0" and "id" in answer):
        return False
    if "result" in answer:
        return "error" not in answer
    error = answer.get("error")
    return isinstance(error, dict) and isinstance(error.get("code"), int) and \
        isinstance(error.get("message"), str) and -32700 <= error["code"] <= -32600


def exchange(rpc: Rpc, line: bytes) -> list[Any]:
    """Send ``line``; its answers (checked well-formed), then a sentinel round trip."""
    line = line.replace(b"\n", b" ")
    rpc.write(line + b"\n")
    answers = [rpc.recv() for _ in range(answers_due(line))]
    for answer in answers:
        batch = answer if isinstance(answer, list) else [answer]
        assert batch and all(well_formed(a) for a in batch), answer
    sentinel = f"sentinel-{next(_ids)}"
    rpc.write(json.dumps({"jsonrpc": "2.0", "id": sentinel, "method": "status"}).encode() + b"\n")
    assert rpc.recv()["id"] == sentinel
    assert rpc.proc.poll() is None
    return answers


FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers(min_value=-10**40, max_value=10**40)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
           | st.sampled_from(["\ud800", "\udfff x", "\ud83d\ude00"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=12)
requests = st.fixed_dictionaries(
    {}, optional={"jsonrpc": st.sampled_from(["2.0", "1.0", 2]) | values,
                  "id": scalars | values, "method": st.sampled_from(METHODS) | values,
                  "params": st.fixed_dictionaries({}, optional={
                      "chat_id": scalars, "limit": scalars, "query": scalars,
                      "subscription": scalars, "start": scalars, "participants": values})
                  | values})


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(rpc: Rpc, line: bytes) -> None:
    exchange(rpc, line)


@FUZZ
@given(st.text(max_size=100))
def test_text_with_lone_surrogates_as_raw_bytes(rpc: Rpc, text: str) -> None:
    exchange(rpc, text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.lists(requests, min_size=1, max_size=4), st.booleans())
def test_request_shaped_lines(rpc: Rpc, batch: list[dict[str, Any]], as_batch: bool) -> None:
    value: Any = batch if as_batch else batch[0]
    answers = exchange(rpc, json.dumps(value).encode())
    rid = value.get("id") if isinstance(value, dict) else None
    if answers and isinstance(rid, str | int | float) and not isinstance(rid, bool):
        assert answers[0]["id"] == json.loads(json.dumps(rid))  # "\ud83d\ude00" is one 😀


@FUZZ
@given(st.integers(min_value=1, max_value=300_000), st.sampled_from([b"[", b'{"a":']))
def test_deep_nesting(rpc: Rpc, depth: int, opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    exchange(rpc, opener * depth + b"0" + closer * depth)


@FUZZ
@given(st.integers(min_value=1, max_value=20_000), st.sampled_from(["id", "limit"]),
       st.sampled_from(["", "-", "0.", "1e"]))
def test_huge_numbers(rpc: Rpc, digits: int, where: str, prefix: str) -> None:
    number = prefix + "9" * digits
    line = ('{"jsonrpc":"2.0","id":' + (number if where == "id" else "1") +
            ',"method":"chats.list","params":{"limit":' + (number if where == "limit" else "1")
            + "}}")
    exchange(rpc, line.encode())


def test_fuzzed_process_still_serves(rpc: Rpc) -> None:
    assert rpc.call("chats.list", {"limit": 1}, rid="last")["result"]["chats"][0]["id"] == 3


def test_answers_due() -> None:
    assert [answers_due(b) for b in (b"", b"  ", b"{", b"[]", b"[1,2]",
                                     b'{"jsonrpc":"2.0","method":"x"}',
                                     b'[{"jsonrpc":"2.0","method":"x"}]')] == [0, 0, 1, 1, 1, 0, 0]
