"""Driving ``imsg rpc`` as a subprocess: raw lines in, JSON lines out, and pattern matching.

Patterns are JSON values compared structurally, where the string ``"<any>"`` matches any value,
``"<int>"``/``"<str>"``/``"<bool>"`` any value of that type, and an object holding the member
``"...": "..."`` may have members beyond the ones listed.
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

from imsg.sim.demo import fill_demo
from imsg.sim.messages import SimDB

READ_TIMEOUT_S = 20.0
DEMO_NOW = 1_770_000_000.0  # fixed clock: the demo history's timestamps are stable
SIM_OSASCRIPT = str(Path(sys.executable).with_name("imsg-sim-osascript"))


def demo_db(path: Path, schema: str = "ventura") -> str:
    sim = SimDB.create(str(path), schema)
    try:
        fill_demo(sim, now=DEMO_NOW)
    finally:
        sim.close()
    return str(path)


def sim_env(db: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "IMSG_OSASCRIPT": SIM_OSASCRIPT, "IMSG_SIM_DB": db, **extra}


class Rpc:
    """One ``imsg rpc`` child; stdout lines are collected by a thread."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "imsg", "rpc", *args], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self.stderr = b""
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, obj: Any) -> None:
        self.write(json.dumps(obj).encode() + b"\n")

    def call(self, method: str, params: Any = None, rid: Any = 1) -> Any:
        request: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            request["params"] = params
        self.send(request)
        return self.recv()

    def recv_raw(self, timeout: float = READ_TIMEOUT_S) -> bytes | None:
        """The next stdout line (None at EOF); fails the test if none comes in ``timeout``."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output within {timeout}s; stderr: {self.stderr!r}") from None

    def recv(self, timeout: float = READ_TIMEOUT_S) -> Any:
        line = self.recv_raw(timeout)
        assert line is not None, f"stdout closed; stderr: {self.stderr!r}"
        assert line.endswith(b"\n")
        return json.loads(line)

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        if not self.proc.stdin.closed:
            self.proc.stdin.close()

    def finish(self, timeout: float = READ_TIMEOUT_S) -> tuple[int, list[bytes]]:
        """Close stdin; (exit status, stdout lines still unread)."""
        self.close_stdin()
        code = self.wait(timeout)
        rest = []
        while (line := self.recv_raw(timeout)) is not None:
            rest.append(line)
        return code, rest

    def wait(self, timeout: float = READ_TIMEOUT_S) -> int:
        """The exit status, once stderr is read in full; fails the test when the server wrote
        a traceback or a warning there."""
        code = self.proc.wait(timeout)
        self._stderr_reader.join(timeout)
        assert b"Traceback" not in self.stderr and b"Warning" not in self.stderr, self.stderr
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def matches(pattern: Any, value: Any) -> bool:
    if pattern == "<any>":
        return True
    if pattern == "<int>":
        return isinstance(value, int) and not isinstance(value, bool)
    if pattern == "<str>":
        return isinstance(value, str)
    if pattern == "<bool>":
        return isinstance(value, bool)
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        open_ended = pattern.get("...") == "..."
        keys = set(pattern) - {"..."}
        if not open_ended and keys != set(value):
            return False
        return all(key in value and matches(pattern[key], value[key]) for key in keys)
    if isinstance(pattern, list):
        return isinstance(value, list) and len(pattern) == len(value) and all(
            matches(p, v) for p, v in zip(pattern, value, strict=True))
    return type(pattern) is type(value) and pattern == value


def match_unordered(patterns: list[Any], values: list[Any]) -> bool:
    """True when each value matches a distinct pattern (in any order)."""
    if len(patterns) != len(values):
        return False
    if not patterns:
        return True
    first, rest = values[0], values[1:]
    return any(matches(pattern, first) and match_unordered(patterns[:i] + patterns[i + 1:], rest)
               for i, pattern in enumerate(patterns))
