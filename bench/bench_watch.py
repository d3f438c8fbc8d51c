"""Benchmark ``imsg watch --json`` as a child process fed by a simulated Messages writer.

Prints each figure next to its target:

- latency from the commit of a row to its JSON line on stdout (``--debounce 0ms``), rows
  written one at a time at a steady rate: p50 / p99 / max;
- throughput draining one committed burst;
- CPU used while idle;
- resident memory along a long run of bursts (it must stay flat);
- ``page_after`` (RPC ``messages.after``) in pages of 500, in process, against the reader's
  bare ``messages_after`` on the same rows as the floor.

Usage: ``python bench/bench_watch.py`` (full) or ``--quick`` (scaled down, about a minute).
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from imsg.chatdb.reader import ChatDB
from imsg.sim.messages import SimDB
from imsg.watch import page_after

SENDER = "+15555550123"


class WatchChild:
    """``imsg watch --json --debounce 0ms`` with a thread timestamping each line it prints."""

    def __init__(self, db_path: str, since_rowid: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "imsg", "watch", "--json", "--debounce", "0ms",
             "--db", db_path, "--since-rowid", str(since_rowid)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.lines: queue.Queue[tuple[int, float]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            seen = time.perf_counter()
            # Lines start with {"id":N, — no need to parse a million objects in full.
            self.lines.put((int(line[6:line.index(b",")]), seen))

    def wait_for(self, rowid: int, timeout: float = 600.0) -> tuple[int, float]:
        """Read lines until ``rowid``; returns (lines read, time the last one was seen)."""
        count = 0
        while True:
            got, seen = self.lines.get(timeout=timeout)
            count += 1
            if got == rowid:
                return count, seen

    def cpu_seconds(self) -> float:
        try:
            with open(f"/proc/{self.proc.pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except FileNotFoundError:  # not Linux
            out = subprocess.run(["ps", "-o", "cputime=", "-p", str(self.proc.pid)],
                                 capture_output=True, text=True, check=True).stdout.strip()
            seconds = 0.0
            for part in out.replace("-", ":").split(":"):
                seconds = seconds * 60 + float(part)
            return seconds

    def rss_mb(self) -> float:
        out = subprocess.run(["ps", "-o", "rss=", "-p", str(self.proc.pid)],
                             capture_output=True, text=True, check=True).stdout
        return int(out.strip()) / 1024

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


@contextmanager
def watched_db() -> Iterator[tuple[SimDB, int, WatchChild]]:
    folder = tempfile.mkdtemp(prefix="imsg-bench-")
    sim = SimDB.create(os.path.join(folder, "chat.db"), "tahoe")
    chat = sim.chat([SENDER])
    warmup = sim.receive(chat, SENDER, "warm-up")
    child = WatchChild(sim.path, -1)  # replays the warm-up row: the child is then ready
    try:
        child.wait_for(warmup)
        yield sim, chat, child
    finally:
        child.stop()
        sim.close()
        shutil.rmtree(folder, ignore_errors=True)


def burst(sim: SimDB, chat: int, rows: int) -> tuple[int, float]:
    """Commit ``rows`` joined messages in one transaction; return (last ROWID, commit time)."""
    template = sim.receive(chat, SENDER, "a burst message of ordinary length, with some text")
    columns = [r[1] for r in sim.conn.execute("PRAGMA table_info(message)")
               if r[1] not in ("ROWID", "guid")]
    names = ", ".join(columns)
    sim.conn.execute("BEGIN")
    sim.conn.execute(
        f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        f" INSERT INTO message (guid, {names}) SELECT 'bench-' || ? || '-' || i, {names}"
        f" FROM n, message WHERE message.ROWID = ?", (rows, template, template))
    sim.conn.execute(
        "INSERT INTO chat_message_join (chat_id, message_id, message_date)"
        " SELECT ?, ROWID, date FROM message WHERE ROWID > ?", (chat, template))
    sim.conn.execute("COMMIT")
    committed = time.perf_counter()
    (last,) = sim.conn.execute("SELECT MAX(ROWID) FROM message").fetchone()
    return int(last), committed


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def bench_latency(rows: int, rate: float) -> None:
    with watched_db() as (sim, chat, child):
        latencies = []
        cpu_before = child.cpu_seconds()
        start = time.perf_counter()
        for i in range(rows):
            time.sleep(max(0.0, start + i / rate - time.perf_counter()))
            # As Messages does: the row first, its chat join in a second commit. The join's
            # commit completes the row; timing from just before it starts errs on the slow side.
            rowid = sim.message(chat, f"latency probe {i}", sender=SENDER, join=False)
            committed = time.perf_counter()
            sim.join(chat, rowid)
            _, seen = child.wait_for(rowid)
            latencies.append((seen - committed) * 1000)
        busy = (child.cpu_seconds() - cpu_before) / (time.perf_counter() - start)
    print(f"latency ({rows} rows at {rate:g}/s, --debounce 0ms):"
          f" p50 {statistics.median(latencies):.1f} ms (target <= 20),"
          f" p99 {percentile(latencies, 99):.1f} ms (target <= 60),"
          f" max {max(latencies):.1f} ms; watcher CPU meanwhile {busy * 100:.1f}% of a core")


def bench_throughput(rows: int) -> None:
    with watched_db() as (sim, chat, child):
        last, committed = burst(sim, chat, rows)
        count, seen = child.wait_for(last)
    rate = rows / (seen - committed)
    print(f"throughput ({rows:,}-row burst): {count - 1:,} of {rows:,} delivered"
          f" (+ 1 template row), {rate:,.0f} rows/s (target >= 20,000)")


def bench_idle(seconds: float) -> None:
    with watched_db() as (_, _, child):
        time.sleep(1.0)
        before = child.cpu_seconds()
        time.sleep(seconds)
        used = child.cpu_seconds() - before
    print(f"idle CPU over {seconds:g}s: {used / seconds * 100:.2f}% of a core (target <= 1%)")


def bench_memory(total: int, chunk: int) -> None:
    with watched_db() as (sim, chat, child):
        samples = []
        done = 0
        while done < total:
            size = min(chunk, total - done)
            last, _ = burst(sim, chat, size)
            child.wait_for(last)
            done += size
            samples.append((done, child.rss_mb()))
    first, final = samples[0][1], samples[-1][1]
    peak = max(mb for _, mb in samples)
    trail = ", ".join(f"{n // 1000}k: {mb:.0f}" for n, mb in samples[:: max(1, len(samples) // 5)])
    print(f"memory over {total:,} rows: RSS {first:.0f} MB after the first {chunk:,},"
          f" {final:.0f} MB at the end, peak {peak:.0f} MB (target: flat); MB by rows: {trail}")


def bench_paging(rows: int) -> None:
    folder = tempfile.mkdtemp(prefix="imsg-bench-")
    sim = SimDB.create(os.path.join(folder, "chat.db"), "tahoe")
    try:
        burst(sim, sim.chat([SENDER]), rows)
        with ChatDB(sim.path) as db:
            for _ in range(2):  # the first pass warms the page cache
                start = time.perf_counter()
                cursor, floor_count = 0, 0
                while batch := db.messages_after(cursor, limit=500):
                    floor_count += len(batch)
                    cursor = batch[-1][0].id
            floor = floor_count / (time.perf_counter() - start)
            start = time.perf_counter()
            page = page_after(db, 0, limit=500)
            count = len(page.messages)
            while page.has_more:
                page = page_after(db, page.next_rowid, limit=500)
                count += len(page.messages)
            rate = count / (time.perf_counter() - start)
    finally:
        sim.close()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"page_after, pages of 500 over {count:,} messages: {rate:,.0f} messages/s,"
          f" {rate / floor:.2f}x the bare reader's {floor:,.0f}/s on the same rows (target >="
          f" 0.8x: the rules cost little next to building the messages)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="scaled-down run")
    parser.add_argument("--rows", type=int, help="latency rows (default 1000; quick 200)")
    parser.add_argument("--rate", type=float, default=50.0, help="latency rows per second")
    parser.add_argument("--burst", type=int, help="burst rows (default 100000; quick 10000)")
    parser.add_argument("--idle", type=float, help="idle seconds (default 30; quick 5)")
    parser.add_argument("--memory", type=int,
                        help="rows for the memory run (default 1000000; quick 100000)")
    parser.add_argument("--paging", type=int,
                        help="rows for the paging run (default 100000; quick 20000)")
    args = parser.parse_args()
    quick = args.quick
    print(f"imsg watch benchmark ({'quick' if quick else 'full'}), Python {sys.version.split()[0]},"
          f" {sys.platform}")
    bench_latency(args.rows or (200 if quick else 1000), args.rate)
    bench_throughput(args.burst or (10_000 if quick else 100_000))
    bench_idle(args.idle or (5.0 if quick else 30.0))
    memory_rows = args.memory or (100_000 if quick else 1_000_000)
    bench_memory(memory_rows, max(1, memory_rows // 20))
    bench_paging(args.paging or (20_000 if quick else 100_000))


if __name__ == "__main__":
    main()
