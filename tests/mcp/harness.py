"""Driving ``imsg mcp`` with the SDK's own client over stdio, from synchronous tests.

``Session`` starts ``python -m imsg mcp …`` as the MCP SDK's ``Client`` does for a host and
keeps the connection on an event loop in a background thread, so one server serves a whole
test module; ``call`` and ``start`` hand coroutines to that loop. The world it runs in:
``world`` builds a simulated chat.db (the demo history at a fixed clock, plus unread messages
and a real JPEG attachment) and an AddressBook naming its people.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp_types import CallToolResult

from imsg.sim.addressbook import SimAddressBook, fill_demo_contacts
from imsg.sim.demo import ALICE, BOB, fill_demo
from imsg.sim.messages import SimAttachment, SimDB

CALL_TIMEOUT_S = 30.0
DEMO_NOW = 1_770_000_000.0  # 2026-02-02T02:40:00Z: the demo history's clock
SIM_OSASCRIPT = str(Path(sys.executable).with_name("imsg-sim-osascript"))
T = TypeVar("T")


@dataclass
class World:
    root: Path
    db: str
    addressbook: str
    chats: dict[str, int]
    photo: int  # the message carrying a real JPEG
    unread: list[int]  # unread incoming messages, oldest first

    def env(self, **extra: str) -> dict[str, str]:
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        return {"HOME": str(home), "PATH": os.environ.get("PATH", ""), "TZ": "UTC",
                "IMSG_ADDRESSBOOK_DIR": self.addressbook, "IMSG_OSASCRIPT": SIM_OSASCRIPT,
                "IMSG_SIM_DB": self.db, "PYTHONDONTWRITEBYTECODE": "1", **extra}


def make_world(root: Path, schema: str = "ventura") -> World:
    from PIL import Image

    db = str(root / "chat.db")
    sim = SimDB.create(db, schema)
    try:
        chats = fill_demo(sim, now=DEMO_NOW)
        photo = sim.receive(chats["trip"], BOB, "the view", at=DEMO_NOW + 10,
                            attachments=[SimAttachment("view.jpg", size=10)])
        path = sim.conn.execute(
            "SELECT a.filename FROM attachment a JOIN message_attachment_join j"
            " ON j.attachment_id = a.ROWID WHERE j.message_id = ?", (photo,)).fetchone()[0]
        Image.new("RGB", (3000, 2000), (200, 30, 30)).save(os.path.expanduser(path), "JPEG")
        unread = [sim.receive(chats["alice"], ALICE, text, at=DEMO_NOW + 20 + i, is_read=0,
                              date_read=0)
                  for i, text in enumerate(("are you there?", "call me when you can"))]
    finally:
        sim.close()
    book = SimAddressBook.create_at(str(root / "AddressBook"))
    fill_demo_contacts(book)
    return World(root, db, book.directory, chats, photo, unread)


class Session:
    """One ``imsg mcp`` child and the SDK client connected to it."""

    def __init__(self, *args: str, env: dict[str, str], stderr: Path) -> None:
        self.stderr_path = stderr
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._stop = asyncio.Event()
        self._ready: Future[Client] = Future()
        self._done = self.start(self._hold(args, env))
        self.client = self._ready.result(CALL_TIMEOUT_S)

    async def _hold(self, args: tuple[str, ...], env: dict[str, str]) -> None:
        params = StdioServerParameters(command=sys.executable, args=["-m", "imsg", "mcp", *args],
                                       env=env)
        try:
            with open(self.stderr_path, "w") as errlog:
                async with Client(stdio_client(params, errlog=errlog)) as client:
                    self._ready.set_result(client)
                    await self._stop.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def start(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT_S) -> T:
        return self.start(coroutine).result(timeout)

    def call(self, tool: str, **arguments: Any) -> CallToolResult:
        return self.run(self.client.call_tool(tool, arguments))

    def text(self, tool: str, **arguments: Any) -> str:
        """The text of a successful call (fails the test on a tool error)."""
        result = self.call(tool, **arguments)
        assert not result.is_error, result.content
        return content_text(result)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        try:
            self._done.result(CALL_TIMEOUT_S)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CALL_TIMEOUT_S)


def content_text(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content
                     if getattr(block, "type", "") == "text")
