"""``make demo``'s gateway part: ``imsg gateway`` with an echo bot, on the simulator.

    python -m imsg.sim.demo_gateway PATH/TO/chat.db

Starts ``imsg gateway run`` (its log lines shown as ``gateway|``) on the database with the
simulated Messages taking its replies. A stranger writes and gets a pairing code; the owner
approves it with ``imsg pairing approve``; the stranger writes again and the echo bot answers;
in the group chat a message without a mention is passed over and one with ``@bot`` is
answered in the group. Exits 1 if the session does not go as shown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imsg.chatdb.reader import ChatDB
from imsg.sim.demo import ALICE, BOB
from imsg.sim.messages import SimDB

DANA = "+15555550177"
WAIT_S = 30.0
CONFIG = """\
[imessage]
cliPath = "{imsg}"
dbPath = "{db}"
dmPolicy = "pairing"                 # strangers get a code; the owner approves it
allowFrom = ["{alice}"]
groupPolicy = "allowlist"
groupAllowFrom = ["{alice}", "{bob}"]
mentionPatterns = ['@bot\\b']
[imessage.groups."*"]
requireMention = true
[imessage.handler]
python = "imsg.sim.demo_gateway:echo_bot"
"""


def echo_bot(envelope: dict[str, Any]) -> str:
    """The demo's agent: repeats what it was told, and who said it."""
    if envelope["chat_type"] == "group":
        return f"🤖 noted, {envelope['sender']}: {envelope['text']}"
    return f"🤖 echo: {envelope['text']}"


def say(text: str) -> None:
    print(f"\n# {text}", flush=True)


def wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: timed out waiting for {what}")
        time.sleep(0.05)


def replies(db: str, chat_id: int) -> list[str]:
    with ChatDB(db) as reader:
        return [m.text for m in reversed(reader.history(chat_id, limit=20)) if m.is_from_me]


def imsg(*args: str, env: dict[str, str]) -> str:
    print(f"$ imsg {' '.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "imsg", *args], capture_output=True, text=True,
                          env=env, check=False)
    print(done.stdout + done.stderr, end="", flush=True)
    if done.returncode:
        raise SystemExit(f"demo: imsg {args[0]} {args[1]} failed")
    return done.stdout


def run(db: str) -> int:
    folder = Path(tempfile.mkdtemp(prefix="imsg-gateway-demo-"))
    state_dir = str(folder / "state")
    config = folder / "bot.toml"
    imsg_bin = str(Path(sys.executable).with_name("imsg"))
    config.write_text(CONFIG.format(imsg=imsg_bin, db=db, alice=ALICE, bob=BOB))
    osascript = str(Path(sys.executable).with_name("imsg-sim-osascript"))
    env = {**os.environ, "IMSG_OSASCRIPT": osascript, "IMSG_SIM_DB": db,
           "IMSG_STATE_DIR": state_dir}
    print(f"$ cat {config}\n{config.read_text()}", flush=True)
    print(f"$ imsg gateway run --config {config}", flush=True)
    gateway = subprocess.Popen([sys.executable, "-m", "imsg", "gateway", "run", "--config",
                                str(config)], env=env, stderr=subprocess.PIPE, text=True)
    log: list[str] = []

    def relay() -> None:
        assert gateway.stderr is not None
        for line in gateway.stderr:
            text = line.rstrip().split(" ", 3)[-1]  # without the timestamp
            log.append(text)
            print(f"  gateway| {text}", flush=True)

    threading.Thread(target=relay, daemon=True).start()
    sim = SimDB(db)
    try:
        wait(lambda: any("first start" in line or "started" in line for line in log),
             "the gateway to start")
        time.sleep(1.5)  # the first subscription settles
        say("a stranger writes to the bot")
        dana = sim.chat([DANA])
        sim.receive(dana, DANA, "hi! is this the bot?")
        wait(lambda: len(replies(db, dana)) == 1, "the pairing reply")
        print("  Messages> " + replies(db, dana)[0].replace("\n", "\n            "), flush=True)
        say("the owner looks at the request and approves it")
        listed = imsg("pairing", "list", "--json", env=env)
        code = listed.split('"code":"')[1].split('"')[0]
        imsg("pairing", "approve", code, env=env)
        say("the stranger writes again: the echo bot answers")
        sim.receive(dana, DANA, "what's the weather like?")
        wait(lambda: len(replies(db, dana)) == 2, "the bot's answer")
        print(f"  Messages> {replies(db, dana)[1]}", flush=True)
        say("in the group, a message without a mention is passed over…")
        with ChatDB(db) as reader:
            trip = next(c.id for c in reader.chats(limit=20) if c.display_name == "Weekend Trip")
        sim.receive(trip, BOB, "who is bringing snacks?")
        wait(lambda: any("no mention" in line for line in log), "the drop")
        say("…and one that mentions @bot is answered in the group")
        before = len(replies(db, trip))
        sim.receive(trip, ALICE, "@bot remind us on Friday")
        wait(lambda: len(replies(db, trip)) == before + 1, "the group answer")
        print(f"  Messages> {replies(db, trip)[-1]}", flush=True)
        say("done: SIGTERM stops the gateway cleanly")
    finally:
        sim.close()
        gateway.send_signal(signal.SIGTERM)
        status = gateway.wait(WAIT_S)
        time.sleep(0.1)
    return status


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python -m imsg.sim.demo_gateway PATH/TO/chat.db", file=sys.stderr)
        return 2
    return run(sys.argv[1])


if __name__ == "__main__":
    sys.exit(main())
