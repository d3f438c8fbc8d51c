"""Search benchmark: the full-text index against the scan, on the 500,000-message database.

Works on a copy of bench_reader's database (built first if missing), with the index in a
temporary cache directory. Prints, each with its target:

- the index build (messages/s) and the index size;
- warm searches through the index, median of 21 runs per query, beside the scan (median of 3)
  as a ratio: a word that is not there (the scan's worst case), common and rare words, a
  phrase, one and two characters (present and absent), an exact whole text, a chat filter.
  The target applies to the slowest of them;
- catching up 1,000 new rows: the first search after they were written, median of 7 rounds.

    python bench/bench_search.py [--messages 500000] [--chats 5000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_reader import DATA, build

QUERIES = (  # (label, query, match, chat: None or "largest")
    ("absent word", "xyzzy", "contains", None),
    ("common word", "station", "contains", None),
    ("rare word", "lol that", "contains", None),
    ("phrase", "dinner plans with", "contains", None),
    ("two characters", "ok", "contains", None),
    ("one absent character", "q", "contains", None),
    ("exact whole text", "see you", "exact", None),
    ("absent word, largest chat", "xyzzy", "contains", "largest"),
    ("common word, largest chat", "weekend", "contains", "largest"),
)
SEARCH_TARGET_MS = 20.0
BUILD_TARGET = 100_000
CATCH_UP_TARGET_MS = 20.0


def median_ms(func: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500_000)
    parser.add_argument("--chats", type=int, default=5_000)
    args = parser.parse_args()
    source = DATA / f"reader-{args.messages}-{args.chats}.db"
    if not source.exists():
        DATA.mkdir(exist_ok=True)
        build(source, args.messages, args.chats)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["IMSG_CACHE_DIR"] = str(Path(tmp) / "cache")
        path = Path(tmp) / "chat.db"
        shutil.copyfile(source, path)
        return run(str(path))


def run(path: str) -> int:
    import imsg.index
    from imsg.chatdb.reader import ChatDB
    from imsg.sim.messages import SimDB

    missed = 0
    with ChatDB(path) as db:
        info = imsg.index.update(db, rebuild=True)
        rate = info.rows / info.seconds
        missed += rate < BUILD_TARGET
        print(f"index build: {info.rows:,} messages in {info.seconds:.2f}s, {rate:,.0f} msg/s"
              f"   target >= {BUILD_TARGET:,}  {verdict(rate >= BUILD_TARGET)}")
        print(f"index size: {info.bytes / 1e6:.1f} MB"
              f" ({info.bytes / os.path.getsize(path):.0%} of chat.db's"
              f" {os.path.getsize(path) / 1e6:.0f} MB)")
        largest = db.chats(limit=1)[0].id
        worst = 0.0
        for label, query, match, chat in QUERIES:
            chat_id = largest if chat else None

            def indexed(q: str = query, m: str = match, c: int | None = chat_id) -> object:
                return imsg.index.search(db, q, match=m, chat_id=c)

            def scanned(q: str = query, m: str = match, c: int | None = chat_id) -> object:
                return db.search(q, match=m, chat_id=c)

            assert indexed() == scanned(), label
            fast = median_ms(indexed, 21)
            slow = median_ms(scanned, 3)
            worst = max(worst, fast)
            print(f"  {label:<28} index {fast:7.2f} ms   scan {slow:7.1f} ms"
                  f"   {slow / fast:6.0f}x faster")
        missed += worst > SEARCH_TARGET_MS
        print(f"worst warm search: {worst:.2f} ms   target <= {SEARCH_TARGET_MS:g} ms"
              f"  {verdict(worst <= SEARCH_TARGET_MS)}")

        sim = SimDB(path)
        chat = db.chats(limit=2)[1].id
        rounds = []
        for round_ in range(7):
            sim.conn.execute("BEGIN")
            for i in range(1000):
                sim.receive(chat, None, f"catch-up round {round_} row {i} zebra")
            sim.conn.execute("COMMIT")
            start = time.perf_counter()
            found = imsg.index.search(db, "zebra", limit=1)
            rounds.append((time.perf_counter() - start) * 1000)
            assert found and found[0].text.endswith("row 999 zebra")
        sim.close()
        catch_up = statistics.median(rounds)
        missed += catch_up > CATCH_UP_TARGET_MS
        print(f"catching up 1,000 new rows (first search after): {catch_up:.1f} ms median"
              f"   target <= {CATCH_UP_TARGET_MS:g} ms  {verdict(catch_up <= CATCH_UP_TARGET_MS)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
