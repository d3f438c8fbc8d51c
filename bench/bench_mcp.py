"""MCP server benchmark: ``imsg mcp`` as a child process, driven by the MCP SDK's own client
over stdio, on a simulator database with an AddressBook.

Prints, each with its target:

- latency of ``read_messages`` (50 messages of a busy group chat: reactions, replies,
  attachments, contact names) through the full MCP round trip, median and p95, and the same
  work done in process without the protocol (the floor) in the same run;
- latency of ``search_messages`` through the round trip: a word in about one message in ten,
  and a word in none (every one of the 13,000 rows is read), and of ``find_chat`` by a
  misspelt name;
- latency of ``list_attachments`` through the round trip: the group chat's 20 newest images
  (against the same work in process, in the same run), the 20 newest attachments of every
  chat, and a kind no attachment has (every attachment is read);
- the size of the ``read_messages`` answer a model reads (characters of its text content)
  against a JSON dump of the same 50 messages as ``imsg history --json`` / RPC
  ``messages.history`` write them, measured in the same run, and the size of its structured
  content.

    python bench/bench_mcp.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from imsg.chatdb.models import to_json
from imsg.chatdb.reader import ChatDB
from imsg.mcp import attachments, reading
from imsg.sim.addressbook import SimAddressBook
from imsg.sim.messages import SimAttachment, SimDB

GROUP = ["+15555550101", "+15555550102", "jo@example.com", "+15555550104", "sam@example.com"]
NAMES = [("Alice", "Appleseed"), ("Robert", "Baker"), ("Jo", "Jimenez"), ("Dana", "Diaz"),
         ("Sam", "Suzuki")]
WORDS = ("sounds good", "running late, start without me", "who is bringing dessert?",
         "the table is booked for eight", "can someone pick up the wine",
         "I'll be there in ten minutes", "did anyone see the game last night",
         "parking is a nightmare here", "love this place", "next time my treat")


def build(root: Path, group_messages: int, direct_chats: int, per_direct: int) -> tuple[str, str,
                                                                                         int]:
    """The database (a busy group chat plus direct chats), its AddressBook, the group's id."""
    db_path = str(root / "chat.db")
    sim = SimDB.create(db_path, "ventura")
    start = time.time() - 86_400 * 30
    with sim.conn:
        group = sim.chat(GROUP, name="Dinner Club")
        recent: list[int] = []
        for i in range(group_messages):
            at = start + i * 40
            text = WORDS[i % len(WORDS)] + (" — dinner on Friday?" if i % 10 == 0 else "")
            kwargs: dict[str, Any] = {"at": at}
            if i % 11 == 5 and recent:
                kwargs["thread_originator"] = recent[-3]
            if i % 13 == 7:
                kwargs["attachments"] = [SimAttachment(f"IMG_{i:04d}.jpeg", size=2_400_000,
                                                       create_file=False)]
            if i % 3 == 0:
                rowid = sim.send(group, text, **kwargs)
            else:
                rowid = sim.receive(group, GROUP[i % len(GROUP)], text, **kwargs)
            if i % 7 == 2:
                sim.react(group, rowid, ("love", "like", "laugh")[i % 3],
                          sender=GROUP[(i + 1) % len(GROUP)], at=at + 5)
            recent.append(rowid)
        for c in range(direct_chats):
            handle = f"+1555555{c:04d}"
            chat = sim.chat([handle])
            for i in range(per_direct):
                text = WORDS[(i + c) % len(WORDS)] + (" dinner" if i % 10 == 3 else "")
                at = start + i * 300 + c
                (sim.send if i % 2 else sim.receive)(chat, *(() if i % 2 else (handle,)), text,
                                                     at=at)
    sim.close()
    book = SimAddressBook.create_at(str(root / "AddressBook"))
    for (first, last), handle in zip(NAMES, GROUP, strict=True):
        if "@" in handle:
            book.add_contact(first=first, last=last, emails=[handle])
        else:
            book.add_contact(first=first, last=last, phones=[handle])
    for c in range(direct_chats):
        book.add_contact(first=f"Friend{c}", last="Example", phones=[f"+1555555{c:04d}"])
    return db_path, book.directory, group


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


async def round_trips(db_path: str, env: dict[str, str], group: int,
                      runs: int) -> dict[str, Any]:
    params = StdioServerParameters(command=sys.executable, env=env,
                                   args=["-m", "imsg", "mcp", "--db", db_path, "--read-only"])
    out: dict[str, Any] = {}
    with open(os.devnull, "w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            calls: dict[str, tuple[str, dict[str, Any]]] = {
                "read_messages": ("read_messages", {"chat_id": group, "limit": 50}),
                "search_messages": ("search_messages", {"query": "dinner", "limit": 20}),
                "search_miss": ("search_messages", {"query": "zebra crossing"}),
                "find_chat": ("find_chat", {"query": "Jo Jimenz"}),
                "list_attachments": ("list_attachments", {"chat_id": group, "kind": "image"}),
                "list_everywhere": ("list_attachments", {}),
                "list_miss": ("list_attachments", {"kind": "video"}),
            }
            for label, (tool, arguments) in calls.items():
                await client.call_tool(tool, arguments)  # warm: contacts, page cache
                times = []
                result = None
                for _ in range(runs):
                    begun = time.perf_counter()
                    result = await client.call_tool(tool, arguments)
                    times.append((time.perf_counter() - begun) * 1000)
                assert result is not None and not result.is_error, text_of(result)
                out[label] = (times, result)
    return out


def floor(db_path: str, addressbook: str, work: Callable[[ChatDB], object],
          runs: int) -> list[float]:
    """A tool's work in process, without the protocol: the same work, nothing else."""
    os.environ["IMSG_ADDRESSBOOK_DIR"] = addressbook
    times = []
    with ChatDB(db_path) as db:
        work(db)
        for _ in range(runs):
            begun = time.perf_counter()
            work(db)
            times.append((time.perf_counter() - begun) * 1000)
    return times


def json_dump_chars(db_path: str, group: int) -> int:
    """The same 50 messages as ``imsg history --json --attachments`` writes them."""
    with ChatDB(db_path) as db:
        messages = db.history(group, limit=50)
    return sum(len(to_json(m).decode()) + 1 for m in messages)


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller loads, for a smoke run")
    quick = parser.parse_args().quick
    runs = 20 if quick else 100
    missed = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = root / "home"
        home.mkdir()
        db_path, addressbook, group = build(root, 1_000 if quick else 5_000, 40, 200)
        env = {"HOME": str(home), "PATH": os.environ.get("PATH", ""),
               "IMSG_ADDRESSBOOK_DIR": addressbook}
        measured = asyncio.run(round_trips(db_path, env, group, runs))
        base = floor(db_path, addressbook,
                     lambda db: reading.read_messages(db, chat_id=group, limit=50), runs)
        list_base = floor(db_path, addressbook, lambda db: attachments.list_attachments(
            db, chat_id=group, kind="image"), runs)
        dump = json_dump_chars(db_path, group)
    read_times, read_result = measured["read_messages"]
    p50, p95, base50 = (statistics.median(read_times), percentile(read_times, 0.95),
                        statistics.median(base))
    missed += p50 > 50
    print(f"read_messages (50) round trip    p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  "
          f"(in process {base50:.1f} ms, x{p50 / base50:.1f})  target p50 <= 50 ms  "
          f"{verdict(p50 <= 50)}")
    search_times, _ = measured["search_messages"]
    s50, s95 = statistics.median(search_times), percentile(search_times, 0.95)
    missed += s50 > 100
    print(f"search_messages round trip       p50 {s50:6.1f} ms  p95 {s95:6.1f} ms  "
          f"target p50 <= 100 ms  {verdict(s50 <= 100)}")
    miss_times, _ = measured["search_miss"]
    m50 = statistics.median(miss_times)
    missed += m50 > 250
    print(f"search_messages, no match        p50 {m50:6.1f} ms  (every row read)     "
          f"target p50 <= 250 ms  {verdict(m50 <= 250)}")
    find_times, _ = measured["find_chat"]
    f50 = statistics.median(find_times)
    missed += f50 > 100
    print(f"find_chat (misspelt) round trip  p50 {f50:6.1f} ms                "
          f"target p50 <= 100 ms  {verdict(f50 <= 100)}")
    list_times, list_result = measured["list_attachments"]
    l50, l95, lbase = (statistics.median(list_times), percentile(list_times, 0.95),
                       statistics.median(list_base))
    missed += l50 > 50
    print(f"list_attachments (20 images)     p50 {l50:6.1f} ms  p95 {l95:6.1f} ms  "
          f"(in process {lbase:.1f} ms, x{l50 / lbase:.1f}; {len(text_of(list_result))} chars)"
          f"  target p50 <= 50 ms  {verdict(l50 <= 50)}")
    every50 = statistics.median(measured["list_everywhere"][0])
    none50 = statistics.median(measured["list_miss"][0])
    missed += every50 > 50 or none50 > 100
    print(f"list_attachments, all chats / none of that kind  p50 {every50:6.1f} ms / "
          f"{none50:6.1f} ms (every attachment read)  target p50 <= 50 / 100 ms  "
          f"{verdict(every50 <= 50 and none50 <= 100)}")
    text = len(text_of(read_result))
    structured = len(json.dumps(read_result.structured_content, ensure_ascii=False,
                                separators=(",", ":")))
    share = text / dump
    missed += share > 0.35
    print(f"answer read by the model         {text:6d} chars vs JSON dump {dump} chars "
          f"({share:.0%}; structured content {structured} chars)  target <= 35%  "
          f"{verdict(share <= 0.35)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
