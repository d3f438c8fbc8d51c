"""End to end against the real ``imsg rpc`` on a simulated chat.db, with the simulated
Messages (``imsg-sim-osascript``) taking the gateway's replies."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imsg.chatdb.reader import ChatDB
from imsg.gateway.config import GatewayConfig, load_config
from imsg.gateway.runner import Gateway
from imsg.sim.messages import SimDB
from imsg.sim.traffic import echo_twin, icloud_backlog, sms_conversation, unflagged_outgoing
from tests.gateway.kit import FAST, Recorder, run, wait_for, with_gateway, write_config
from tests.rpc.harness import sim_env

IMSG = str(Path(sys.executable).with_name("imsg"))
ALICE = "+15555550123"
STRANGER = "+15555550177"
BOB = "bob@example.com"


@pytest.fixture(scope="session")
def pycache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A bytecode cache for the children (this machine sets PYTHONDONTWRITEBYTECODE), so each
    of the many `imsg rpc` starts does not compile imsg again."""
    return str(tmp_path_factory.mktemp("pycache"))


@pytest.fixture
def world(tmp_path: Path, pycache: str) -> Iterator[dict[str, Any]]:
    db = str(tmp_path / "chat.db")
    sim = SimDB.create(db, "ventura")
    alice = sim.chat([ALICE])
    sim.receive(alice, ALICE, "an old message, never handled")
    env = {**sim_env(db), "PYTHONPYCACHEPREFIX": pycache}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    yield {"db": db, "sim": sim, "alice": alice, "env": env, "tmp": tmp_path}
    sim.close()


def config(world: dict[str, Any], **keys: Any) -> GatewayConfig:
    section = {"cliPath": IMSG, "dbPath": world["db"], "allowFrom": [ALICE], **FAST,
               "probeTimeoutMs": 10_000, **keys}
    return load_config(str(write_config(world["tmp"] / "gateway.toml", section)))


def outgoing(db: str, chat_id: int) -> list[str]:
    with ChatDB(db) as reader:
        return [m.text for m in reversed(reader.history(chat_id, limit=200)) if m.is_from_me]


def service_of(db: str, chat_id: int) -> str:
    with ChatDB(db) as reader:
        return next(c.service for c in reader.chats(limit=100) if c.id == chat_id)


async def ready(gateway: Gateway) -> None:
    await wait_for(lambda: gateway.accounts["default"].supervisor.subscribed.is_set(),
                   timeout=20, what="a subscription")
    await asyncio.sleep(0.6)  # the watch's replay window (no messages.after) has closed


def test_e2e_pairing_approve_then_handler_reply_lands_in_the_chat(
        world: dict[str, Any]) -> None:
    sim, db = world["sim"], world["db"]
    recorder = Recorder(reply=lambda env: f"hello {env['sender']}, you said: {env['text']}")
    state_dir = world["tmp"] / "state"
    cfg = config(world, dmPolicy="pairing")

    async def body(gateway: Gateway) -> None:
        await ready(gateway)
        chat = sim.chat([STRANGER])
        sim.receive(chat, STRANGER, "hi, is this the bot?")
        await wait_for(lambda: len(outgoing(db, chat)) == 1, timeout=20, what="pairing reply")
        code = gateway.state.pairing_requests("default")[0].code
        assert f"Pairing code: {code}" in outgoing(db, chat)[0]
        approved = subprocess.run(
            [sys.executable, "-m", "imsg", "pairing", "approve", code.lower(), "--state-dir",
             str(state_dir), "--json"], capture_output=True, text=True, env=world["env"])
        assert approved.returncode == 0, approved.stderr
        assert json.loads(approved.stdout)["sender"] == STRANGER
        sim.receive(chat, STRANGER, "what's up")
        await wait_for(lambda: len(outgoing(db, chat)) == 2, timeout=20, what="handler reply")
        assert recorder.texts == ["what's up"]
        assert outgoing(db, chat)[1] == f"hello {STRANGER}, you said: what's up"

    run(with_gateway(cfg, state_dir, recorder, body, env=world["env"]))


def test_e2e_group_mention_gating_and_reply_in_the_group(world: dict[str, Any]) -> None:
    sim, db = world["sim"], world["db"]
    recorder = Recorder(reply=lambda env: "on it")
    cfg = config(world, groupAllowFrom=[ALICE, BOB], mentionPatterns=[r"@bot\b"])

    async def body(gateway: Gateway) -> None:
        await ready(gateway)
        group = sim.chat([ALICE, BOB], name="Weekend Trip")
        sim.receive(group, BOB, "who books the cabin?")
        await wait_for(lambda: gateway.state.counts("default").get("done") == 1, timeout=20)
        assert recorder.envelopes == [] and outgoing(db, group) == []
        sim.receive(group, ALICE, "@bot can you book it?")
        await wait_for(lambda: outgoing(db, group) == ["on it"], timeout=20)
        envelope = recorder.envelopes[0]
        assert envelope["chat_type"] == "group" and envelope["reply_to"] == f"chat_id:{group}"
        assert [h["body"] for h in envelope["history"]] == ["who books the cabin?"]

    run(with_gateway(cfg, world["tmp"] / "state", recorder, body, env=world["env"]))


def test_e2e_own_replies_echo_twins_and_late_corrections_never_dispatched(
        world: dict[str, Any]) -> None:
    sim, db, alice = world["sim"], world["db"], world["alice"]
    recorder = Recorder(reply=lambda env: f"echo: {env['text']}")

    async def body(gateway: Gateway) -> None:
        await ready(gateway)
        sim.receive(alice, ALICE, "ping")
        await wait_for(lambda: outgoing(db, alice) == ["echo: ping"], timeout=20)
        with ChatDB(db) as reader:
            ours = next(m.id for m in reader.history(alice, limit=5) if m.is_from_me)
        echo_twin(sim, ours)  # the twin Messages sometimes writes: is_from_me 0, a new GUID
        sim.receive(alice, ALICE, "pong")
        await wait_for(lambda: outgoing(db, alice) == ["echo: ping", "echo: pong"], timeout=20)
        unflagged_outgoing(sim, alice, "echo: pong")  # ours, not yet marked from me
        await wait_for(lambda: gateway.state.counts("default").get("done") == 6, timeout=20)
        await asyncio.sleep(0.3)

    run(with_gateway(config(world), world["tmp"] / "state", recorder, body,
                     env=world["env"]))
    assert recorder.texts == ["ping", "pong"]
    assert outgoing(db, alice) == ["echo: ping", "echo: pong"]


def test_e2e_sms_sender_is_answered_in_the_sms_chat(world: dict[str, Any]) -> None:
    sim, db = world["sim"], world["db"]
    sms_number = "+15555550199"
    recorder = Recorder(reply=lambda env: "got your text")

    async def body(gateway: Gateway) -> None:
        await ready(gateway)
        chat, _ = sms_conversation(sim, sms_number, ["is this thing on?"])
        await wait_for(lambda: outgoing(db, chat) == ["got your text"], timeout=20)
        assert recorder.envelopes[0]["reply_to"] == f"chat_id:{chat}"
        assert service_of(db, chat) == "SMS"

    run(with_gateway(config(world, allowFrom=[ALICE, sms_number]), world["tmp"] / "state",
                     recorder, body, env=world["env"]))


def test_e2e_icloud_backlog_burst_is_not_dispatched(world: dict[str, Any]) -> None:
    sim, alice = world["sim"], world["alice"]
    recorder = Recorder()

    async def body(gateway: Gateway) -> None:
        await ready(gateway)
        icloud_backlog(sim, alice, 30, age_s=2 * 86400, sender=ALICE)
        sim.receive(alice, ALICE, "a real new message")
        await wait_for(lambda: gateway.state.counts("default").get("skipped") == 30,
                       timeout=20)
        await wait_for(lambda: recorder.texts == ["a real new message"], timeout=20)

    run(with_gateway(config(world), world["tmp"] / "state", recorder, body,
                     env=world["env"]))


class Stream:
    """Writes an incoming message every ``every_s`` in a thread, with its own connection."""

    def __init__(self, db: str, chats: list[tuple[int, str]], every_s: float) -> None:
        self.sim = SimDB(db)
        self.chats = chats
        self.every_s = every_s
        self.written: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        index = 0
        while not self._stop.is_set():
            chat, sender = self.chats[index % len(self.chats)]
            rowid = self.sim.receive(chat, sender, f"stream {index}")
            self.written.append(self.sim.guid_of(rowid))
            index += 1
            time.sleep(self.every_s)

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sim.close()


def test_e2e_100_child_kills_lose_nothing_and_duplicate_nothing(
        world: dict[str, Any]) -> None:
    sim, db = world["sim"], world["db"]
    bob = sim.chat([BOB])
    guids: list[str] = []

    class Record(Recorder):
        async def __call__(self, envelope: dict[str, Any]) -> Any:
            guids.append(envelope["message"]["guid"])
            return await super().__call__(envelope)

    cfg = config(world, allowFrom=[ALICE, BOB], restartInitialMs=5, restartMaxMs=20)
    rng = random.Random(7)

    async def body(gateway: Gateway) -> None:
        supervisor = gateway.accounts["default"].supervisor
        await ready(gateway)
        kills = subscribed_kills = 0
        with Stream(db, [(world["alice"], ALICE), (bob, BOB)], every_s=0.01) as stream:
            while kills < 100:
                # Kill at any moment of the child's life: while it starts, is probed, catches
                # up or subscribes; every fourth kill waits until it streams.
                await wait_for(lambda: supervisor.client is not None, timeout=20)
                if kills % 4 == 0:
                    await wait_for(lambda: supervisor.subscribed.is_set(), timeout=20)
                    await asyncio.sleep(rng.uniform(0, 0.03))
                else:
                    await asyncio.sleep(rng.uniform(0, 0.12))
                client = supervisor.client
                if client is None:
                    continue
                subscribed_kills += supervisor.subscribed.is_set()
                client.kill()
                kills += 1
                await wait_for(lambda killed=client: supervisor.client is not killed,
                               timeout=20)
            stream.stop()
            await wait_for(lambda: len(set(guids)) >= len(stream.written), timeout=30,
                           what=f"all {len(stream.written)} messages")
            await asyncio.sleep(0.3)
            assert len(stream.written) > 300 and subscribed_kills >= 25
            assert sorted(guids) == sorted(stream.written)  # none lost, none twice
        assert supervisor.starts >= 101

    run(with_gateway(cfg, world["tmp"] / "state", Record(), body, env=world["env"]))


def test_e2e_gateway_restart_mid_stream(world: dict[str, Any]) -> None:
    db, tmp = world["db"], world["tmp"]
    log = tmp / "handled.txt"
    (tmp / "e2e_restart_bot.py").write_text(
        "import os\n"
        f"LOG = {str(log)!r}\n"
        "def handle(envelope):\n"
        "    with open(LOG, 'a') as fh:\n"
        "        fh.write(envelope['message']['guid'] + '\\n')\n")
    config(world, handler={"python": "e2e_restart_bot:handle"})
    argv = [sys.executable, "-m", "imsg", "gateway", "run", "--config",
            str(tmp / "gateway.toml"), "--state-dir", str(tmp / "state")]

    def handled() -> list[str]:
        return log.read_text().split() if log.exists() else []

    logs = tmp / "gateway.log"

    def start() -> subprocess.Popen[bytes]:
        with open(logs, "ab") as err:  # a file: an unread pipe would fill up and block it
            return subprocess.Popen(argv, env=world["env"], stderr=err)

    def wait(condition: Any, what: str) -> None:
        deadline = time.monotonic() + 30
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.02)

    gateway = start()
    try:
        wait(lambda: (tmp / "state" / "gateway.sqlite").exists(), "the state database")
        time.sleep(1.5)
        with Stream(db, [(world["alice"], ALICE)], every_s=0.01) as stream:
            wait(lambda: len(handled()) >= 40, "the first handled messages")
            gateway.send_signal(signal.SIGTERM)
            assert gateway.wait(20) == 0
            time.sleep(0.3)  # messages keep arriving while the gateway is down
            before = len(handled())
            gateway = start()
            wait(lambda: len(handled()) >= before + 60, "more after the restart")
            stream.stop()
            wait(lambda: len(handled()) >= len(stream.written), "every message")
            time.sleep(0.5)
        assert sorted(handled()) == sorted(stream.written)
    finally:
        if gateway.poll() is None:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(20)
    stderr = logs.read_text()
    assert "Traceback" not in stderr, stderr[-2000:]
    assert stderr.count("stopping: waiting for running handlers") == 2
