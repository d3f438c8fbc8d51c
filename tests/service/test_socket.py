"""``imsg rpc --socket``: many clients, each with its own subscriptions; the socket file's
permissions, stale and unlinked sockets; ``imsg rpc --connect`` bridging stdio to it."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imsg.rpc.sockpath import probe
from imsg.sim.messages import SimDB
from tests.rpc.harness import Rpc, demo_db, sim_env
from tests.service.servers import WAIT_S, Client, Server, wait_for


@pytest.fixture
def db(tmp_path: Path) -> str:
    return demo_db(tmp_path / "chat.db")


@pytest.fixture
def server(tmp_path: Path, db: str) -> Iterator[Server]:
    path = tmp_path / "run" / "rpc.sock"
    srv = Server(path, db, str(path)).wait_listening()
    yield srv
    code, out, err = srv.stop()
    assert code == 0 and out == b"" and b"Traceback" not in err, err


def test_socket_and_directory_are_private(server: Server) -> None:
    assert stat.S_IMODE(os.lstat(server.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(server.path.parent).st_mode) == 0o700


def test_twenty_clients_subscribe_and_query_at_once(server: Server, db: str) -> None:
    ready = threading.Barrier(21)
    rowid: list[int] = []
    failures: list[BaseException] = []
    subscriptions: list[int] = []

    def client() -> None:
        c = Client(server.path)
        try:
            sub = c.call("watch.subscribe", debounce_ms=0)["subscription"]
            subscriptions.append(sub)
            assert len(c.call("chats.list")["chats"]) == 3
            assert c.call("messages.history", chat_id=3, limit=2)["messages"]
            assert c.call("status")["server"]["subscriptions"] == 1
            ready.wait(WAIT_S)
            ready.wait(WAIT_S)  # the row is in
            note = c.recv()
            assert note["method"] == "message" and note["params"]["subscription"] == sub
            assert note["params"]["message"]["id"] == rowid[0]
        except BaseException as exc:
            failures.append(exc)
            ready.abort()
        finally:
            c.close()

    threads = [threading.Thread(target=client) for _ in range(20)]
    for thread in threads:
        thread.start()
    ready.wait(WAIT_S)
    sim = SimDB(db)
    rowid.append(sim.receive(1, "+15555550123", "to everyone"))
    sim.close()
    ready.wait(WAIT_S)
    for thread in threads:
        thread.join(WAIT_S)
    assert not failures, failures
    assert len(set(subscriptions)) == 20


def test_a_client_vanishing_mid_stream_leaves_the_others_alone(server: Server, db: str) -> None:
    steady, leaving = Client(server.path), Client(server.path)
    steady.call("watch.subscribe", debounce_ms=0)
    leaving.call("watch.subscribe", debounce_ms=0)
    leaving.send(1, "messages.history", chat_id=1, limit=100)  # never read
    sim = SimDB(db)
    first = sim.receive(1, "+15555550123", "one")
    assert steady.recv()["params"]["message"]["id"] == first
    leaving.sock.shutdown(socket.SHUT_RDWR)
    leaving.close()
    rows = [sim.receive(2, "+15555550188", f"after {i}") for i in range(3)]
    sim.close()
    assert [steady.recv()["params"]["message"]["id"] for _ in rows] == rows
    assert steady.call("status")["server"]["subscriptions"] == 1
    steady.close()


def test_unlinked_socket_is_recreated(server: Server) -> None:
    before = Client(server.path)
    os.unlink(server.path)
    wait_for(lambda: probe(str(server.path)) == "listening", "a new socket")
    after = Client(server.path)
    assert after.call("status")["server"]["transport"] == "socket"
    assert before.call("status")["server"]["transport"] == "socket"
    before.close()
    after.close()


def test_a_path_replaced_by_a_file_is_recreated_once_the_file_goes(server: Server) -> None:
    connected = Client(server.path)
    replacement = server.path.with_name("tmp-file")
    replacement.write_text("someone's file")
    os.replace(replacement, server.path)  # the socket is gone, a regular file is there
    deadline = time.monotonic() + 1.5  # three checks: the file is never touched
    while time.monotonic() < deadline:
        assert server.path.read_text() == "someone's file"
        time.sleep(0.05)
    assert server.proc.poll() is None
    server.path.unlink()
    wait_for(lambda: probe(str(server.path)) == "listening", "the socket again")
    assert Client(server.path).call("status")["server"]["transport"] == "socket"
    assert connected.call("status")["server"]["transport"] == "socket"
    connected.close()


def test_a_path_taken_over_by_another_socket_ends_the_server(tmp_path: Path, db: str) -> None:
    path = tmp_path / "run" / "rpc.sock"
    srv = Server(path, db, str(path)).wait_listening()
    impostor = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    impostor.bind(str(path.with_name("impostor.sock")))
    impostor.listen()
    os.rename(path.with_name("impostor.sock"), path)  # clients now reach the impostor
    code, out, err = srv.wait()  # the supervisor restarts a server that exits non-zero
    impostor.close()
    assert code == 21 and out == b"" and b"replaced by another socket" in err, err
    assert b"Traceback" not in err


def test_stale_socket_is_replaced(tmp_path: Path, db: str) -> None:
    path = tmp_path / "stale.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens: a crashed run
    assert probe(str(path)) == "stale"
    srv = Server(path, db, str(path)).wait_listening()
    client = Client(path)
    assert client.call("watch.unsubscribe", subscription=1) == {"ok": True}
    client.close()
    code, _, _ = srv.stop()
    assert code == 0 and not path.exists()


def test_a_live_socket_is_never_taken_over(server: Server, db: str) -> None:
    second = Server(server.path, db, str(server.path))
    code, out, err = second.wait()
    assert code == 21 and out == b"" and b"already serving" in err
    assert probe(str(server.path)) == "listening"


def test_a_file_that_is_not_a_socket_is_left_alone(tmp_path: Path, db: str) -> None:
    path = tmp_path / "precious"
    path.write_text("data")
    code, _, err = Server(path, db, str(path)).wait()
    assert code == 2 and b"not a socket" in err and path.read_text() == "data"


def test_default_path_is_in_the_runtime_dir(tmp_path: Path, db: str) -> None:
    runtime = tmp_path / "xdg"
    runtime.mkdir()
    env = sim_env(db, XDG_RUNTIME_DIR=str(runtime))
    env.pop("IMSG_SOCKET", None)
    path = runtime / "imsg" / "rpc.sock"
    srv = Server(path, db, env=env).wait_listening()
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    bridge = Rpc("--connect", env=env)
    try:
        assert bridge.call("status")["result"]["server"]["transport"] == "socket"
        code, rest = bridge.finish()
        assert code == 0 and rest == []
    finally:
        bridge.kill()
    assert srv.stop()[0] == 0


def test_connect_bridges_stdio_to_the_service(server: Server, db: str) -> None:
    bridge = Rpc("--connect", str(server.path), env=sim_env(db))
    try:
        sub = bridge.call("watch.subscribe", {"debounce_ms": 0})["result"]["subscription"]
        sim = SimDB(db)
        rowid = sim.receive(3, "bob@example.com", "via the service")
        sim.close()
        note = bridge.recv()
        assert note["params"] == {"subscription": sub, "message": note["params"]["message"]}
        assert note["params"]["message"]["id"] == rowid
        code, rest = bridge.finish()
        assert code == 0 and rest == []
    finally:
        bridge.kill()


def test_connect_without_a_service_answers_with_the_fix(tmp_path: Path, db: str) -> None:
    bridge = Rpc("--connect", str(tmp_path / "none.sock"), env=sim_env(db))
    try:
        error = bridge.call("chats.list")["error"]
        assert error["code"] == -32603 and "imsg service install" in json.dumps(error["data"])
        code, rest = bridge.finish()
        assert code == 0 and rest == []
    finally:
        bridge.kill()


def test_the_service_logs_to_a_capped_file(tmp_path: Path, db: str) -> None:
    path, log = tmp_path / "run" / "rpc.sock", tmp_path / "logs" / "rpc.log"
    srv = Server(path, db, str(path), "--log-file", str(log), "-v").wait_listening()
    code, out, err = srv.stop()
    assert code == 0 and out == b"" and err == b""
    text = log.read_text()
    assert f"listening on {path}" in text and "imsg rpc[" in text
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    script = (
        "import logging, sys\n"
        "from imsg.rpc.logsetup import CappedHandler, CappedLog\n"
        f"capped = CappedLog({str(log)!r}, max_bytes=2000)\n"
        "capped.open()\n"
        "logging.getLogger().addHandler(CappedHandler(capped))\n"
        "for i in range(500):\n"
        "    logging.getLogger().warning('line %d %s', i, 'x' * 40)\n"
        "print('stray output goes there too', flush=True)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=WAIT_S)
    assert done.returncode == 0 and done.stdout == done.stderr == b""
    assert log.stat().st_size <= 2100 and Path(f"{log}.1").stat().st_size <= 2100
    assert "line 499" in log.read_text() and "stray output" in log.read_text()


def test_log_file_and_exit_with_parent_go_with_socket() -> None:
    run = subprocess.run([sys.executable, "-m", "imsg", "rpc", "--log-file", "/tmp/x.log"],
                         capture_output=True, text=True, timeout=WAIT_S)
    assert run.returncode == 2 and "--socket" in run.stderr and run.stdout == ""


def test_socket_and_connect_together_is_a_usage_error(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "imsg", "rpc", "--socket", "--connect"],
                         capture_output=True, text=True, timeout=WAIT_S)
    assert run.returncode == 2 and "not both" in run.stderr and run.stdout == ""


def test_exit_with_parent_stops_when_the_launcher_is_gone(tmp_path: Path, db: str) -> None:
    path = tmp_path / "run" / "rpc.sock"
    launcher = subprocess.Popen(
        ["/bin/sh", "-c", f'"{sys.executable}" -m imsg rpc --socket "{path}" --db "{db}" '
                          "--exit-with-parent & wait"], env=sim_env(db),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: probe(str(path)) == "listening", "the socket")
    launcher.kill()  # SIGKILL: nothing is forwarded, the child is orphaned
    launcher.wait()
    wait_for(lambda: probe(str(path)) == "missing", "the orphaned server to stop")
