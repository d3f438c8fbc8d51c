"""Reader benchmark: a 500,000-message / 5,000-chat database, as Messages would have written it.

A few chats hold most messages, 80% of rows have text NULL (the text only in attributedBody),
the newest rows of the largest chat carry attachments and tapbacks. Prints medians:
``chats`` (limit 20), ``history`` (limit 50, attachments + reactions) of the largest chat,
a streamed decode of every message (messages/s, peak RSS of that process), and the cold
whole-process time of ``imsg chats --json``.

    python bench/bench_reader.py [--messages 500000] [--chats 5000] [--rebuild]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from imsg.chatdb.reader import ChatDB
from imsg.chatdb.typedstream import encode_attributed_string
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
    largest = chat_ids[0]
    for _ in range(60):  # the newest rows of the largest chat: files and tapbacks
        row = sim.receive(
            largest,
            None,
            "look at this",
            attachments=[SimAttachment("photo.jpg", create_file=False)],
        )
        sim.react(largest, row, "love", from_me=True)
    sim.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    sim.close()
    os.replace(tmp, path)


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
    path = DATA / f"reader-{args.messages}-{args.chats}.db"
    if args.rebuild or not path.exists():
        t = time.perf_counter()
        build(path, args.messages, args.chats)
        print(f"built {path.name} in {time.perf_counter() - t:.1f}s")

    with ChatDB(str(path)) as db:
        largest = db.chats(limit=1)[0].id
        chats_ms = median_ms(lambda: db.chats(20))
        history_ms = median_ms(lambda: db.history(largest, limit=50))
        sample = db.history(largest, limit=50)
        assert sum(bool(m.attachments) for m in sample) == 50
        assert sum(bool(m.reactions) for m in sample) == 50
    print(f"chats (limit 20):                    {chats_ms:7.2f} ms median   (target <= 10 ms)")
    print(f"history (limit 50, files+tapbacks):  {history_ms:7.2f} ms median   (target <= 5 ms)")

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
