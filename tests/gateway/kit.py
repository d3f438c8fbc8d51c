"""Helpers for gateway tests: config files, fake children, message builders, a runner."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imsg.gateway.config import AccountConfig, GatewayConfig, load_config
from imsg.gateway.handlers import Answer, Handler, parse_answer
from imsg.gateway.runner import Gateway

FAKECHILD = Path(__file__).with_name("fakechild.py")
ME = "me@icloud.com"


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(value)


def write_config(path: Path, section: dict[str, Any]) -> Path:
    """``[imessage]`` with ``section``'s keys (tables inline)."""
    lines = ["[imessage]"] + [f"{json.dumps(k)} = {toml_value(v)}" for k, v in section.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def account(tmp: Path, **keys: Any) -> AccountConfig:
    """The resolved ``default`` account of a config with ``keys``."""
    return load_config(str(write_config(tmp / f"cfg{time.monotonic_ns()}.toml",
                                        keys))).account(None)


def message(rowid: int, text: str = "hi", *, sender: str = "+15550001111",
            chat_id: int | None = 1, is_group: bool = False, is_from_me: bool = False,
            **extra: Any) -> dict[str, Any]:
    """A notification ``message`` as imsg sends it."""
    base: dict[str, Any] = {
        "id": rowid, "guid": f"GUID-{rowid}", "chat_id": chat_id, "sender": sender,
        "is_from_me": is_from_me, "text": text,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "attachments": [], "reactions": [], "destination_caller_id": ME,
        "chat_identifier": "chat123" if is_group else sender,
        "chat_guid": f"iMessage;{'+' if is_group else '-'};"
                     f"{'chat123' if is_group else sender}",
        "chat_name": "Team" if is_group else "", "participants": [sender],
        "is_group": is_group,
    }
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


@dataclass
class Fake:
    """A fake child in ``folder``: ``cli`` is its cliPath, ``db`` its dbPath."""

    folder: Path
    cli: str
    db: str

    def modes(self, *modes: dict[str, Any]) -> None:
        (self.folder / "mode.json").write_text(json.dumps(list(modes) or [{}]))

    def add(self, *messages: dict[str, Any]) -> None:
        with open(self.folder / "messages.jsonl", "a") as fh:
            for item in messages:
                fh.write(json.dumps(item) + "\n")

    def requests(self, method: str | None = None) -> list[dict[str, Any]]:
        path = self.folder / "requests.jsonl"
        if not path.exists():
            return []
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [r for r in rows if method is None or r["method"] == method]

    def sends(self) -> list[dict[str, Any]]:
        return [r["params"] for r in self.requests("send")]

    @property
    def starts(self) -> int:
        path = self.folder / "starts"
        return len(path.read_text().splitlines()) if path.exists() else 0


def make_fake(tmp: Path, *modes: dict[str, Any], name: str = "fake") -> Fake:
    folder = tmp / name
    folder.mkdir(parents=True, exist_ok=True)
    cli = folder / "imsg-fake"
    cli.write_text(f"#!{sys.executable} -S\nimport runpy, sys\n"
                   f"sys.argv[0] = {str(FAKECHILD)!r}\n"
                   f"runpy.run_path({str(FAKECHILD)!r}, run_name='__main__')\n")
    cli.chmod(cli.stat().st_mode | stat.S_IEXEC)
    fake = Fake(folder, str(cli), str(folder / "chat.db"))
    fake.modes(*(modes or ({},)))
    return fake


FAST = {"restartInitialMs": 20, "restartMaxMs": 100, "probeTimeoutMs": 2000,
        "healthIntervalMs": 60_000, "shutdownGraceMs": 5000}


def fake_config(tmp: Path, fake: Fake, **keys: Any) -> GatewayConfig:
    section = {"cliPath": fake.cli, "dbPath": fake.db, "dmPolicy": "open", "allowFrom": ["*"],
               **FAST, **keys}
    return load_config(str(write_config(tmp / "gateway.toml", section)))


@dataclass
class Recorder:
    """A handler that records envelopes and answers with ``reply(envelope)``."""

    reply: Callable[[dict[str, Any]], Any] = lambda env: None
    envelopes: list[dict[str, Any]] = field(default_factory=list)
    delay_s: float = 0.0

    async def __call__(self, envelope: dict[str, Any]) -> Answer:
        self.envelopes.append(envelope)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return parse_answer(self.reply(envelope),
                            inbound_guid=str(envelope["message"].get("guid", "")))

    @property
    def texts(self) -> list[str]:
        return [e["text"] for e in self.envelopes]


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0,
                   what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def with_gateway(config: GatewayConfig, state_dir: Path, handler: Handler | None,
                       body: Callable[[Gateway], Awaitable[None]], *,
                       env: dict[str, str] | None = None) -> Gateway:
    """Start a gateway (every account using ``handler``), run ``body``, stop it cleanly."""
    gateway = Gateway(config, str(state_dir), env=env,
                      handler_factory=lambda _account: handler)
    await gateway.start()
    try:
        await body(gateway)
    finally:
        await gateway.stop()
    return gateway


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


def env_with_path(*dirs: Path) -> dict[str, str]:
    return {**os.environ, "PATH": os.pathsep.join([*map(str, dirs), os.environ["PATH"]])}
