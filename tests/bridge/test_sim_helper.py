"""The simulated helper's own behaviour: failure specs, one owner per container, event log
rotation read across by the tail, the command line."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from imsg.bridge.events import open_tail
from imsg.sim.bridge import Failure, SimHelper
from imsg.sim.demo import ALICE
from tests.bridge.conftest import World, wait_for


def test_failure_specs() -> None:
    assert Failure.parse("") is None
    slow = Failure.parse("slow=0.5:send-message, typing")
    assert slow == Failure("slow", 0.5, frozenset({"send-message", "typing"}))
    assert slow.applies("typing") and not slow.applies("ping")
    every = Failure.parse("malformed")
    assert every is not None and every.applies("ping") and not every.applies("status")
    with pytest.raises(ValueError, match="unknown failure mode 'explode'"):
        Failure.parse("explode")


def test_one_owner_per_container(world: World) -> None:
    first = world.start()
    waiting = SimHelper(world.db_path, world.container.root, interval_s=0.01,
                        exit_on_crash=False)
    stop = threading.Event()
    thread = threading.Thread(target=waiting.serve, args=(stop,), daemon=True)
    thread.start()
    assert world.container.ready_lock.read_text() == str(os.getpid())
    assert waiting._db is None  # still waiting for the owner lock
    world.stop()  # the owner goes: its lock and ready file with it
    wait_for(lambda: waiting._db is not None)
    wait_for(world.container.is_ready)
    assert first._db is None
    stop.set()
    thread.join(10)


def test_event_log_rotation_is_read_across(world: World) -> None:
    helper = world.start()
    helper.rotate_bytes = 300
    tail = open_tail(world.container.events)
    client = world.client()
    seen: list[str] = []
    for i in range(8):  # read between writes: only one previous log is kept
        client.call("typing", {"handle": f"iMessage;-;{ALICE}", "typing": i % 2 == 0})
        seen.extend(e["event"] for e in tail.poll())
    tail.close()
    assert seen == ["started-typing", "stopped-typing"] * 4
    assert world.container.previous_events.exists()


def test_unknown_and_missing_actions(world: World) -> None:
    helper = world.start()
    assert helper._answer({"v": 2, "id": "X", "action": "nope"}, "nope")["error"] == \
        "Unknown action: nope"
    assert helper._answer({"v": 2, "id": "X"}, "")["error"] == "Missing action"


def test_the_command_refuses_a_bad_failure_spec(world: World) -> None:
    done = subprocess.run([sys.executable, "-m", "imsg", "sim", "bridge", world.db_path,
                           "--container", str(world.container.root)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "IMSG_SIM_BRIDGE_FAIL": "explode"})
    assert done.returncode != 0 and "IMSG_SIM_BRIDGE_FAIL" in done.stderr
