"""The client against the simulated helper: answers, and every failure classified as the
Swift tool classifies it, without a request ever running twice."""

from __future__ import annotations

import os
import threading
import time

import pytest

from imsg.bridge.actions import deadline_s, is_mutation, probe_deadline_s
from imsg.bridge.client import cancel_all
from imsg.bridge.probe import probe
from imsg.errors import (
    BridgeError,
    BridgeNoAnswer,
    BridgeNotReady,
    BridgeUnavailable,
    DeliveryUnknown,
    SendError,
    SendInterrupted,
)
from tests.bridge.conftest import World, wait_for

SHORT_S = 0.3


def count_rows(world: World) -> int:
    sim = world.sim()
    try:
        return int(sim.conn.execute("SELECT COUNT(*) FROM message").fetchone()[0])
    finally:
        sim.close()


def send(world: World, text: str = "hi", timeout: float | None = None) -> dict[str, object]:
    return world.client().call("send-message", {"chatGuid": world.alice_guid, "message": text},
                               timeout_s=timeout)


def test_answers_and_the_probe(world: World) -> None:
    world.start()
    client = world.client()
    assert client.call("ping") == {"pong": True}
    before = count_rows(world)
    data = send(world)
    assert isinstance(data["messageGuid"], str) and data["chatGuid"] == world.alice_guid
    assert count_rows(world) == before + 1
    status = probe(client)
    assert status.ready and status.bridge_version == 2 and status.helper_version
    assert status.selector("sendReaction") and status.client_message_guid
    assert os.listdir(world.container.inbox) == os.listdir(world.container.outbox) == []


def test_without_a_ready_lock_nothing_is_written(world: World) -> None:
    client = world.client()
    with pytest.raises(BridgeNotReady) as err:
        client.call("send-message", {"chatGuid": "x", "message": "y"})
    assert err.value.rpc_data["retry_safe"] is True and err.value.rpc_code == -32603
    assert err.value.rpc_data["operation"] == "send-message"
    with pytest.raises(BridgeUnavailable):
        client.call("status")
    assert not world.container.rpc.exists()


def test_never_ready_helper(world: World) -> None:
    world.start("never-ready", ready=False)
    time.sleep(0.05)
    with pytest.raises(BridgeNotReady):
        send(world)


def test_an_unclaimed_request_is_withdrawn_and_never_runs_later(world: World) -> None:
    world.container.ready_lock.write_text("1")  # a stale lock: nobody scans the inbox
    before = count_rows(world)
    with pytest.raises(DeliveryUnknown) as err:
        send(world, timeout=SHORT_S)
    assert err.value.disposition == "not_started" and err.value.retry_safe
    assert err.value.rpc_code == -32603
    assert os.listdir(world.container.inbox) == []
    world.container.ready_lock.unlink()
    world.start()
    world.client().call("ping")  # the helper has scanned since
    assert count_rows(world) == before


def test_unresponsive_after_claiming_is_still_in_flight(world: World) -> None:
    world.start("unresponsive")
    before = count_rows(world)
    with pytest.raises(DeliveryUnknown) as err:
        send(world, timeout=SHORT_S)
    failure = err.value
    assert (failure.disposition, failure.rpc_code, failure.retry_safe) == (
        "still_in_flight", -32001, False)
    assert failure.rpc_data["transport"] == "bridge_v2"
    assert failure.settled is not None and not failure.settled()
    claims = [n for n in os.listdir(world.container.inbox) if ".processing." in n]
    assert len(claims) == 1
    os.unlink(world.container.inbox / claims[0])  # the helper finished with it
    assert failure.settled()
    assert count_rows(world) == before


def test_a_slow_answer_settles_the_request_and_is_discarded(world: World) -> None:
    world.start("slow=0.6:send-message")
    with pytest.raises(DeliveryUnknown) as err:
        send(world, timeout=0.2)
    assert err.value.disposition == "still_in_flight"
    settled = err.value.settled
    assert settled is not None
    wait_for(settled)
    assert os.listdir(world.container.outbox) == []
    data = send(world, timeout=5)  # long enough: the same slow helper answers
    assert data["messageGuid"]


def test_a_crash_leaves_an_orphan_claim(world: World) -> None:
    helper = world.start("crash:send-message")
    with pytest.raises(DeliveryUnknown) as err:
        send(world, timeout=SHORT_S)
    assert err.value.disposition == "still_in_flight"
    assert helper.crashed
    settled = err.value.settled
    assert settled is not None and settled()  # the claim's PID is dead
    world.stop()
    assert world.container.is_ready()  # a crashed helper leaves its lock behind
    world.container.ready_lock.unlink()
    world.start()
    assert not [n for n in os.listdir(world.container.inbox) if ".processing." in n]


@pytest.mark.parametrize("mode", ["malformed", "wrong-id"])
def test_unusable_answers_may_have_completed(world: World, mode: str) -> None:
    world.start(mode)
    with pytest.raises(DeliveryUnknown) as err:
        send(world)
    assert (err.value.disposition, err.value.rpc_code) == ("may_have_completed", -32001)
    with pytest.raises(BridgeError, match="invalid response"):
        world.client().call("ping")


def test_a_refusal_is_a_delivery_error_with_the_helpers_text(world: World) -> None:
    world.start("error:send-message")
    with pytest.raises(SendError, match="simulated failure of send-message") as err:
        send(world)
    assert err.value.disposition == "may_have_completed"
    with pytest.raises(SendError, match="Chat not found"):
        world.client().call("set-display-name", {"chatGuid": "iMessage;+;nope", "newName": "x"})
    with pytest.raises(BridgeError, match="Unknown action: frobnicate"):
        world.client().call("frobnicate", mutation=False)


def test_a_symlinked_inbox_is_never_published_to(world: World) -> None:
    world.start("symlink-inbox")
    with pytest.raises(SendError, match="symbolic link") as err:
        send(world)
    assert err.value.disposition == "not_started" and err.value.retry_safe
    with pytest.raises(BridgeError, match="symbolic link"):
        world.client().call("ping")
    assert os.listdir(world.container.rpc / "in-real") == []


def test_cancelling_reclaims(world: World) -> None:
    world.start("unresponsive")
    errors: list[Exception] = []

    def call() -> None:
        try:
            send(world, timeout=30)
        except Exception as exc:
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    wait_for(lambda: any(".processing." in n for n in os.listdir(world.container.inbox)))
    cancel_all()
    worker.join(10)
    assert isinstance(errors[0], SendInterrupted)
    assert errors[0].disposition == "still_in_flight"


def test_legacy_ipc(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMSG_BRIDGE_LEGACY_IPC", "true")
    world.start()
    client = world.client()
    assert client.transport == "bridge_legacy"
    assert client.call("ping") == {"pong": True}
    assert send(world)["messageGuid"]
    assert not world.container.rpc.joinpath("in").exists() or os.listdir(
        world.container.inbox) == []
    world.stop()
    world.container.ready_lock.write_text("1")
    with pytest.raises(DeliveryUnknown) as err:
        send(world, timeout=SHORT_S)
    assert err.value.disposition == "still_in_flight"
    assert err.value.rpc_data["transport"] == "bridge_legacy"


def test_no_answer_to_a_read_is_its_own_error(world: World) -> None:
    world.start("unresponsive:status")
    with pytest.raises(BridgeNoAnswer):
        world.client().call("status", timeout_s=SHORT_S, mutation=False)


def test_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    assert deadline_s("send-message") == 150 and deadline_s("typing") == 10
    assert probe_deadline_s() == 3
    assert is_mutation("send-reaction") and is_mutation("typing")
    assert not is_mutation("status") and not is_mutation("check-imessage-availability")
    monkeypatch.setenv("IMSG_BRIDGE_TIMEOUT", "0.5")
    assert deadline_s("send-message") == deadline_s("ping") == probe_deadline_s() == 0.5
    monkeypatch.setenv("IMSG_BRIDGE_TIMEOUT", "nan")
    assert deadline_s("ping") == 10
