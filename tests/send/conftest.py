"""Sends go end to end: IMSG_OSASCRIPT names an executable that runs the simulated Messages
(``imsg.sim.osascript``) on the ``sim`` database, or a recorder that only notes what it got."""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import imsg
from imsg.send import children
from imsg.sim.messages import SimDB

SRC = Path(imsg.__file__).resolve().parents[1]
ALICE = "+15555550101"
BOB = "+15555550102"
CAROL = "carol@example.com"

# Notes argv and stdin; with a third argument "forward", then plays the simulated Messages,
# else reports success as the scripts do (and Messages writes nothing).
_RECORDER = """\
import io, json, sys
log, forward, args = sys.argv[1], sys.argv[2], sys.argv[3:]
source = sys.stdin.buffer.read()
with open(log, "w") as fh:
    json.dump({"argv": args, "stdin": source.decode()}, fh)
if forward == "forward":
    from imsg.sim.osascript import main
    sys.stdin = io.TextIOWrapper(io.BytesIO(source))
    sys.exit(main(args))
print("IMSG_RESULT\\tok\\tcompleted\\t0")
"""


def write_executable(path: Path, command: str) -> Path:
    path.write_text(
        "#!/bin/sh\n"
        f"export PYTHONPATH={shlex.quote(str(SRC))}${{PYTHONPATH:+:$PYTHONPATH}}\n"
        f"exec {command}\n"
    )
    path.chmod(0o755)
    return path


@pytest.fixture(autouse=True)
def no_addressbook_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """Contacts are read from the temporary HOME only."""
    monkeypatch.delenv("IMSG_ADDRESSBOOK_DIR", raising=False)


@pytest.fixture(autouse=True)
def fresh_children(monkeypatch: pytest.MonkeyPatch) -> children.Registry:
    """Each test gets its own registry of osascript children, so stopping them in one test
    (``terminate_all`` refuses new children from then on) cannot affect the next."""
    registry = children.Registry()
    monkeypatch.setattr(children, "REGISTRY", registry)
    return registry


@dataclass
class World:
    """The simulated Messages database with a group, a direct chat and an SMS-only contact."""

    db: SimDB
    group: int
    alice: int
    sms_contact: int

    @property
    def path(self) -> str:
        return self.db.path


@pytest.fixture
def world(sim: SimDB, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    group = sim.chat([ALICE, BOB], name="Team")
    sim.receive(group, ALICE, "hello team")
    alice = sim.chat([ALICE])
    sim.receive(alice, ALICE, "hi, it's alice")
    sms_contact = sim.chat(["+15555550199"], service="SMS")
    sim.receive(sms_contact, "+15555550199", "sms only")
    osascript = write_executable(tmp_path / "osascript",
                                 f'{shlex.quote(sys.executable)} -m imsg.sim.osascript "$@"')
    monkeypatch.setenv("IMSG_OSASCRIPT", str(osascript))
    monkeypatch.setenv("IMSG_SIM_DB", sim.path)
    monkeypatch.delenv("IMSG_SIM_FAIL", raising=False)
    return World(sim, group, alice, sms_contact)


@dataclass
class Recorder:
    """An osascript that records its argv and stdin, then exits 0 (``recorder``: writing
    nothing) or runs the simulated Messages (``spy``)."""

    log: Path

    @property
    def ran(self) -> bool:
        return self.log.exists()

    def call(self) -> dict[str, object]:
        data: dict[str, object] = json.loads(self.log.read_text())
        return data


def _install_recorder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> Recorder:
    script = tmp_path / "recorder.py"
    script.write_text(_RECORDER)
    log = tmp_path / "osascript-call.json"
    command = " ".join(shlex.quote(str(part)) for part in (sys.executable, script, log, mode))
    executable = write_executable(tmp_path / "recorder", f'{command} "$@"')
    monkeypatch.setenv("IMSG_OSASCRIPT", str(executable))
    return Recorder(log)


@pytest.fixture
def recorder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    return _install_recorder(tmp_path, monkeypatch, "record")


@pytest.fixture
def spy(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    return _install_recorder(tmp_path, monkeypatch, "forward")
