"""``make demo``'s JSON-RPC session: what a gateway does with ``imsg rpc``, on the simulator.

    python -m imsg.sim.demo_rpc PATH/TO/chat.db

Starts ``imsg rpc`` on the database, lists chats, subscribes to chat 1, has Alice text in
(written by the simulator as Messages would), and answers her through the simulated Messages
(``imsg-sim-osascript``). Every line sent (``-->``) and received (``<--``) is printed as it
went over the pipe. Exits 1 if the session does not go as shown.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from imsg.sim.demo import ALICE
from imsg.sim.messages import SimDB

WAIT_S = 20.0


class Session:
    def __init__(self, db: str) -> None:
        osascript = Path(sys.executable).with_name("imsg-sim-osascript")
        env = {**os.environ, "IMSG_OSASCRIPT": str(osascript), "IMSG_SIM_DB": db}
        self.proc = subprocess.Popen([sys.executable, "-m", "imsg", "rpc", "--db", db],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def send(self, rid: int, method: str, **params: Any) -> None:
        line = json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params},
                          ensure_ascii=False, separators=(",", ":"))
        print(f"--> {line}", flush=True)
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def recv(self) -> Any:
        try:
            line = self.lines.get(timeout=WAIT_S)
        except queue.Empty:
            raise SystemExit("demo: imsg rpc did not answer in time") from None
        print(f"<-- {line.decode().rstrip()}", flush=True)
        return json.loads(line)

    def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(WAIT_S)


def say(text: str) -> None:
    print(f"\n# {text}", flush=True)


def run(db: str) -> int:
    print(f"$ imsg rpc --db {db}   # one JSON-RPC message per line, both ways", flush=True)
    rpc = Session(db)
    say("the gateway asks for the two most recent chats")
    rpc.send(1, "chats.list", limit=2)
    rpc.recv()
    say("and subscribes to new messages in chat 1 (Alice)")
    rpc.send(2, "watch.subscribe", chat_id=1)
    subscription = rpc.recv()["result"]["subscription"]
    say("Alice texts in (the simulator writes the row, as Messages would)")
    sim = SimDB(db)
    incoming = sim.receive(1, ALICE, "Are you still coming tonight?")
    sim.close()
    note = rpc.recv()
    assert note["params"]["subscription"] == subscription
    assert note["params"]["message"]["id"] == incoming
    say("the gateway replies through (simulated) Messages; the sent row is notified too")
    rpc.send(3, "send", chat_id=1, text="Yes! Leaving now 🚗")
    frames = [rpc.recv(), rpc.recv()]
    assert {f.get("id") for f in frames} == {3, None}, frames
    say("done: unsubscribe and close stdin; imsg rpc exits 0")
    rpc.send(4, "watch.unsubscribe", subscription=subscription)
    rpc.recv()
    return rpc.close()


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python -m imsg.sim.demo_rpc PATH/TO/chat.db", file=sys.stderr)
        return 2
    return run(sys.argv[1])


if __name__ == "__main__":
    sys.exit(main())
