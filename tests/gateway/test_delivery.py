"""Outbound delivery against a scripted child: chunks, prefix, files, echo records, and which
failures are retried (never one whose outcome is unknown)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imsg.gateway.client import NotSent, RpcError, Unanswered
from imsg.gateway.delivery import Outbox
from imsg.gateway.guards import EchoCache
from imsg.gateway.handlers import Reply
from imsg.gateway.probe import ChildInfo
from tests.gateway.kit import account

BRIDGE = ChildInfo("initialize", methods=frozenset({"send", "typing", "read", "tapback"}),
                   bridge_ready=True)
PLAIN = ChildInfo("initialize", methods=frozenset({"send"}))


class ScriptedChild:
    """``request`` answers from ``script`` (exceptions raised, dicts returned), then ok."""

    def __init__(self, script: list[Any] | None = None) -> None:
        self.script = list(script or [])
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def request(self, method: str, params: dict[str, Any], *,
                      timeout: float | None = None) -> Any:
        self.calls.append((method, dict(params)))
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, BaseException):
                raise step
            return step
        return {"ok": True, "id": len(self.calls), "guid": f"G{len(self.calls)}"}

    @property
    def sends(self) -> list[dict[str, Any]]:
        return [params for method, params in self.calls if method == "send"]


def outbox(tmp_path: Path, child: ScriptedChild, info: ChildInfo = PLAIN,
           restarts: list[str] | None = None, **keys: Any) -> Outbox:
    async def source(_timeout: float) -> tuple[Any, ChildInfo]:
        return child, info

    config = account(tmp_path, allowFrom=["+1"], **keys)
    restart: Callable[[str], None] = (restarts.append if restarts is not None
                                      else lambda _reason: None)
    return Outbox(config, EchoCache(), source, restart=restart, clock=lambda: 100.0,
                  retry_delays=(0.0, 0.0, 0.0))


def deliver(box: Outbox, reply: Reply, target: str = "chat_id:5") -> Any:
    return asyncio.run(box.deliver(target, reply))


def test_response_prefix_is_applied(tmp_path: Path) -> None:
    child = ScriptedChild()
    deliver(outbox(tmp_path, child, responsePrefix="PFX"), Reply("final reply"))
    assert child.sends == [{"chat_id": 5, "text": "PFX final reply"}]


def test_each_chunk_is_one_send_and_echo_is_recorded_after(tmp_path: Path) -> None:
    child = ScriptedChild()
    box = outbox(tmp_path, child, textChunkLimit=10)
    assert not box.echo.is_echo(["chat_id:5"], ids=[], text="aaaa bbbb", now=100.0)
    deliver(box, Reply("aaaa bbbb cccc"))
    assert [s["text"] for s in child.sends] == ["aaaa bbbb", "cccc"]
    assert box.echo.is_echo(["chat_id:5"], ids=[], text="cccc", now=101.0)
    assert box.echo.is_echo(["chat_id:5"], ids=["G2"], text="", now=150.0)


def test_reply_to_goes_on_every_chunk_and_file_with_a_bridge(tmp_path: Path) -> None:
    child = ScriptedChild()
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"x" * 10)
    deliver(outbox(tmp_path, child, BRIDGE, textChunkLimit=5),
            Reply("one two three", (str(photo),), reply_to="PARENT"))
    assert [s.get("reply_to") for s in child.sends] == ["PARENT"] * 3
    assert child.sends[-1] == {"chat_id": 5, "file": str(photo), "text": "three",
                               "reply_to": "PARENT"}


def test_reply_to_is_left_out_silently_without_a_bridge(tmp_path: Path) -> None:
    child = ScriptedChild()
    deliver(outbox(tmp_path, child), Reply("hi", reply_to="PARENT"))
    assert child.sends == [{"chat_id": 5, "text": "hi"}]


def test_reply_to_refused_by_the_child_is_sent_without_it(tmp_path: Path) -> None:
    child = ScriptedChild([RpcError(-32602, "Invalid params", "reply_to requires bridge "
                                                              "transport")])
    deliver(outbox(tmp_path, child, BRIDGE), Reply("hi", reply_to="PARENT"))
    assert child.sends == [{"chat_id": 5, "text": "hi", "reply_to": "PARENT"},
                           {"chat_id": 5, "text": "hi"}]


def test_media_only_send_records_the_file_name(tmp_path: Path) -> None:
    child = ScriptedChild()
    photo = tmp_path / "chart.png"
    photo.write_bytes(b"png")
    box = outbox(tmp_path, child)
    deliver(box, Reply("", (str(photo),)))
    assert child.sends == [{"chat_id": 5, "file": str(photo)}]
    assert box.echo.is_echo(["chat_id:5"], ids=[], text="", file_names=["chart.png"],
                            now=101.0)


def test_file_over_the_cap_is_not_sent_but_the_text_is(tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    child = ScriptedChild()
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (1024 * 1024 + 1))
    deliver(outbox(tmp_path, child, mediaMaxMb=1), Reply("caption", (str(big), "/nope")))
    assert child.sends == [{"chat_id": 5, "text": "caption"}]
    assert "larger than mediaMaxMb (1 MiB)" in caplog.text
    assert "/nope not sent" in caplog.text


def test_scaffolding_is_stripped_before_sending(tmp_path: Path) -> None:
    child = ScriptedChild()
    deliver(outbox(tmp_path, child), Reply("<think>x</think>Hello\nuser: more"))
    assert child.sends == [{"chat_id": 5, "text": "Hello"}]


NOT_STARTED = RpcError(-32603, "Delivery failed before dispatch",
                       {"retry_safe": True, "disposition": "not_started"})
UNKNOWN = RpcError(-32001, "Delivery outcome unknown",
                   {"retry_safe": False, "disposition": "may_have_completed"})


@pytest.mark.parametrize("script,sends,ok", [
    ([NOT_STARTED], 2, True),
    ([RpcError(-32002, "Database unavailable", {"retryable": True})], 2, True),
    ([RpcError(-32000, "Server busy", "outstanding request limit exceeded")], 2, True),
    ([NotSent("not running")], 2, True),
    ([NOT_STARTED] * 4, 4, False),  # bounded
    ([UNKNOWN], 1, False),  # never retried: that is how duplicates happen
    ([Unanswered("imsg rpc exited (code 1)")], 1, False),
    ([RpcError(-32602, "Invalid params", "text or file is required")], 1, False),
])
def test_retry_follows_the_failure(tmp_path: Path, script: list[Any], sends: int,
                                   ok: bool) -> None:
    child = ScriptedChild(script)
    outcomes = deliver(outbox(tmp_path, child), Reply("hi"))
    assert len(child.sends) == sends
    assert outcomes[0].ok is ok


def test_outcome_unknown_is_remembered_for_its_echo(tmp_path: Path) -> None:
    box = outbox(tmp_path, ScriptedChild([UNKNOWN]))
    outcomes = deliver(box, Reply("maybe sent"))
    assert outcomes[0].unknown
    assert box.echo.is_echo(["chat_id:5"], ids=[], text="maybe sent", now=101.0)


def test_blocked_lane_restarts_the_child_then_retries(tmp_path: Path) -> None:
    restarts: list[str] = []
    child = ScriptedChild([RpcError(-32004, "Mutation lane blocked", {"retry_safe": False})])
    outcomes = deliver(outbox(tmp_path, child, restarts=restarts), Reply("hi"))
    assert restarts == ["the child's mutation lane is blocked (-32004)"]
    assert len(child.sends) == 2 and outcomes[0].ok


def test_bad_target_fails_without_sending(tmp_path: Path) -> None:
    child = ScriptedChild()
    outcomes = deliver(outbox(tmp_path, child), Reply("hi"), target="chat_id:abc")
    assert child.calls == [] and not outcomes[0].ok


def test_bridge_calls_only_when_ready_and_listed(tmp_path: Path) -> None:
    child = ScriptedChild()
    assert asyncio.run(outbox(tmp_path, child, BRIDGE).bridge("typing", {"chat_id": 5,
                                                                         "typing": True}))
    assert not asyncio.run(outbox(tmp_path, child, PLAIN).bridge("typing", {"chat_id": 5}))
    assert child.calls == [("typing", {"chat_id": 5, "typing": True})]
