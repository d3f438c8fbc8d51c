"""The pipeline with a fake child: ordering and concurrency, the journal and replays, pairing,
debounce, group history, bridge extras, handler failures, clean stops."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from imsg.errors import StateError
from imsg.gateway.runner import Gateway
from imsg.gateway.state import State
from tests.gateway.kit import (
    Fake,
    Recorder,
    fake_config,
    make_fake,
    message,
    run,
    wait_for,
    with_gateway,
)

OWNER = "+15550001111"
STRANGER = "+15559998888"


def iso(seconds_ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - seconds_ago))


async def subscribed(gateway: Gateway) -> None:
    await wait_for(lambda: gateway.accounts["default"].supervisor.subscribed.is_set(),
                   what="a subscription")


def lines(caplog: pytest.LogCaptureFixture, fragment: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if fragment in r.getMessage()]


def start(tmp_path: Path, *modes: dict[str, Any], history: int = 1) -> Fake:
    fake = make_fake(tmp_path, *modes)
    fake.add(*(message(i, f"old {i}") for i in range(1, history + 1)))
    return fake


def store_cursor(state_dir: Path, rowid: int, *, lower: bool = False) -> None:
    """The default account's cursor, as a previous run would have left it."""
    state = State(str(state_dir))
    try:
        state.set_cursor("default", rowid, lower=lower)
    finally:
        state.close()


def test_conversations_run_concurrently_and_each_stays_in_order(tmp_path: Path) -> None:
    fake = start(tmp_path)
    seen: list[tuple[int, str]] = []

    class Slow(Recorder):
        async def __call__(self, envelope: dict[str, Any]) -> Any:
            seen.append((envelope["chat_id"], envelope["text"]))
            if envelope["chat_id"] == 1:
                await asyncio.sleep(0.3)
            return await super().__call__(envelope)

    recorder = Slow()

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        fake.add(message(10, "a1", chat_id=1), message(11, "a2", chat_id=1),
                 message(12, "b1", chat_id=2, sender="+15550003333"))
        await wait_for(lambda: (2, "b1") in seen)
        assert (1, "a2") not in seen  # a1's handler is still running
        await wait_for(lambda: len(seen) == 3)

    run(with_gateway(fake_config(tmp_path, fake), tmp_path / "state", recorder, body))
    assert [text for chat, text in seen if chat == 1] == ["a1", "a2"]


def test_concurrency_is_bounded_and_reading_never_waits(tmp_path: Path) -> None:
    fake = start(tmp_path)
    running = 0
    peak = 0
    release = asyncio.Event()

    class Gate(Recorder):
        async def __call__(self, envelope: dict[str, Any]) -> Any:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await release.wait()
            running -= 1
            return await super().__call__(envelope)

    recorder = Gate()

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        fake.add(*(message(10 + i, f"m{i}", chat_id=10 + i, sender=f"+1555000{1000 + i}")
                   for i in range(5)))
        state = gateway.state
        await wait_for(lambda: state.counts("default").get("pending", 0) == 5,
                       what="all five journaled while handlers wait")
        await wait_for(lambda: running == 2)
        await asyncio.sleep(0.1)
        assert peak == 2
        release.set()
        await wait_for(lambda: len(recorder.envelopes) == 5)

    run(with_gateway(fake_config(tmp_path, fake, maxConcurrent=2), tmp_path / "state",
                     recorder, body))


def test_each_decision_is_one_log_line_with_its_reason_and_no_text(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="imsg.gateway")
    fake = start(tmp_path)
    recorder = Recorder()

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        fake.add(message(10, "secret words"), message(11, "mine", is_from_me=True))
        await wait_for(lambda: bool(lines(caplog, "rowid=11")))

    run(with_gateway(fake_config(tmp_path, fake), tmp_path / "state", recorder, body))
    assert lines(caplog, "rowid=10") == [
        "[default] dispatch rowid=10 chat=1 sender=+15550001111: direct"]
    assert lines(caplog, "rowid=11") == [
        "[default] drop rowid=11 chat=1 sender=+15550001111: from me"]
    assert "secret words" not in caplog.text


def test_messages_that_arrived_while_down_are_handled_once(tmp_path: Path) -> None:
    fake = start(tmp_path)
    recorder = Recorder()
    config = fake_config(tmp_path, fake)
    state_dir = tmp_path / "state"

    async def first(gateway: Gateway) -> None:
        await subscribed(gateway)
        fake.add(message(2, "before the stop"))
        await wait_for(lambda: recorder.texts == ["before the stop"])

    run(with_gateway(config, state_dir, recorder, first))
    fake.add(message(3, "while down 1"), message(4, "while down 2"))

    async def second(gateway: Gateway) -> None:
        await subscribed(gateway)
        await wait_for(lambda: len(recorder.texts) == 3)
        fake.add(message(5, "live again"))
        await wait_for(lambda: len(recorder.texts) == 4)
        await asyncio.sleep(0.1)

    run(with_gateway(config, state_dir, recorder, second))
    assert recorder.texts == ["before the stop", "while down 1", "while down 2", "live again"]
    assert fake.requests("messages.after")[-1]["params"] == {"since_rowid": 2, "limit": 500}


def test_replayed_rows_already_handled_are_not_dispatched_again(tmp_path: Path) -> None:
    fake = start(tmp_path)
    recorder = Recorder()
    config = fake_config(tmp_path, fake)
    state_dir = tmp_path / "state"

    async def first(gateway: Gateway) -> None:
        await subscribed(gateway)
        fake.add(message(2, "once"), message(3, "only once"))
        await wait_for(lambda: len(recorder.texts) == 2)

    run(with_gateway(config, state_dir, recorder, first))
    store_cursor(state_dir, 1, lower=True)  # as if the cursor lagged behind

    async def second(gateway: Gateway) -> None:
        await subscribed(gateway)
        await asyncio.sleep(0.2)

    run(with_gateway(config, state_dir, recorder, second))
    assert recorder.texts == ["once", "only once"]


def test_cursor_never_covers_an_unjournaled_message(tmp_path: Path) -> None:
    """The journal row and the cursor move in one transaction: a crash between them is
    impossible, so everything at or below the cursor is journaled."""
    fake = start(tmp_path)
    recorder = Recorder(delay_s=0.05)

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        fake.add(*(message(10 + i, f"m{i}") for i in range(20)))
        state = gateway.state
        for _ in range(40):
            cursor = state.cursor("default") or 0
            journaled = {r[0] for r in state.conn.execute(
                "SELECT rowid FROM ingress WHERE account = 'default'")}
            assert all(rowid in journaled for rowid in range(10, cursor + 1)), cursor
            await asyncio.sleep(0.01)
        await wait_for(lambda: len(recorder.texts) == 20)

    run(with_gateway(fake_config(tmp_path, fake), tmp_path / "state", recorder, body))


def test_replay_bound_keeps_the_newest_and_reports_the_rest(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="imsg.gateway")
    fake = start(tmp_path)
    config = fake_config(tmp_path, fake, replayMaxRows=3)
    store_cursor(tmp_path / "state", 1)
    fake.add(*(message(2 + i, f"backlog {i}") for i in range(5)))
    recorder = Recorder()

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        await wait_for(lambda: len(recorder.texts) == 3)
        await asyncio.sleep(0.1)

    run(with_gateway(config, tmp_path / "state", recorder, body))
    assert recorder.texts == ["backlog 2", "backlog 3", "backlog 4"]
    assert lines(caplog, "replay:") == [
        "[default] replay: 5 rows arrived while the gateway was away, more than "
        "replayMaxRows=3; the oldest 2 (rowids 2-3) are skipped, not handled"]


def test_backlog_larger_than_a_page_is_read_in_full(tmp_path: Path) -> None:
    """Oldest messages are never lost past the page size (paging is not a limit)."""
    fake = start(tmp_path)
    store_cursor(tmp_path / "state", 1)
    fake.add(*(message(2 + i, f"b{i}", chat_id=100 + i % 7, sender=f"+1555{7000 + i % 7}")
               for i in range(600)))
    recorder = Recorder()

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        await wait_for(lambda: len(recorder.texts) == 600, timeout=30)

    run(with_gateway(fake_config(tmp_path, fake, replayMaxRows=1000), tmp_path / "state",
                     recorder, body))
    pages = fake.requests("messages.after")
    assert [p["params"]["since_rowid"] for p in pages] == [1, 501]
    assert sorted(int(t[1:]) for t in recorder.texts) == list(range(600))


def test_old_rows_after_downtime_and_live_backlog_bombs_are_not_handled(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="imsg.gateway")
    fake = start(tmp_path)
    store_cursor(tmp_path / "state", 1)
    fake.add(message(2, "three hours old", created_at=iso(3 * 3600)),
             message(3, "ten minutes old", created_at=iso(600)))
    recorder = Recorder()

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        await wait_for(lambda: recorder.texts == ["ten minutes old"])
        fake.add(message(4, "iCloud flush from last week", created_at=iso(7 * 86400)),
                 message(5, "fresh"))
        await wait_for(lambda: len(recorder.texts) == 2)

    run(with_gateway(fake_config(tmp_path, fake), tmp_path / "state", recorder, body))
    assert recorder.texts == ["ten minutes old", "fresh"]
    assert lines(caplog, "rowid=2") == [
        "[default] skip rowid=2 chat=1 sender=+15550001111: replay: older than 120 min"]
    assert lines(caplog, "rowid=4") == [
        "[default] suppressed stale inbound backlog rowid=4 chat=1 sender=+15550001111: "
        "created 10080 min before it arrived"]


def test_overflow_resubscribes_without_loss_or_duplicates(tmp_path: Path) -> None:
    fake = start(tmp_path, {"overflow_after": 3})
    recorder = Recorder()

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        fake.add(*(message(10 + i, f"m{i}") for i in range(8)))
        await wait_for(lambda: len(recorder.texts) == 8)
        await asyncio.sleep(0.2)

    run(with_gateway(fake_config(tmp_path, fake), tmp_path / "state", recorder, body))
    assert recorder.texts == [f"m{i}" for i in range(8)]
    # The same child: the cursor went back to the resume point, the rest came by catch-up.
    assert fake.starts == 1 and len(fake.requests("watch.subscribe")) == 2
    assert fake.requests("messages.after")[1]["params"]["since_rowid"] == 11


def test_skipped_and_malformed_rows_are_journaled_and_passed(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="imsg.gateway")
    fake = start(tmp_path, {"skip": [11]})
    recorder = Recorder()

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        fake.add(message(10, "good"), message(11, "never joined"),
                 {**message(12, "bad"), "text": 42}, message(13, "good again"))
        await wait_for(lambda: len(recorder.texts) == 2)
        assert gateway.state.cursor("default") == 13

    run(with_gateway(fake_config(tmp_path, fake), tmp_path / "state", recorder, body))
    assert recorder.texts == ["good", "good again"]
    assert lines(caplog, "rowid=11") == ["[default] skip rowid=11 guid=GUID-11: never joined "
                                         "a chat"]
    assert lines(caplog, "rowid=12") == ["[default] drop rowid=12: malformed message payload "
                                         "(text must be a string)"]


# --- pairing ---------------------------------------------------------------------------------

PAIRING = {"dmPolicy": "pairing", "allowFrom": [OWNER]}


def test_pairing_code_is_sent_once_and_approval_lets_the_next_message_through(
        tmp_path: Path) -> None:
    fake = start(tmp_path)
    recorder = Recorder(reply=lambda env: "welcome")

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        fake.add(message(10, "hello?", sender=STRANGER, chat_id=7))
        await wait_for(lambda: len(fake.sends()) == 1)
        fake.add(message(11, "hello??", sender=STRANGER, chat_id=7))
        await wait_for(lambda: gateway.state.counts("default").get("done") == 2)
        assert len(fake.sends()) == 1  # one reply per request
        code = gateway.state.pairing_requests("default")[0].code
        State(str(tmp_path / "state")).approve(code)  # as `imsg pairing approve` would
        fake.add(message(12, "now?", sender=STRANGER, chat_id=7))
        await wait_for(lambda: recorder.texts == ["now?"])
        await wait_for(lambda: len(fake.sends()) == 2)

    run(with_gateway(fake_config(tmp_path, fake, **PAIRING), tmp_path / "state", recorder,
                     body))
    pairing_text = fake.sends()[0]["text"]
    assert fake.sends()[0]["chat_id"] == 7
    assert f"Your iMessage sender id: {STRANGER}" in pairing_text
    assert "Pairing code: " in pairing_text and "imsg pairing approve " in pairing_text
    assert fake.sends()[1] == {"chat_id": 7, "text": "welcome"}


def test_pairing_reply_off_keeps_the_bot_silent(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="imsg.gateway")
    fake = start(tmp_path)

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        fake.add(message(10, "who's there", sender=STRANGER))
        await wait_for(lambda: bool(gateway.state.pairing_requests("default")))
        await asyncio.sleep(0.1)

    run(with_gateway(fake_config(tmp_path, fake, pairingReply=False, **PAIRING),
                     tmp_path / "state", Recorder(), body))
    assert fake.sends() == []
    assert lines(caplog, "pairingReply is off, no reply")


def test_at_most_three_pending_and_the_fourth_stranger_gets_nothing(tmp_path: Path) -> None:
    fake = start(tmp_path)

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        fake.add(*(message(10 + i, "hi", sender=f"+1555999000{i}", chat_id=20 + i)
                   for i in range(4)))
        await wait_for(lambda: gateway.state.counts("default").get("done", 0) == 4)

    run(with_gateway(fake_config(tmp_path, fake, **PAIRING), tmp_path / "state", Recorder(),
                     body))
    assert [s["chat_id"] for s in fake.sends()] == [20, 21, 22]


def test_store_read_error_retries_instead_of_challenging_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = start(tmp_path)
    recorder = Recorder()
    failures = {"left": 2}
    original = State.approved

    def flaky(self: State, account: str) -> frozenset[str]:
        if failures["left"]:
            failures["left"] -= 1
            raise StateError("state database: reading approvals failed: disk I/O error")
        return original(self, account)

    monkeypatch.setattr(State, "approved", flaky)
    monkeypatch.setattr("imsg.gateway.pipeline.STATE_RETRY_S", (0.01,))

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        gateway.state.conn.execute("INSERT INTO approvals VALUES ('default', ?, 'X', 0)",
                                   (STRANGER,))
        fake.add(message(10, "I was approved", sender=STRANGER))
        await wait_for(lambda: recorder.texts == ["I was approved"])

    run(with_gateway(fake_config(tmp_path, fake, **PAIRING), tmp_path / "state", recorder,
                     body))
    assert fake.sends() == []  # no pairing challenge went out
    assert failures["left"] == 0


# --- debounce, history, echoes ------------------------------------------------------------

def test_debounce_joins_a_senders_quick_texts(tmp_path: Path) -> None:
    fake = start(tmp_path)
    recorder = Recorder()

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        fake.add(message(10, "wait"), message(11, "one more"), message(12, "/cmd"))
        await wait_for(lambda: len(recorder.texts) == 2)

    run(with_gateway(fake_config(tmp_path, fake, debounceMs=150), tmp_path / "state",
                     recorder, body))
    assert recorder.texts == ["wait\none more", "/cmd"]


def test_group_history_reaches_the_next_dispatch_then_clears(tmp_path: Path) -> None:
    fake = start(tmp_path)
    recorder = Recorder(reply=lambda env: "noted")
    group = {"groupAllowFrom": [OWNER, "+15550002222"], "mentionPatterns": ["@bot"]}

    def say(rowid: int, text: str, sender: str = OWNER) -> dict[str, Any]:
        return message(rowid, text, sender=sender, chat_id=42, is_group=True)

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        fake.add(say(10, "lunch?", "+15550002222"), say(11, "sure"), say(12, "@bot book it"))
        await wait_for(lambda: len(recorder.envelopes) == 1)
        fake.add(say(13, "@bot thanks"))
        await wait_for(lambda: len(recorder.envelopes) == 2)

    run(with_gateway(fake_config(tmp_path, fake, **group), tmp_path / "state", recorder,
                     body))
    first, second = recorder.envelopes
    assert [h["body"] for h in first["history"]] == ["lunch?", "sure"]
    assert second["history"] == []
    assert fake.sends()[0] == {"chat_id": 42, "text": "noted"}


def test_own_replies_and_their_echo_twins_are_never_dispatched(tmp_path: Path) -> None:
    fake = start(tmp_path, {"echo_sends": "twin"})
    recorder = Recorder(reply=lambda env: f"re: {env['text']}")

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        fake.add(message(10, "ping"))
        await wait_for(lambda: len(fake.sends()) == 1)
        await wait_for(lambda: gateway.state.counts("default").get("done", 0) == 3)

    run(with_gateway(fake_config(tmp_path, fake), tmp_path / "state", recorder, body))
    assert recorder.texts == ["ping"]


def test_a_busy_chat_is_not_muted_by_its_owners_own_messages(tmp_path: Path) -> None:
    """The loop breaker counts only proven echoes, never plain from-me rows."""
    fake = start(tmp_path)
    recorder = Recorder()

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        rows = []
        for i in range(8):
            rows += [message(10 + 2 * i, f"me {i}", is_from_me=True),
                     message(11 + 2 * i, f"them {i}")]
        fake.add(*rows)
        await wait_for(lambda: len(recorder.texts) == 8)

    run(with_gateway(fake_config(tmp_path, fake), tmp_path / "state", recorder, body))


# --- bridge extras, handler failures, stopping ---------------------------------------------

def test_bridge_features_are_used_when_advertised(tmp_path: Path) -> None:
    fake = start(tmp_path, {"bridge": True})
    recorder = Recorder(reply=lambda env: {"replies": [{"text": "threaded", "reply_to": True}],
                                           "react": "like"})

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        fake.add(message(10, "question"))
        await wait_for(lambda: bool(fake.requests("tapback")))
        await wait_for(lambda: len(fake.requests("typing")) == 2)

    run(with_gateway(fake_config(tmp_path, fake), tmp_path / "state", recorder, body))
    chat = {"chat_guid": "iMessage;-;+15550001111"}
    assert fake.requests("read")[0]["params"] == chat
    assert [r["params"] for r in fake.requests("typing")] == [{**chat, "typing": True},
                                                              {**chat, "typing": False}]
    assert fake.sends() == [{"chat_id": 1, "text": "threaded", "reply_to": "GUID-10"}]
    assert fake.requests("tapback")[0]["params"] == {**chat, "message_guid": "GUID-10",
                                                     "kind": "like"}


def test_without_a_bridge_the_extras_degrade_silently(tmp_path: Path) -> None:
    fake = start(tmp_path)
    recorder = Recorder(reply=lambda env: {"replies": [{"text": "plain", "reply_to": True}],
                                           "react": "like"})

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        fake.add(message(10, "question"))
        await wait_for(lambda: len(fake.sends()) == 1)
        await asyncio.sleep(0.1)

    run(with_gateway(fake_config(tmp_path, fake, sendReadReceipts=True), tmp_path / "state",
                     recorder, body))
    assert fake.sends() == [{"chat_id": 1, "text": "plain"}]
    assert not fake.requests("typing") and not fake.requests("read") \
        and not fake.requests("tapback")


def test_read_receipts_can_be_turned_off(tmp_path: Path) -> None:
    fake = start(tmp_path, {"bridge": True})
    recorder = Recorder()

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        fake.add(message(10, "question"))
        await wait_for(lambda: len(fake.requests("typing")) == 2)

    run(with_gateway(fake_config(tmp_path, fake, sendReadReceipts=False), tmp_path / "state",
                     recorder, body))
    assert not fake.requests("read")


def test_handler_failure_sends_nothing_and_moves_on(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    fake = start(tmp_path)

    def reply(envelope: dict[str, Any]) -> Any:
        return {"replies": "not a list"} if envelope["text"] == "boom" else "fine"

    recorder = Recorder(reply=reply)

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        fake.add(message(10, "boom"), message(11, "next"))
        await wait_for(lambda: len(fake.sends()) == 1)

    run(with_gateway(fake_config(tmp_path, fake), tmp_path / "state", recorder, body))
    assert fake.sends() == [{"chat_id": 1, "text": "fine"}]
    assert lines(caplog, "handler failed") == [
        "[default] handler failed for rowid=10: answer.replies must be a list"]


def test_clean_stop_finishes_running_handlers_and_keeps_the_rest(tmp_path: Path) -> None:
    fake = start(tmp_path)
    recorder = Recorder(reply=lambda env: f"done {env['text']}", delay_s=0.3)
    config = fake_config(tmp_path, fake)
    state_dir = tmp_path / "state"

    async def first(gateway: Gateway) -> None:
        await subscribed(gateway)
        fake.add(message(10, "a"), message(11, "b"), message(12, "c"))
        await wait_for(lambda: len(recorder.envelopes) == 1)

    run(with_gateway(config, state_dir, recorder, first))
    assert recorder.texts == ["a"] and fake.sends() == [{"chat_id": 1, "text": "done a"}]
    assert State(str(state_dir)).counts("default").get("pending") == 2

    async def second(gateway: Gateway) -> None:
        await wait_for(lambda: len(recorder.envelopes) == 3)
        await wait_for(lambda: len(fake.sends()) == 3)

    run(with_gateway(config, state_dir, recorder, second))
    assert recorder.texts == ["a", "b", "c"]


def test_memory_is_bounded_and_the_journal_holds_the_rest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("imsg.gateway.pipeline.MAX_QUEUED", 6)
    monkeypatch.setattr("imsg.gateway.pipeline.REFILL_BELOW", 3)
    fake = start(tmp_path)
    recorder = Recorder(delay_s=0.01)
    peak = 0

    async def body(gateway: Gateway) -> None:
        nonlocal peak
        pipeline = gateway.accounts["default"].pipeline
        await subscribed(gateway)
        fake.add(*(message(10 + i, f"{i % 3}:{i}", chat_id=1 + i % 3,
                           sender=f"+1555000{1000 + i % 3}") for i in range(60)))
        while len(recorder.envelopes) < 60:
            peak = max(peak, pipeline.queued)
            await asyncio.sleep(0.001)

    run(with_gateway(fake_config(tmp_path, fake, maxConcurrent=1), tmp_path / "state",
                     recorder, body))
    assert peak <= 6
    assert sorted(recorder.texts) == sorted(f"{i % 3}:{i}" for i in range(60))
    for chat in range(3):  # each conversation still in order
        mine = [int(t.split(":")[1]) for t in recorder.texts if t.startswith(f"{chat}:")]
        assert mine == sorted(mine)


def test_age_counts_from_arrival_not_from_a_late_turn(tmp_path: Path) -> None:
    """A fresh row waiting behind a slow handler is never taken for a stale backlog."""
    fake = start(tmp_path)
    clock = {"skew": 0.0}
    recorder = Recorder()

    async def body(gateway: Gateway) -> None:
        pipeline = gateway.accounts["default"].pipeline
        pipeline.clock = lambda: time.time() + clock["skew"]
        await subscribed(gateway)
        blocker = asyncio.Event()
        original = pipeline.handler

        async def slow(envelope: dict[str, Any]) -> Any:
            if envelope["text"] == "first":
                await blocker.wait()
            assert original is not None
            return await original(envelope)

        pipeline.handler = slow
        fake.add(message(10, "first"), message(11, "second"))
        await wait_for(lambda: gateway.state.counts("default").get("pending") == 2)
        clock["skew"] = 3600.0  # both arrived; an hour passes while the first is handled
        blocker.set()
        await wait_for(lambda: recorder.texts == ["first", "second"])

    run(with_gateway(fake_config(tmp_path, fake), tmp_path / "state", recorder, body))


def test_without_messages_after_the_watch_replay_is_the_catch_up(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A child that cannot page (no messages.after) replays through watch.subscribe; the
    replay is still bounded and handled once."""
    caplog.set_level(logging.INFO, logger="imsg.gateway")
    fake = start(tmp_path, {"after": False})
    store_cursor(tmp_path / "state", 1)
    fake.add(*(message(2 + i, f"while down {i}") for i in range(5)))
    recorder = Recorder()

    async def body(gateway: Gateway) -> None:
        await subscribed(gateway)
        await wait_for(lambda: len(recorder.texts) == 3)
        fake.add(message(10, "live"))
        await wait_for(lambda: len(recorder.texts) == 4)

    run(with_gateway(fake_config(tmp_path, fake, replayMaxRows=3), tmp_path / "state",
                     recorder, body))
    assert recorder.texts == ["while down 2", "while down 3", "while down 4", "live"]
    assert not fake.requests("messages.after")
    assert fake.requests("watch.subscribe")[0]["params"]["since_rowid"] == 1
    assert lines(caplog, "replay: 5 rows")


def test_a_live_backlog_is_never_cut_by_the_replay_bound(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows that arrived while the gateway ran (waiting in the journal behind a slow handler)
    are not downtime replays: a child restart does not skip them."""
    monkeypatch.setattr("imsg.gateway.pipeline.MAX_QUEUED", 4)
    monkeypatch.setattr("imsg.gateway.pipeline.REFILL_BELOW", 2)
    fake = start(tmp_path)
    recorder = Recorder(delay_s=0.02)

    async def body(gateway: Gateway) -> None:
        supervisor = gateway.accounts["default"].supervisor
        await subscribed(gateway)
        fake.add(*(message(10 + i, f"m{i}") for i in range(20)))
        await wait_for(lambda: gateway.state.cursor("default") == 29)
        assert supervisor.client is not None
        supervisor.client.kill()
        await wait_for(lambda: len(recorder.texts) == 20)

    run(with_gateway(fake_config(tmp_path, fake, replayMaxRows=3, maxConcurrent=1),
                     tmp_path / "state", recorder, body))
    assert recorder.texts == [f"m{i}" for i in range(20)]
    assert fake.starts == 2
