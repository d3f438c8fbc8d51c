"""Reader benchmark: a 500,000-message / 5,000-chat database, as Messages would have written it.

A few chats hold most messages, 80% of rows have text NULL (the text only in attributedBody),
the newest rows of the largest chat carry attachments, tapbacks and links with their preview
rows. About 2,000 inbound rows are unread (a muted busy chat plus scattered recent ones), and
an AddressBook names four in five handles. Prints medians: ``chats`` (limit 20, with
``unread_count`` and contact names; also ``--unread-only``), ``history`` (limit 50,
attachments + tapbacks + folded previews + contact names) of the largest chat, a streamed
decode of every message (messages/s, peak RSS of that process), and the cold whole-process
time of ``imsg chats --json``.

    python bench/bench_reader.py [--messages 500000] [--chats 5000] [--rebuild]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from imsg.chatdb.reader import ChatDB
from imsg.chatdb.typedstream import encode_attributed_string
from imsg.sim.addressbook import SimAddressBook
from imsg.sim.messages import SimAttachment, SimDB

DATA = Path(__file__).resolve().parent / ".data"
WORDS = (
    "ok sure see you at the station tomorrow morning 🚆 did you get my message about dinner "
    "plans with everyone this weekend 🎉 lol that's great news"
).split()


def build(path: Path, messages: int, chats: int) -> None:
    """Write the database with the simulator's encoder, in bulk."""
    rng = random.Random(42)
    tmp = path.with_suffix(".tmp")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    sim = SimDB.create(str(tmp), "tahoe")
    chat_ids = [
        sim.chat([f"+1555{i:07d}"])
        if i % 10
        else sim.chat([f"+1555{i:07d}", f"user{i}@example.com"], name=f"Group {i}")
        for i in range(chats)
    ]
    handles = [
        int(
            sim.conn.execute(
                "SELECT handle_id FROM chat_handle_join WHERE chat_id = ?", (c,)
            ).fetchone()[0]
        )
        for c in chat_ids
    ]
    weights = [40, 20, 10] + [30 / (chats - 3)] * (chats - 3)
    start = sim.apple_now(time.time() - 365 * 86400)
    step = (365 * 86400 * 10**9) // messages
    sim.conn.execute("BEGIN")
    batch: list[tuple] = []
    joins: list[tuple] = []
    picks = rng.choices(range(chats), weights=weights, k=messages)
    for n, pick in enumerate(picks, start=1):
        text = " ".join(rng.choices(WORDS, k=rng.randint(2, 14)))
        date = start + n * step
        from_me = rng.random() < 0.4
        batch.append(
            (
                str(uuid.UUID(int=rng.getrandbits(128))).upper(),
                None if rng.random() < 0.8 else text,
                encode_attributed_string(text),
                handles[pick],
                "iMessage",
                date,
                int(from_me),
                int(not from_me),
                "me@icloud.com",
            )
        )
        joins.append((chat_ids[pick], n, date))
        if len(batch) == 20_000:
            _flush(sim, batch, joins)
    _flush(sim, batch, joins)
    sim.conn.execute("COMMIT")
    _unread(sim, chat_ids[2], messages)
    largest, member = chat_ids[0], "+15550000000"
    for i in range(60):  # the newest rows of the largest chat: files, tapbacks, links
        row = sim.receive(
            largest,
            member,
            "look at this",
            attachments=[SimAttachment("photo.jpg", create_file=False)],
        )
        sim.react(largest, row, "love", from_me=True)
        if i % 3 == 0:
            link = f"https://example.com/{i}"
            sim.receive(largest, member, f"and read {link}", is_read=i % 2)
            sim.url_preview(largest, link, sender=member, title=f"Page {i}")
    sim.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    sim.close()
    os.replace(tmp, path)


def _unread(sim: SimDB, muted: int, messages: int) -> None:
    """Unread inbound rows (about 2,000): every one of a muted busy chat's last 5%, and 2% of
    the others in the newest 10% of the history."""
    sim.conn.execute(
        "UPDATE message SET is_read = 0, date_read = 0 WHERE is_from_me = 0 AND ROWID > ?"
        " AND ROWID IN (SELECT message_id FROM chat_message_join WHERE chat_id = ?)",
        (int(messages * 0.95), muted),
    )
    sim.conn.execute(
        "UPDATE message SET is_read = 0, date_read = 0 WHERE is_from_me = 0 AND ROWID > ?"
        " AND abs(random() % 50) = 0", (int(messages * 0.9),)
    )


def build_contacts(directory: Path, chats: int) -> None:
    """An AddressBook naming four in five of the chats' phone handles (typed the way people
    type them)."""
    book = SimAddressBook.create_at(str(directory))
    for i in range(chats):
        if i % 5 == 4:
            continue
        number = f"{i:07d}"
        book.add_contact(first=f"Person{i}", last="Example",
                         phones=[f"+1 (555) {number[:3]}-{number[3:]}"])


def _flush(sim: SimDB, batch: list[tuple], joins: list[tuple]) -> None:
    sim.conn.executemany(
        "INSERT INTO message (guid, text, attributedBody, handle_id, service, date, is_from_me,"
        " is_read, destination_caller_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        batch,
    )
    sim.conn.executemany(
        "INSERT INTO chat_message_join (chat_id, message_id, message_date) VALUES (?, ?, ?)", joins
    )
    batch.clear()
    joins.clear()


def median_ms(func, runs: int = 31) -> float:
    func()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        func()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


STREAM = """
import resource, sys, time
from imsg.chatdb.reader import ChatDB
db = ChatDB(sys.argv[1])
t = time.perf_counter()
n = sum(1 for _ in db.iter_texts())
s = time.perf_counter() - t
print(n, s, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=500_000)
    parser.add_argument("--chats", type=int, default=5_000)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    path = DATA / f"reader-v2-{args.messages}-{args.chats}.db"
    book = DATA / f"addressbook-v2-{args.chats}"
    if args.rebuild or not path.exists():
        t = time.perf_counter()
        build(path, args.messages, args.chats)
        print(f"built {path.name} in {time.perf_counter() - t:.1f}s")
    if args.rebuild or not book.exists():
        shutil.rmtree(book, ignore_errors=True)
        build_contacts(book, args.chats)
    os.environ["IMSG_ADDRESSBOOK_DIR"] = str(book)

    with ChatDB(str(path)) as db:
        largest = db.chats(limit=1)[0].id
        chats_ms = median_ms(lambda: db.chats(20))
        unread_ms = median_ms(lambda: db.chats(20, unread_only=True))
        history_ms = median_ms(lambda: db.history(largest, limit=50))
        page = db.chats(20)
        assert sum(c.contact_name is not None for c in page) >= 5
        assert sum(c.unread_count or 0 for c in page) > 1000
        sample = db.history(largest, limit=50)
        assert sum(m.url_preview is not None for m in sample) >= 10
        assert sum(m.sender_name is not None for m in sample) == 50
        assert sum(bool(m.reactions) for m in sample) >= 35
    print(f"chats (limit 20, unread + contacts): {chats_ms:7.2f} ms median   (target <= 10 ms)")
    print(f"chats --unread-only (limit 20):      {unread_ms:7.2f} ms median")
    print(f"history (limit 50, files, tapbacks,  {history_ms:7.2f} ms median   (target <= 5 ms)")
    print("         previews, contacts)")

    runs = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", STREAM, str(path)], capture_output=True, text=True, check=True
        ).stdout.split()
        runs.append((int(out[0]) / float(out[1]), float(out[2])))
    rate = statistics.median(r for r, _ in runs)
    peak = max(m for _, m in runs)
    print(
        f"streamed decode of every message:    {rate:9,.0f} msg/s, peak RSS {peak:.0f} MB"
        "   (target >= 300,000 msg/s, <= 100 MB)"
    )

    imsg = [sys.executable, "-m", "imsg", "chats", "--json", "--db", str(path)]
    cold = []
    for _ in range(11):
        t = time.perf_counter()
        subprocess.run(imsg, capture_output=True, check=True)
        cold.append((time.perf_counter() - t) * 1000)
    print(
        f"cold `imsg chats --json` (process):  {statistics.median(cold):7.1f} ms median"
        "   (target <= 150 ms)"
    )


if __name__ == "__main__":
    main()
