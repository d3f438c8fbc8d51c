"""A real ``imsg rpc --socket`` in a subprocess, and a line client for it."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imsg.rpc.sockpath import probe
from tests.rpc.harness import sim_env

WAIT_S = 20.0


def wait_for(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class Server:
    def __init__(self, path: Path, db: str, *args: str, env: dict[str, str] | None = None
                 ) -> None:
        self.path = path
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "imsg", "rpc", "--socket", *args, "--db", db],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env or sim_env(db))

    def wait_listening(self) -> Server:
        wait_for(lambda: probe(str(self.path)) == "listening" or self.proc.poll() is not None,
                 "the socket")
        assert self.proc.poll() is None, self.proc.communicate()
        return self

    def stop(self) -> tuple[int, bytes, bytes]:
        """SIGTERM, then the exit status and output."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def wait(self) -> tuple[int, bytes, bytes]:
        out, err = self.proc.communicate(timeout=WAIT_S)
        return self.proc.returncode, out, err


class Client:
    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(WAIT_S)
        self.sock.connect(str(path))
        self.file = self.sock.makefile("rb")

    def send(self, rid: Any, method: str, **params: Any) -> None:
        frame = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        self.sock.sendall(json.dumps(frame).encode() + b"\n")

    def recv(self) -> Any:
        line = self.file.readline()
        assert line.endswith(b"\n"), "connection closed"
        return json.loads(line)

    def call(self, method: str, **params: Any) -> Any:
        self.send("c", method, **params)
        reply = self.recv()
        while reply.get("id") != "c":  # notifications may come first
            reply = self.recv()
        assert "result" in reply, reply
        return reply["result"]

    def close(self) -> None:
        self.file.close()
        self.sock.close()


