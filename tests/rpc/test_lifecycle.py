"""``imsg rpc`` as a process: concurrency with a slow send, big lines, pipelining, and every
way a session ends (EOF, stdout closed, SIGTERM, SIGINT)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imsg.rpc.transport import MAX_LINE
from imsg.sim.messages import SimDB
from tests.rpc.harness import SIM_OSASCRIPT, Rpc, demo_db, sim_env

WAIT_S = 20.0


@pytest.fixture
def db(tmp_path: Path) -> str:
    return demo_db(tmp_path / "chat.db")


class Gate:
    """An osascript that says it started, then waits for the test to open the gate before
    playing the simulated Messages: a send that is as slow as the test wants."""

    def __init__(self, tmp: Path) -> None:
        self.started = tmp / "started"
        self.open_file = tmp / "open"
        self.script = tmp / "gated-osascript"
        self.script.write_text(
            "#!/bin/sh\n"
            f"touch '{self.started}'\n"
            f"while [ ! -e '{self.open_file}' ]; do sleep 0.01; done\n"
            f"exec '{SIM_OSASCRIPT}' \"$@\"\n")
        self.script.chmod(0o755)

    def wait_started(self) -> None:
        deadline = time.monotonic() + WAIT_S
        while not self.started.exists():
            assert time.monotonic() < deadline, "the send never reached osascript"
            time.sleep(0.01)

    def open(self) -> None:
        self.open_file.touch()


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    g = Gate(tmp_path)
    yield g
    g.open()  # never leave a waiting osascript behind


def request(rid: object, method: str, **params: object) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}


def test_a_slow_send_blocks_nothing_else(db: str, gate: Gate) -> None:
    rpc = Rpc("--db", db, env=sim_env(db, IMSG_OSASCRIPT=str(gate.script)))
    try:
        rpc.send(request("send", "send", chat_id=1, text="slow one"))
        gate.wait_started()
        assert rpc.call("chats.list", {"limit": 1}, rid="read")["id"] == "read"
        sub = rpc.call("watch.subscribe", {"debounce_ms": 0}, rid="sub")["result"]
        sim = SimDB(db)
        rowid = sim.receive(2, "+15555550188", "while sending")
        sim.close()
        note = rpc.recv()
        assert note["method"] == "message" and note["params"] == {
            "subscription": sub["subscription"], "message": note["params"]["message"]}
        assert note["params"]["message"]["id"] == rowid
        gate.open()
        frames = [rpc.recv()]
        while frames[-1].get("id") != "send":  # the sent row may be notified first
            frames.append(rpc.recv())
        assert frames[-1]["result"]["ok"] is True
        assert [f["params"]["message"]["text"] for f in frames[:-1]] in ([], ["slow one"])
    finally:
        rpc.kill()


def test_eof_lets_a_running_send_answer(db: str, gate: Gate) -> None:
    rpc = Rpc("--db", db, env=sim_env(db, IMSG_OSASCRIPT=str(gate.script)))
    try:
        rpc.send(request(1, "send", to="+15555550123", text="before I go"))
        gate.wait_started()
        rpc.close_stdin()
        gate.open()
        code, lines = rpc.finish()
        assert code == 0 and [json.loads(line)["result"]["ok"] for line in lines] == [True]
    finally:
        rpc.kill()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_exit_cleanly_even_mid_send(db: str, gate: Gate, sig: signal.Signals) -> None:
    """The send in flight has its osascript killed and is answered: outcome unknown."""
    rpc = Rpc("--db", db, env=sim_env(db, IMSG_OSASCRIPT=str(gate.script)))
    try:
        assert "result" in rpc.call("watch.subscribe")
        rpc.send(request(2, "send", chat_id=1, text="interrupted"))
        gate.wait_started()
        rpc.proc.send_signal(sig)
        assert rpc.wait() == 0
        answer = json.loads(rpc.recv_raw() or b"null")
        assert answer["id"] == 2 and answer["error"]["code"] == -32001
        assert answer["error"]["data"]["retry_safe"] is False
        assert "outcome is unknown" in answer["error"]["data"]["detail"]
        assert rpc.recv_raw() is None
    finally:
        rpc.kill()


def test_closed_stdout_ends_the_process_quietly(db: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "imsg", "rpc", "--db", db],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(request(1, "watch.subscribe")).encode() + b"\n")
        proc.stdin.flush()
        assert b'"result"' in proc.stdout.readline()
        proc.stdout.close()
        for rid in range(100):  # until the server writes into the closed pipe and goes
            try:
                proc.stdin.write(json.dumps(request(rid, "status")).encode() + b"\n")
                proc.stdin.flush()
            except BrokenPipeError:
                break
        _, stderr = proc.communicate(timeout=WAIT_S)
        assert proc.returncode == 0 and b"Traceback" not in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_closed_stdout_is_noticed_while_idle(db: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "imsg", "rpc", "--db", db],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(request(1, "watch.subscribe")).encode() + b"\n")
        proc.stdin.flush()
        assert b'"result"' in proc.stdout.readline()
        proc.stdout.close()  # and nothing more is asked: the server must notice by itself
        assert proc.wait(WAIT_S) == 0
        assert proc.stderr is not None and b"Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_16_mib_line_is_served_and_longer_ones_refused(db: str) -> None:
    rpc = Rpc("--db", db, env=sim_env(db))
    try:
        big = json.dumps(request(1, "messages.search", query="x" * (MAX_LINE - 100)))
        assert len(big) <= MAX_LINE
        rpc.write(big.encode() + b"\n")
        assert rpc.recv() == {"jsonrpc": "2.0", "id": 1, "result": {"messages": []}}
        rpc.write(b"[" * (MAX_LINE + 1) + b"\n")
        error = rpc.recv()
        assert error["id"] is None and error["error"]["code"] == -32700
        assert rpc.call("watch.unsubscribe", {"subscription": 1}, rid=2)["result"] == {"ok": True}
    finally:
        rpc.kill()


def test_pipelined_requests_all_answered_by_id(db: str) -> None:
    """Up to 128 outstanding requests are served; beyond that each is answered -32000."""
    rpc = Rpc("--db", db, env=sim_env(db))
    try:
        calls = [("chats.list", {}), ("status", {}), ("messages.history", {"chat_id": 1})]
        lines = [json.dumps(request(i, calls[i % 3][0], **calls[i % 3][1])) for i in range(600)]
        rpc.write("\n".join(lines).encode() + b"\n")
        answers = [rpc.recv() for _ in lines]
        assert sorted(a["id"] for a in answers) == list(range(600))
        served = [a for a in answers if "result" in a]
        busy = [a for a in answers if "error" in a]
        assert len(served) >= 128
        assert all(a["error"] == {"code": -32000, "message": "Server busy",
                                  "data": "outstanding request limit exceeded"} for a in busy)
        code, rest = rpc.finish()
        assert code == 0 and rest == []
    finally:
        rpc.kill()


def test_stdout_carries_frames_only(db: str) -> None:
    rpc = Rpc("--db", db, "--verbose", env=sim_env(db))
    try:
        rpc.call("watch.subscribe", {"debounce_ms": 0})
        rpc.call("status", rid=2)
        code, rest = rpc.finish()
        assert code == 0 and rest == []
    finally:
        rpc.kill()
    assert b"Traceback" not in rpc.stderr and b"Warning" not in rpc.stderr
