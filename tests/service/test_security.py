"""The socket against another user: an attacker (a real second uid) squatting the path before
we start, renaming its socket over ours, or connecting to a socket left open to it.

The attacker must be another uid for any of this to mean something, so the tests run only
when the suite runs as root (as in CI), which can start processes as ``nobody``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from imsg.rpc.sockpath import probe
from tests.rpc.harness import Rpc, demo_db, sim_env
from tests.service.servers import WAIT_S, Client, Server, wait_for

pytestmark = pytest.mark.skipif(
    os.getuid() != 0, reason="the attacker must run as another uid, which needs root (CI "
                             "runs the suite as root)")

ATTACKER_UID = 65534  # nobody
ATTACKER = r"""
import os, socket, sys
path, mode = sys.argv[1], sys.argv[2]
if mode == "squat":
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(path)
    listening.listen(8)
    os.chmod(path, 0o777)
    print("ready", flush=True)
    while True:
        conn, _ = listening.accept()
        print("connection", flush=True)
        while data := conn.recv(65536):
            print(f"received {len(data)} bytes: {data[:60]!r}", flush=True)
        conn.close()
elif mode == "rename":
    decoy = socket.socket(socket.AF_UNIX)
    decoy.bind(path + ".evil")
    decoy.listen(1)
    try:
        os.rename(path + ".evil", path)
        print("renamed", flush=True)
    except OSError as exc:
        print(f"refused errno {exc.errno}", flush=True)
elif mode == "connect":
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    try:
        sock.connect(path)
    except OSError as exc:
        print(f"cannot connect errno {exc.errno}", flush=True)
        sys.exit()
    try:
        sock.sendall(b'{"jsonrpc":"2.0","id":1,"method":"status"}\n')
        print(f"answer {sock.recv(65536)!r}", flush=True)
    except OSError as exc:
        print(f"closed errno {exc.errno}", flush=True)
"""


def _attacker_python() -> str | None:
    """A Python the attacker uid may run (the suite's own may live in root's home)."""
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        try:
            done = subprocess.run([candidate, "-S", "-c", "pass"], user=ATTACKER_UID,
                                  group=ATTACKER_UID, capture_output=True, timeout=WAIT_S)
        except OSError:
            continue
        if done.returncode == 0:
            return candidate
    return None


@pytest.fixture(scope="module")
def attacker_python() -> str:
    python = _attacker_python()
    if python is None:
        pytest.skip(f"no Python interpreter that uid {ATTACKER_UID} may run")
    return python


def attacker(python: str, path: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen([python, "-S", "-c", ATTACKER, str(path), mode],
                            user=ATTACKER_UID, group=ATTACKER_UID, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory both users can reach (the test's own tmp_path is private to root)."""
    root = Path(tempfile.mkdtemp(prefix="imsg-attack-", dir="/tmp"))
    root.chmod(0o755)
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)  # like /tmp: anyone may create, only owners may rename
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return demo_db(tmp_path / "chat.db")


def test_a_squatted_path_is_neither_served_nor_talked_to(shared: Path, db: str,
                                                         attacker_python: str) -> None:
    path = shared / "tmp" / "rpc.sock"
    squatter = attacker(attacker_python, path, "squat")
    assert squatter.stdout is not None
    try:
        assert squatter.stdout.readline() == "ready\n"
        code, out, err = Server(path, db, str(path)).wait()
        assert code == 21 and out == b""
        assert b"served by another user (uid 65534)" in err and b"Traceback" not in err
        bridge = Rpc("--connect", str(path), env=sim_env(db))
        try:
            reply = bridge.call("send", {"to": "+15555550123", "text": "my secret"})
            assert reply["error"]["code"] == -32603
            assert "taken over" in json.dumps(reply["error"]["data"])
            assert bridge.finish()[0] == 0
        finally:
            bridge.kill()
    finally:
        squatter.kill()
        said, _ = squatter.communicate(timeout=WAIT_S)
    assert "received" not in said  # connected, checked, and never sent a byte


def test_in_a_sticky_directory_our_socket_cannot_be_renamed_over(
        shared: Path, db: str, attacker_python: str) -> None:
    path = shared / "tmp" / "rpc.sock"
    srv = Server(path, db, str(path)).wait_listening()
    try:
        renamer = attacker(attacker_python, path, "rename")
        said, _ = renamer.communicate(timeout=WAIT_S)
        assert said.startswith("refused errno"), said
        client = Client(path)
        assert client.call("status")["server"]["transport"] == "socket"
        client.close()
    finally:
        assert srv.stop()[0] == 0


def test_the_server_answers_only_its_own_user(shared: Path, db: str,
                                              attacker_python: str) -> None:
    directory = shared / "open"
    directory.mkdir(mode=0o755)
    path = directory / "rpc.sock"
    srv = Server(path, db, str(path), "-v").wait_listening()
    try:
        path.chmod(0o666)  # a socket left open to everyone, by mistake
        intruder = attacker(attacker_python, path, "connect")
        said, complaint = intruder.communicate(timeout=WAIT_S)
        assert said in ("answer b''\n", "closed errno 104\n", "closed errno 32\n"), complaint
        # connected (the socket was open to it), then closed unanswered
        client = Client(path)
        assert client.call("status")["server"]["transport"] == "socket"
        client.close()
        wait_for(lambda: probe(str(path)) == "listening", "the server to stay up")
    finally:
        code, out, err = srv.stop()
    assert code == 0 and out == b"" and b"refused a client of another user (uid 65534)" in err
