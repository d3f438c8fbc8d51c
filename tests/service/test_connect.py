"""``imsg rpc --connect`` and the socket client: backing off and kicking a missing service
once, and never leaving a client waiting when the service goes away mid-session."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imsg.errors import ServiceError
from imsg.rpc.client import Backoff, open_service, open_service_async
from imsg.rpc.connect import Ledger

FAST = Backoff(attempts=3, first_s=0.01, max_s=0.02, after_kick_s=2.0)
WAIT_S = 20.0


def test_a_missing_service_is_retried_then_reported(tmp_path: Path) -> None:
    slept: list[float] = []
    kicks: list[str] = []

    def not_installed(path: str) -> str | None:
        kicks.append(path)
        return None

    path = str(tmp_path / "none.sock")
    with pytest.raises(ServiceError, match=r"No such file.*imsg service install"):
        open_service(path, backoff=Backoff(attempts=5), kick=not_installed,
                     sleep=slept.append)
    assert slept == [0.05, 0.1, 0.2, 0.4] and kicks == [path]


def test_a_down_service_is_kicked_once_and_comes_back(tmp_path: Path) -> None:
    path = tmp_path / "rpc.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # ECONNREFUSED: the file is there, nobody accepts
    revived: list[socket.socket] = []
    kicks: list[str] = []

    def restart(where: str) -> str:
        kicks.append(where)
        os.unlink(where)
        listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listening.bind(where)
        listening.listen()
        revived.append(listening)
        return "Restarted the service (`systemctl --user restart imsg.service`)"

    sock = open_service(str(path), backoff=FAST, kick=restart)
    sock.close()
    revived[0].close()
    assert kicks == [str(path)]


def test_a_service_still_down_after_the_kick_says_what_was_tried(tmp_path: Path) -> None:
    kicks: list[str] = []

    def restart(where: str) -> str:
        kicks.append(where)
        return "Restarted the service (`launchctl kickstart -k gui/501/com.imsg.rpc`)"

    with pytest.raises(ServiceError) as caught:
        open_service(str(tmp_path / "rpc.sock"), backoff=Backoff(
            attempts=2, first_s=0.01, after_kick_s=0.05), kick=restart)
    assert len(kicks) == 1
    assert "launchctl kickstart" in caught.value.message
    assert "still down after 0.05s" in caught.value.message
    assert "imsg service logs" in caught.value.message


def test_other_failures_are_not_retried(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    slept: list[float] = []
    with pytest.raises(ServiceError, match="Not a directory"):
        open_service(str(tmp_path / "file" / "rpc.sock"), backoff=FAST, kick=None,
                     sleep=slept.append)
    assert slept == []


def test_the_async_client_gets_a_stream_pair(tmp_path: Path) -> None:
    import asyncio

    path = tmp_path / "rpc.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listening:
        listening.bind(str(path))
        listening.listen()

        async def use() -> None:
            _, writer = await open_service_async(str(path), kick=None)
            writer.close()
            await writer.wait_closed()

        asyncio.run(use())


def test_the_ledger_tracks_requests_and_subscriptions() -> None:
    ledger = Ledger()
    ledger.sent(b'{"jsonrpc":"2.0","id":1,"method":"watch.subscribe","params":{}}')
    ledger.sent(b'{"jsonrpc":"2.0","id":"s","method":"send","params":{"to":"x","text":"y"}}')
    ledger.sent(b'{"jsonrpc":"2.0","method":"status"}')  # a notification: nothing answers it
    ledger.sent(b'not json')
    ledger.received(b'{"jsonrpc":"2.0","id":1,"result":{"subscription":7}}')
    ledger.sent(b'{"jsonrpc":"2.0","id":2,"method":"chats.list"}')
    assert not ledger.answered_all()
    frames = [json.loads(frame) for frame in ledger.orphans("gone")]
    send = next(f for f in frames if f.get("id") == "s")
    assert send["error"]["code"] == -32001 and send["error"]["data"]["retry_safe"] is False
    assert send["error"]["data"]["operation"] == "send"
    read = next(f for f in frames if f.get("id") == 2)
    assert read["error"] == {"code": -32603, "message": "Internal error", "data": "gone"}
    assert {"jsonrpc": "2.0", "method": "error",
            "params": {"subscription": 7, "error": {"message": "gone"}}} in frames
    assert ledger.answered_all() and ledger.orphans("again") == []
    ledger.sent(b'{"jsonrpc":"2.0","id":3,"method":"watch.unsubscribe",'
                b'"params":{"subscription":7}}')
    ledger.received(b'{"jsonrpc":"2.0","id":3,"result":{"ok":true}}')
    assert ledger.orphans("x") == []


class DyingService:
    """Answers the first ``answer`` requests (a subscribe gets subscription 7), then closes
    the connection without answering the rest: the service died mid-session."""

    def __init__(self, path: Path, answer: int) -> None:
        self.listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listening.bind(str(path))
        self.listening.listen()
        self.answer = answer
        self.received: list[Any] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listening.accept()
        with conn, conn.makefile("rb") as stream:
            while len(self.received) < self.answer + 2:
                request = json.loads(stream.readline())
                self.received.append(request)
                if len(self.received) <= self.answer:
                    result = {"subscription": 7} if request["method"] == "watch.subscribe" \
                        else {"ok": True}
                    reply = {"jsonrpc": "2.0", "id": request["id"], "result": result}
                    conn.sendall(json.dumps(reply).encode() + b"\n")
            conn.sendall(b'{"jsonrpc":"2.0","id":99,"res')  # dies halfway through a frame

    def close(self) -> None:
        self.listening.close()


@pytest.fixture
def dying(tmp_path: Path) -> Iterator[DyingService]:
    service = DyingService(tmp_path / "rpc.sock", answer=1)
    yield service
    service.close()


def test_the_bridge_answers_everything_when_the_service_dies(tmp_path: Path,
                                                             dying: DyingService) -> None:
    bridge = subprocess.Popen(
        [sys.executable, "-m", "imsg", "rpc", "--connect", str(tmp_path / "rpc.sock")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert bridge.stdin is not None and bridge.stdout is not None
    requests = [{"jsonrpc": "2.0", "id": 1, "method": "watch.subscribe", "params": {}},
                {"jsonrpc": "2.0", "id": 2, "method": "send",
                 "params": {"to": "+15555550123", "text": "hi"}},
                {"jsonrpc": "2.0", "id": 3, "method": "chats.list"}]
    bridge.stdin.write(b"".join(json.dumps(r).encode() + b"\n" for r in requests))
    bridge.stdin.flush()
    bridge.wait(WAIT_S)  # stdin stays open: the service ended the session
    out, err = bridge.communicate(timeout=WAIT_S)
    frames = [json.loads(line) for line in out.splitlines()]
    assert frames[0] == {"jsonrpc": "2.0", "id": 1, "result": {"subscription": 7}}
    by_id = {frame.get("id"): frame for frame in frames[1:]}
    assert by_id[2]["error"]["code"] == -32001  # a send may have gone out: never retry it
    assert by_id[2]["error"]["data"]["disposition"] == "may_have_completed"
    assert by_id[3]["error"]["code"] == -32603
    ended = [f for f in frames if f.get("method") == "error"]
    assert ended == [{"jsonrpc": "2.0", "method": "error", "params": {
        "subscription": 7, "error": {"message": by_id[3]["error"]["data"]}}}]
    assert len(frames) == 4  # the half frame never reached stdout
    assert bridge.returncode == 22
    assert err.decode().startswith("imsg: The imsg service at ") and b"went away" in err
    assert b"Traceback" not in err


def test_the_bridge_exits_non_zero_when_an_idle_service_goes(tmp_path: Path) -> None:
    path = tmp_path / "rpc.sock"
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(str(path))
    listening.listen()
    bridge = subprocess.Popen([sys.executable, "-m", "imsg", "rpc", "--connect", str(path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    conn, _ = listening.accept()
    time.sleep(0.05)
    conn.close()
    listening.close()
    bridge.wait(WAIT_S)  # stdin stays open: the client did not end the session
    out, err = bridge.communicate(timeout=WAIT_S)
    assert bridge.returncode == 22 and out == b"" and b"closed the connection" in err
