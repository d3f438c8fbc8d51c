"""Fakes for the service tests: macOS and systemd tools on PATH, and a canned socket server.

``Tools`` writes executables (``launchctl``, ``codesign``, ``security``, ``osacompile``, ``log``,
``open``, ``systemctl``, ``clang``, ``xcode-select``, ``openssl``) into a directory put first on
PATH. Each appends its argv to ``calls.jsonl`` and answers from ``answers.json``: the first
answer for its name whose ``when`` words all appear in argv gives stdout, stderr and the exit
status, and may ``create`` what the real tool would (clang's ``-o`` file, osacompile's applet
bundle). Unanswered calls exit 0 silently.

``StatusServer`` listens on a Unix socket and answers each request line with the next canned
reply (the last one repeats), recording the requests. ``mac``/``linux`` are hosts under the
test's directory; ``with_clang`` answers what building and signing the bundle asks.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from imsg.service import Host

TOOLS = ("launchctl", "codesign", "security", "osacompile", "log", "open", "systemctl",
         "clang", "xcode-select", "openssl")

FAKE = """#!{python} -S
import json, os, plistlib, sys
name = os.path.basename(sys.argv[0])
args = sys.argv[1:]
root = {root!r}
with open(os.path.join(root, "calls.jsonl"), "a") as fh:
    fh.write(json.dumps([name, *args]) + "\\n")
with open(os.path.join(root, "answers.json")) as fh:
    answers = json.load(fh).get(name, [])
answer = next((a for a in answers if all(w in args for w in a.get("when", []))), {{}})
create = answer.get("create")
if create == "file":
    target = args[args.index("-o") + 1]
    with open(target, "w") as fh:
        fh.write("fake binary built from " + args[-1])
elif create == "applet":
    target = args[args.index("-o") + 1]
    os.makedirs(os.path.join(target, "Contents", "MacOS"))
    with open(os.path.join(target, "Contents", "MacOS", "applet"), "w") as fh:
        fh.write("fake applet of " + args[-1])
    with open(os.path.join(target, "Contents", "Info.plist"), "wb") as fh:
        plistlib.dump({{"CFBundleExecutable": "applet",
                       "CFBundleIdentifier": "com.apple.ScriptEditor.id.applet"}}, fh)
sys.stdout.write(answer.get("stdout", ""))
sys.stderr.write(answer.get("stderr", ""))
sys.exit(answer.get("exit", 0))
"""


class Tools:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.bin.mkdir(parents=True)
        self._answers: dict[str, list[dict[str, Any]]] = {}
        self._save()
        for name in TOOLS:
            path = self.bin / name
            path.write_text(FAKE.format(python=sys.executable, root=str(root)))
            path.chmod(0o755)

    def answer(self, tool: str, stdout: str = "", *, stderr: str = "", exit: int = 0,
               when: tuple[str, ...] = (), create: str | None = None) -> None:
        """Answer calls of ``tool`` whose argv holds every word of ``when`` (the latest
        answer given is tried first)."""
        entry: dict[str, Any] = {"stdout": stdout, "stderr": stderr, "exit": exit,
                                 "when": list(when)}
        if create:
            entry["create"] = create
        self._answers.setdefault(tool, []).insert(0, entry)
        self._save()

    def calls(self, tool: str | None = None) -> list[list[str]]:
        path = self.root / "calls.jsonl"
        if not path.exists():
            return []
        calls = [json.loads(line) for line in path.read_text().splitlines()]
        return [call for call in calls if tool is None or call[0] == tool]

    def forget_calls(self) -> None:
        (self.root / "calls.jsonl").unlink(missing_ok=True)

    def _save(self) -> None:
        (self.root / "answers.json").write_text(json.dumps(self._answers))


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tools:
    fakes = Tools(tmp_path / "fakes")
    monkeypatch.setenv("PATH", f"{fakes.bin}{os.pathsep}{os.environ['PATH']}")
    return fakes


def status_reply(ready: bool, error: str = "") -> dict[str, Any]:
    """A protocol v1 ``status`` result about the database."""
    database: dict[str, Any] = {"path": "/Users/me/Library/Messages/chat.db", "ready": ready}
    if not ready:
        database["error"] = error or "authorization denied"
    return {"jsonrpc": "2.0", "id": "imsg-access-check", "result": {"database": database}}


class StatusServer:
    """Answers each request line with the next of ``replies`` (the last repeats)."""

    def __init__(self, path: Path, replies: list[dict[str, Any]]) -> None:
        self.path = path
        self.replies = replies
        self.requests: list[bytes] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # mode 0600, as the real server binds it
        try:
            self.sock.bind(str(path))
        finally:
            os.umask(old_umask)
        self.sock.listen(16)
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as stream:
                line = stream.readline()
                if not line:
                    continue
                self.requests.append(line)
                reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
                conn.sendall(json.dumps(reply).encode() + b"\n")

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        self.path.unlink(missing_ok=True)


@contextmanager
def status_server(path: Path, replies: list[dict[str, Any]]) -> Iterator[StatusServer]:
    server = StatusServer(path, replies)
    try:
        yield server
    finally:
        server.close()


PYTHON = "/opt/py/bin/python3"
IDENTITY_LIST = ('  1) 0123456789ABCDEF0123456789ABCDEF01234567 "imsg Local Signing"\n'
                 "     1 valid identities found\n")
SIGNED = ("Executable={exe}\nIdentifier=com.imsg.rpc\nFormat=app bundle with Mach-O thin "
          "(arm64)\nCodeDirectory v=20500 size=600 flags=0x10000(runtime) hashes=9+7 "
          "location=embedded\nCDHash={cdhash}\nAuthority=imsg Local Signing\n"
          "TeamIdentifier=not set\n")
ADHOC = ("Executable={exe}\nIdentifier=com.imsg.rpc\nCodeDirectory v=20400 size=600 "
         "flags=0x20002(adhoc,linker-signed) hashes=9+7 location=embedded\nCDHash={cdhash}\n"
         "Signature=adhoc\nTeamIdentifier=not set\n")
REQUIREMENT = ('Executable={exe}\ndesignated => identifier "com.imsg.rpc" and certificate '
               'root = H"{leaf}"\n')


def mac(tmp_path: Path, **env: str) -> Host:
    return Host("darwin", str(tmp_path / "home"), 501, env, PYTHON)


def linux(tmp_path: Path, **env: str) -> Host:
    return Host("linux", str(tmp_path / "home"), 1000, env, "/usr/bin/python3")


def with_clang(tools: Tools, exe: str, *, adhoc: bool = True, cdhash: str = "aa11",
               leaf: str = "ab12") -> None:
    """Command Line Tools installed; codesign describes a signature (ad hoc or by "imsg
    Local Signing") with this code hash and certificate."""
    tools.answer("xcode-select", "/Library/Developer/CommandLineTools\n")
    tools.answer("clang", create="file", when=("-o",))
    signature = (ADHOC if adhoc else SIGNED).format(exe=exe, cdhash=cdhash)
    tools.answer("codesign", stderr=signature, when=("-dv",))
    tools.answer("codesign", REQUIREMENT.format(exe=exe, leaf=leaf), when=("-r-",))
