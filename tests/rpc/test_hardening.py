"""``imsg rpc`` under misuse: oversize batches, clients that stop reading at shutdown, an
unwritable stdout, corrupt databases, a subscribe and its unsubscribe in one batch."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imsg.sim.messages import SimDB
from tests.rpc.harness import Rpc, demo_db, sim_env

WAIT_S = 20.0


@pytest.fixture
def db(tmp_path: Path) -> str:
    return demo_db(tmp_path / "chat.db")


def line(rid: object, method: str, **params: object) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": method,
                       "params": params}).encode() + b"\n"


def test_a_batch_of_a_million_elements_is_refused_without_being_run(db: str) -> None:
    rpc = Rpc("--db", db, env=sim_env(db))
    try:
        rpc.write(b"[" + b"{}," * 1_000_000 + b"{}]\n")
        error = rpc.recv()
        assert error["id"] is None and error["error"]["code"] == -32600
        assert "batch" in error["error"]["data"]
        assert "result" in rpc.call("chats.list", {"limit": 1}, rid=2)
        assert rpc.finish()[0] == 0
    finally:
        rpc.kill()


def test_a_batch_counts_against_the_outstanding_limit_and_answers_in_place(db: str) -> None:
    rpc = Rpc("--db", db, env=sim_env(db))
    try:
        batch = [{"jsonrpc": "2.0", "id": i, "method": "status"} for i in range(100)]
        rpc.send(batch)
        answers = rpc.recv()
        assert [a["id"] for a in answers] == list(range(100))
        assert all("result" in a for a in answers)
    finally:
        rpc.kill()


def test_subscribe_then_unsubscribe_in_one_batch_never_streams(db: str) -> None:
    rpc = Rpc("--db", db, env=sim_env(db))
    try:
        rpc.send([{"jsonrpc": "2.0", "id": 1, "method": "watch.subscribe",
                   "params": {"debounce_ms": 0}},
                  {"jsonrpc": "2.0", "id": 2, "method": "watch.unsubscribe",
                   "params": {"subscription": 1}}])
        first, second = rpc.recv()
        assert first["result"]["subscription"] == 1 and second["result"] == {"ok": True}
        sim = SimDB(db)
        sim.receive(1, "+15555550123", "nobody listens")
        sim.close()
        time.sleep(0.3)  # a live watcher would have delivered it by now
        status = rpc.call("status", rid=3)
        assert status["id"] == 3 and status["result"]["server"]["subscriptions"] == 0
    finally:
        rpc.kill()


def test_answers_wait_for_a_client_that_reads_late_after_eof(db: str) -> None:
    """Every answer reaches a client that only starts reading seconds after closing stdin."""
    proc = subprocess.Popen([sys.executable, "-m", "imsg", "rpc", "--db", db],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=sim_env(db))
    try:
        assert proc.stdin is not None and proc.stdout is not None
        body = b"".join(line(i, "messages.history", chat_id=3, limit=50) for i in range(120))
        proc.stdin.write(body)
        proc.stdin.close()
        time.sleep(2.0)  # far beyond any short flush timeout; the pipe fills meanwhile
        ids = sorted(json.loads(raw)["id"] for raw in proc.stdout)
        assert ids == list(range(120))
        assert proc.wait(WAIT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_an_unwritable_stdout_is_one_line_and_a_failure(db: str) -> None:
    with open("/dev/full", "wb") as full:
        result = subprocess.run([sys.executable, "-m", "imsg", "rpc", "--db", db],
                                input=line(1, "status"), stdout=full,
                                stderr=subprocess.PIPE, timeout=WAIT_S, env=sim_env(db))
    assert result.returncode == 1
    assert b"cannot write responses" in result.stderr and b"Traceback" not in result.stderr


def corrupt_schema(path: str) -> None:
    """Overwrite the stored CREATE statement of a table with bytes that are not UTF-8."""
    data = bytearray(Path(path).read_bytes())
    start = data.find(b"CREATE TABLE handle")
    assert start > 0
    data[start + 13:start + 19] = b"\xff\xfe\xff\xfe\xff\xfe"
    Path(path).write_bytes(bytes(data))


def text_date_in_the_newest_row(path: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("UPDATE message SET date = 'tomorrow' WHERE ROWID = (SELECT MAX(ROWID) FROM "
                 "message)")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("damage", [corrupt_schema, text_date_in_the_newest_row])
def test_a_corrupt_database_never_takes_the_server_down(tmp_path: Path, damage: object) -> None:
    db = demo_db(tmp_path / "chat.db")
    sqlite3.connect(db).execute("PRAGMA journal_mode=DELETE").close()
    damage(db)  # type: ignore[operator]
    rpc = Rpc("--db", db, env=sim_env(db))
    try:
        status = rpc.call("status")["result"]
        assert status["protocol_version"] == 1 and "database" in status
        listed = rpc.call("chats.list", {"limit": 5}, rid=2)
        assert listed["id"] == 2 and ("result" in listed or listed["error"]["code"] in (
            -32002, -32603))
        assert rpc.finish()[0] == 0
    finally:
        rpc.kill()
