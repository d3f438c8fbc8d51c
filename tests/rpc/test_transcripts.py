"""Transcripts (``tests/rpc/*.txt``) replayed against ``imsg rpc`` on a simulator database.

Format, one instruction per line (blank lines and ``#`` comments ignored)::

    --> TEXT          send TEXT and a newline, verbatim (so it may be invalid JSON or empty)
    <-- PATTERN       expect one stdout line matching PATTERN (see harness.matches); the
                      ``<--`` lines after a group of ``-->`` lines may arrive in any order
    !! raw B          send the Python bytes literal B verbatim (CRLF, invalid UTF-8, …)
    !! db missing     (first) serve a database path that does not exist
    !! env K=V        (first) extra environment for the server
    !! receive chat=N from=H text=T as=NAME
                      Messages receives a message (simulator); {NAME} becomes its ROWID
    !! eof            close stdin (expectations may follow: answers still on their way)

``{db}`` stands for the database path. Every transcript ends with an implicit ``!! eof``,
after which the server must exit 0 with no output beyond the expected lines.
"""

from __future__ import annotations

import ast
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from imsg.sim.messages import SimDB
from tests.rpc.harness import Rpc, demo_db, match_unordered, sim_env

HERE = Path(__file__).parent
TRANSCRIPTS = sorted(HERE.glob("*.txt"))


@dataclass
class Step:
    line: int
    kind: str  # "send" | "expect" | "receive" | "eof"
    text: str = ""
    args: dict[str, str] = field(default_factory=dict)


@dataclass
class Transcript:
    steps: list[Step]
    missing_db: bool = False
    env: dict[str, str] = field(default_factory=dict)


def parse(path: Path) -> Transcript:
    script = Transcript([])
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if raw.startswith("-->"):
            script.steps.append(Step(number, "send", raw[4:] if len(raw) > 3 else ""))
        elif raw.startswith("<--"):
            script.steps.append(Step(number, "expect", raw[4:]))
        elif raw.startswith("!! "):
            word, _, rest = raw[3:].partition(" ")
            if word == "raw":
                script.steps.append(Step(number, "raw", rest))
            elif word == "db":
                script.missing_db = rest.strip() == "missing"
            elif word == "env":
                key, _, value = rest.partition("=")
                script.env[key.strip()] = value.strip()
            elif word in ("receive", "eof"):
                args = dict(part.split("=", 1) for part in shlex.split(rest))
                script.steps.append(Step(number, word, args=args))
            else:
                raise ValueError(f"{path.name}:{number}: unknown directive {word!r}")
        elif raw.strip() and not raw.startswith("#"):
            raise ValueError(f"{path.name}:{number}: cannot parse {raw!r}")
    return script


def substitute(text: str, names: dict[str, str]) -> str:
    for name, value in names.items():
        text = text.replace("{" + name + "}", value)
    return text


def check_end(rpc: Rpc, where: str) -> None:
    code, rest = rpc.finish()
    assert rest == [], f"{where}: unexpected output after the last expectation: {rest!r}"
    assert code == 0, f"{where}: exit status {code}; stderr: {rpc.stderr!r}"


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=[p.stem for p in TRANSCRIPTS])
def test_transcript(path: Path, tmp_path: Path) -> None:
    script = parse(path)
    db = str(tmp_path / "nowhere" / "chat.db") if script.missing_db else \
        demo_db(tmp_path / "chat.db")
    names = {"db": json.dumps(db)[1:-1]}
    rpc = Rpc("--db", db, env=sim_env(db, **script.env))
    try:
        expected: list[tuple[int, str]] = []
        for step in [*script.steps, Step(0, "end")]:
            if step.kind != "expect" and expected:
                values = [rpc.recv() for _ in expected]
                patterns = [json.loads(substitute(text, names)) for _, text in expected]
                where = f"{path.name}:{expected[0][0]}"
                assert match_unordered(patterns, values), \
                    f"{where}: expected (any order)\n{patterns}\ngot\n{values}"
                expected = []
            where = f"{path.name}:{step.line}"
            if step.kind == "send":
                rpc.write(substitute(step.text, names).encode() + b"\n")
            elif step.kind == "raw":
                rpc.write(ast.literal_eval(step.text))
            elif step.kind == "expect":
                expected.append((step.line, step.text))
            elif step.kind == "receive":
                sim = SimDB(db)
                try:
                    rowid = sim.receive(int(step.args["chat"]), step.args["from"],
                                        step.args["text"])
                finally:
                    sim.close()
                names[step.args["as"]] = str(rowid)
            elif step.kind == "eof":
                rpc.close_stdin()
        check_end(rpc, f"{path.name}:end")
    finally:
        rpc.kill()


def test_every_transcript_parses() -> None:
    assert len(TRANSCRIPTS) >= 6
    for path in TRANSCRIPTS:
        assert any(step.kind == "expect" for step in parse(path).steps), path.name
