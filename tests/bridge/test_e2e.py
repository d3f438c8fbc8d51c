"""End to end, as users run it: ``imsg sim bridge`` in its own process, the CLI and ``imsg
rpc`` as child processes, chat.db read back with ``imsg history``; and OpenClaw's probe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from imsg.bridge.report import UNRESPONSIVE
from imsg.sim.demo import ALICE
from tests.bridge.conftest import World, make_world, wait_for
from tests.rpc.harness import Rpc

BIN = Path(sys.executable).parent
IMSG = [str(BIN / "imsg")] if (BIN / "imsg").exists() else [sys.executable, "-m", "imsg"]


@dataclass
class Live:
    world: World
    env: dict[str, str]
    helper: subprocess.Popen[bytes] | None = None

    def imsg(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*IMSG, *args], capture_output=True, text=True, env=self.env,
                              timeout=60)
        if check:
            assert done.returncode == 0, done.stderr
        return done

    def last_json(self, *args: str) -> dict[str, Any]:
        """What OpenClaw reads: the last stdout line that parses as a JSON object."""
        out = self.imsg(*args, "--json", "--db", self.world.db_path).stdout
        objects = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        return objects[-1]  # type: ignore[no-any-return]

    def history(self, chat: str = "alice", limit: int = 1) -> list[dict[str, Any]]:
        out = self.imsg("history", "--chat-id", str(self.world.chats[chat]), "--limit",
                        str(limit), "--json", "--db", self.world.db_path).stdout
        return [json.loads(line) for line in out.splitlines()]

    def start_helper(self, failure: str = "", *extra: str) -> None:
        env = {**self.env, "IMSG_SIM_BRIDGE_FAIL": failure}
        self.helper = subprocess.Popen(
            [*IMSG, "sim", "bridge", self.world.db_path, "--container",
             str(self.world.container.root), "--interval", "0.02", *extra],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.world.container.is_ready)

    def stop_helper(self) -> None:
        if self.helper is not None:
            self.helper.terminate()
            self.helper.wait(10)
            self.helper = None


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    world = make_world(tmp_path)
    dylib = tmp_path / "imsg-bridge-helper.dylib"
    dylib.write_text("placeholder")
    env = {**os.environ, "IMSG_BRIDGE_CONTAINER": str(world.container.root),
           "IMSG_CSRUTIL": str(BIN / "imsg-sim-csrutil"), "IMSG_BRIDGE_DYLIB": str(dylib)}
    made = Live(world, env)
    yield made
    made.stop_helper()


def openclaw_private_api(live: Live) -> tuple[bool, dict[str, Any]]:
    done = live.imsg("status", "--json", check=False)
    objects = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    status = objects[-1]
    available = (done.returncode == 0 and status.get("advanced_features") is True
                 and status.get("v2_ready") is True)
    return available, status


# --- OpenClaw's probe -------------------------------------------------------------------------

def test_probe_available_with_the_simulated_helper(live: Live) -> None:
    live.start_helper()
    available, status = openclaw_private_api(live)
    assert available
    assert list(status) == ["version", "basic_features", "advanced_features",
                            "typing_indicators", "read_receipts", "sip", "message",
                            "bridge_version", "v2_ready", "helper_version", "selectors",
                            "rpc_methods", "capabilities"]
    assert status["message"] == "Connected to Messages.app. IMCore features available."
    assert status["sip"] == "disabled" and status["bridge_version"] == 2
    assert {"send.tracked", "tapback", "typing"} <= set(status["rpc_methods"])
    text = live.imsg("status").stdout
    assert "  Available - IMCore bridge connected\n  bridge version: v2 (v2 inbox active)" in text
    assert "    sendReaction: ✓" in text and "Watch with events: imsg watch --bb-events" in text


def test_probe_unavailable_without_a_dylib(live: Live, tmp_path: Path) -> None:
    live.env.update(IMSG_BRIDGE_DYLIB=str(tmp_path / "missing.dylib"), IMSG_SIM_SIP="enabled")
    available, status = openclaw_private_api(live)
    assert not available
    assert status["message"].startswith(
        f"imsg-bridge-helper.dylib not found. Searched:\n- {tmp_path / 'missing.dylib'}\n")
    assert status["message"].endswith("- Full Disk Access granted to Terminal")
    assert (status["advanced_features"], status["sip"], status["bridge_version"],
            status["v2_ready"], status["selectors"]) == (False, "enabled", 0, False, {})
    assert "send.tracked" not in status["rpc_methods"]
    assert "helper_version" not in status
    assert status["capabilities"] == {"engine": {"version": status["version"],
                                                 "commit": "unknown", "built_at": "unknown"},
                                      "features": {}}
    assert "  Not available" in live.imsg("status").stdout


def test_probe_reports_an_unresponsive_helper(live: Live) -> None:
    live.start_helper("unresponsive:status")
    live.env["IMSG_BRIDGE_TIMEOUT"] = "0.5"
    available, status = openclaw_private_api(live)
    assert not available and status["message"] == UNRESPONSIVE
    assert "Unavailable - IMCore bridge is not responding" in live.imsg("status").stdout
    live.stop_helper()  # the helper's lock goes with it: SIP off, dylib there, not injected
    available, status = openclaw_private_api(live)
    assert not available and status["message"].startswith(
        "SIP is disabled and the helper dylib is present, but Messages.app is not currently "
        "injected.")


def test_send_rich_help_advertises_file(live: Live) -> None:
    done = live.imsg("send-rich", "--help")
    assert " --file " in done.stdout


# --- the CLI ----------------------------------------------------------------------------------

def test_cli_bridge_commands(live: Live, tmp_path: Path) -> None:
    live.start_helper()
    parent = live.history(limit=3)[-1]
    chat = live.world.alice_guid
    reply = live.last_json("send-rich", "--chat", chat, "--text", "on it", "--reply-to",
                           parent["guid"], "--effect", "impact")
    assert reply["success"] is True
    row = live.history()[0]
    assert row["guid"] == reply["messageGuid"] and row["thread_originator_guid"] == \
        parent["guid"] and row["reply_to_text"] == parent["text"]
    tap = live.last_json("tapback", "--chat", chat, "--message", parent["guid"], "--kind",
                         "laugh", "--part", "0")
    assert tap == {"success": True, "messageGuid": tap["messageGuid"], "reaction": "laugh"}
    reactions = next(m for m in live.history(limit=5) if m["guid"] == parent["guid"])[
        "reactions"]
    assert [r["type"] for r in reactions if r["is_from_me"]][-1] == "laugh"
    live.last_json("edit", "--chat", chat, "--message", reply["messageGuid"], "--new-text",
                   "on it!", "--part", "0")
    edited = live.history()[0]
    assert edited["text"] == "on it!" and "edited_at" in edited
    live.last_json("unsend", "--chat", chat, "--message", reply["messageGuid"])
    assert "retracted_at" in live.history()[0]
    assert live.imsg("typing", "--to", ALICE, "--duration", "0.05s").stdout == \
        "typing: shown for 0.05s\n"
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8jpeg")
    sent = live.last_json("send-attachment", "--chat", chat, "--file", str(photo),
                          "--transport", "dylib")
    assert sent["transport"] == "bridge" and sent["guid"] == live.history()[0]["guid"]
    trip = live.history("trip")[0]["chat_guid"]
    live.last_json("chat-name", "--chat", trip, "--name", "Cabin")
    live.last_json("chat-add-member", "--chat", trip, "--address", "+15555550199")
    group = json.loads(live.imsg("group", "--chat-id", str(live.world.chats["trip"]),
                                 "--json", "--db", live.world.db_path).stdout)
    assert group["name"] == "Cabin" and "+15555550199" in group["participants"]
    react = live.last_json("react", "--chat-id", str(live.world.chats["alice"]), "-r", "like")
    assert react["transport"] == "bridge" and react["reaction_type"] == "like"
    shared = live.last_json("name-photo", "share", "--chat", chat)
    assert shared["success"] is True and shared["requested"] is True


def test_cli_failures_print_what_openclaw_reads(live: Live) -> None:
    live.start_helper("error:send-reaction")
    done = live.imsg("tapback", "--chat", live.world.alice_guid, "--message", "G", "--kind",
                     "love", "--json", "--db", live.world.db_path, check=False)
    assert done.returncode != 0
    last = json.loads(done.stdout.splitlines()[-1])
    assert last["success"] is False and last["error"] == "simulated failure of send-reaction"
    assert last["disposition"] == "may_have_completed" and last["retry_safe"] is False
    assert "simulated failure of send-reaction" in done.stderr


def test_cli_refuses_to_launch_with_sip_on(live: Live) -> None:
    live.env["IMSG_SIM_SIP"] = "enabled"
    done = live.imsg("launch", "--json", check=False)
    assert done.returncode == 33
    assert json.loads(done.stdout) == {
        "status": "error", "error": "sip_enabled",
        "message": json.loads(done.stdout)["message"]}
    assert json.loads(done.stdout)["message"].startswith("System Integrity Protection (SIP) "
                                                         "is enabled.")
    tapback = live.imsg("tapback", "--chat", "c", "--message", "m", "--kind", "like",
                        check=False)
    assert tapback.returncode == 33 and "System Integrity Protection" in tapback.stderr


def test_local_introspection(live: Live) -> None:
    accounts = live.last_json("account", "--local")
    assert accounts["source"] == "local" and accounts["accounts"][0]["login"] == \
        "E:me@icloud.com"
    assert live.last_json("whois", "--address", "(555) 555-0123", "--local") == {
        "address": "(555) 555-0123", "service": "imessage", "known": True, "source": "local"}
    assert live.last_json("whois", "--address", "nobody@x.y", "--local")["known"] is False
    nickname = live.last_json("nickname", "--address", ALICE, "--local")
    assert nickname == {"address": ALICE, "found": False, "source": "local-addressbook",
                        "contacts_unavailable": True}


def test_watch_interleaves_bridge_events(live: Live) -> None:
    live.start_helper()
    watch = subprocess.Popen([*IMSG, "watch", "--bb-events", "--json", "--db",
                              live.world.db_path], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, env=live.env)
    try:
        time.sleep(0.5)  # the watch has opened the event log at its end
        live.imsg("typing", "--to", ALICE)
        assert watch.stdout is not None
        line = json.loads(watch.stdout.readline())
        assert line == {"kind": "bridge-event", "event": "started-typing", "ts": line["ts"],
                        "data": {"chatGuid": live.world.alice_guid}}
    finally:
        watch.terminate()
        watch.wait(10)


# --- imsg rpc ---------------------------------------------------------------------------------

def test_rpc_bridge_session(live: Live) -> None:
    live.start_helper()
    rpc = Rpc("--db", live.world.db_path, env=live.env)
    try:
        status = rpc.call("initialize", {"protocol_version": 1})["result"]
        assert status["bridge"]["ready"] is True
        assert {"tapback", "send.rich", "bridge.events.subscribe"} <= set(status["methods"])
        parent = live.history(limit=3)[-1]["guid"]
        sent = rpc.call("send", {"to": ALICE, "text": "threaded", "reply_to": parent}, rid=2)
        assert sent["result"]["transport"] == "bridge"
        row = live.history()[0]
        assert row["guid"] == sent["result"]["message_id"]
        assert row["thread_originator_guid"] == parent and row["reply_to_text"]
        sub = rpc.call("bridge.events.subscribe", {}, rid=3)["result"]
        assert sub["resumable"] is False
        rpc.call("typing", {"to": ALICE}, rid=4)
        event = rpc.recv()
        assert event["method"] == "bridge.event"
        assert event["params"]["subscription"] == sub["subscription"]
        assert event["params"]["event"]["event"] == "started-typing"
        tap = rpc.call("tapback", {"chat_guid": live.world.alice_guid, "message_id": parent,
                                   "reaction": "love"}, rid=5)
        assert tap["result"] == {"ok": True, "reaction": "love"}
        assert rpc.call("watch.unsubscribe", {"subscription": sub["subscription"]},
                        rid=6)["result"] == {"ok": True}
        assert rpc.finish()[0] == 0
    finally:
        rpc.kill()


def test_rpc_outcome_unknown_blocks_the_lane_until_settled(live: Live) -> None:
    live.start_helper("unresponsive:send-message")
    live.env["IMSG_BRIDGE_TIMEOUT"] = "0.5"
    rpc = Rpc("--db", live.world.db_path, env=live.env)
    try:
        first = rpc.call("send.rich", {"chat_guid": live.world.alice_guid, "text": "x"})
        assert first["error"]["code"] == -32001
        assert first["error"]["data"]["disposition"] == "still_in_flight"
        assert first["error"]["data"]["operation"] == "send-message"
        blocked = rpc.call("typing", {"to": ALICE}, rid=2)
        assert blocked["error"]["code"] == -32004
        assert blocked["error"]["data"]["detail"] == (
            "A prior send-message remains in flight. Restart the RPC child before sending "
            "another mutation.")
        assert "result" in rpc.call("chats.list", {"limit": 1}, rid=3)
        inbox = live.world.container.inbox
        for name in os.listdir(inbox):  # the helper gave up on it: nothing can complete now
            os.unlink(inbox / name)
        assert rpc.call("typing", {"to": ALICE}, rid=4)["result"] == {"ok": True}
        assert rpc.finish()[0] == 0
    finally:
        rpc.kill()


def test_rpc_without_a_helper(live: Live) -> None:
    rpc = Rpc("--db", live.world.db_path, env=live.env)
    try:
        status = rpc.call("status")["result"]
        assert status["bridge"] == {
            "ready": False, "error": "The bridge is not started. Run imsg launch explicitly "
                                     "before using bridge methods."}
        assert "tapback" not in status["methods"] and "tapback" in status["supported_methods"]
        tap = rpc.call("tapback", {"chat_guid": "c", "message_id": "m", "reaction": "like"},
                       rid=2)
        assert tap["error"]["code"] == -32603
        assert tap["error"]["message"] == "Delivery failed before dispatch"
        assert tap["error"]["data"]["retry_safe"] is True
        events = rpc.call("bridge.events.subscribe", {}, rid=3)
        assert events["error"]["code"] == -32003
        assert events["error"]["message"] == "Bridge events unavailable"
        check = rpc.call("handles.check", {"address": ALICE}, rid=4)
        assert check["error"] == {"code": -32603, "message": "Internal error", "data":
                                  "handles.check requires bridge transport (Messages.app "
                                  "must be injected)"}
        assert rpc.finish()[0] == 0
    finally:
        rpc.kill()


def test_rpc_send_falls_back_only_to_what_provably_never_ran(live: Live) -> None:
    """A ready lock but no helper scanning: the bridge request is withdrawn unclaimed
    (not_started), the text goes out through AppleScript once, and the withdrawn request
    never runs when a helper starts later."""
    live.world.container.ready_lock.write_text("1")
    live.env.update(IMSG_BRIDGE_TIMEOUT="0.5", IMSG_OSASCRIPT=str(BIN / "imsg-sim-osascript"),
                    IMSG_SIM_DB=live.world.db_path)
    rpc = Rpc("--db", live.world.db_path, env=live.env)
    try:
        sent = rpc.call("send", {"to": ALICE, "text": "exactly once"})["result"]
        assert sent["transport"] == "applescript"
        assert rpc.finish()[0] == 0
    finally:
        rpc.kill()
    live.world.container.ready_lock.unlink()
    live.start_helper()
    live.imsg("typing", "--to", ALICE, "--stop")  # the helper has scanned its inbox since
    texts = [m["text"] for m in live.history(limit=10)]
    assert texts.count("exactly once") == 1
