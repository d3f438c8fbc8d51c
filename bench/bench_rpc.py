"""JSON-RPC server benchmark: ``imsg rpc`` as a child process on a simulator database.

Prints, each with its target:

- throughput of pipelined ``chats.list`` over stdio on the demo database (requests/s), with up
  to 100 requests outstanding;
- p50/p99 latency of ``messages.history`` (limit 50) while a subscription streams a 100/s
  insert load (every inserted row must also arrive as a notification);
- time from process start to the first response (median of several cold starts);
- server RSS while 10 subscriptions deliver 1,000,000 notifications (100,000 rows), sampled
  40 times: judged by its slope over the last half (least squares, KiB per 100,000
  notifications), so the first half may fill SQLite's page caches (2 MiB per connection) and the
  allocator's pools, and a one-off step does not read as a leak, while keeping even the smallest
  object per notification still fails (``--leak`` shows it).

    python bench/bench_rpc.py [--quick] [--memory] [--leak BYTES]

``--memory`` runs only the memory measure. ``--leak BYTES`` checks that check: it runs it
against a server that keeps BYTES more for every notification it sends, and must report MISSED.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from imsg.sim.demo import ALICE, fill_demo
from imsg.sim.messages import SimDB

TIMEOUT_S = 60.0
MAILBOX = 4096  # protocol v1's largest buffer_limit
# RSS growth per 100,000 notifications over the last half: about 20 bytes each. Keeping the
# smallest Python object per notification (with its reference, ~40 bytes) fails; a clean server
# measures 400-1,100 KiB, falling as its caches and allocator pools finish filling.
SLOPE_LIMIT_KIB = 2048


# ``imsg rpc`` that keeps ``sys.argv[1]`` bytes per notification frame (the leak self-check).
LEAKY_SERVER = """
import sys
from imsg.cli import main
from imsg.rpc import protocol
kept, size, frame = [], int(sys.argv.pop(1)), protocol.notification
def notification(*args, **kwargs):
    kept.append(bytes(size))
    return frame(*args, **kwargs)
protocol.notification = notification
main()
"""


class Child:
    """One ``imsg rpc`` process; stdout lines are handed to ``on_line`` from a thread."""

    def __init__(self, db: str, leak: int = 0) -> None:
        self.started = time.perf_counter()
        command = [sys.executable, "-m", "imsg"]
        if leak:
            command = [sys.executable, "-c", LEAKY_SERVER, str(leak)]
        self.proc = subprocess.Popen([*command, "rpc", "--db", db],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin = self.proc.stdin
        self.stdout = self.proc.stdout

    def write(self, data: bytes) -> None:
        self.stdin.write(data)
        self.stdin.flush()

    def request(self, rid: Any, method: str, **params: Any) -> None:
        frame = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        self.write(json.dumps(frame).encode() + b"\n")

    def recv(self) -> Any:
        line = self.stdout.readline()
        if not line:
            raise RuntimeError("imsg rpc closed stdout")
        return json.loads(line)

    def answer(self, rid: Any, notes: list[Any] | None = None) -> Any:
        """The response with ``rid``; notifications met on the way go to ``notes``."""
        while True:
            frame = self.recv()
            if frame.get("id") == rid and "method" not in frame:
                if "error" in frame:
                    raise RuntimeError(f"{rid}: {frame['error']}")
                return frame["result"]
            if notes is not None:
                notes.append(frame)

    def rss_mib(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def close(self) -> None:
        self.stdin.close()
        try:
            self.proc.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def demo_db(directory: Path) -> str:
    sim = SimDB.create(str(directory / "chat.db"))
    fill_demo(sim)
    sim.close()
    return str(directory / "chat.db")


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def throughput(db: str, count: int, window: int = 100) -> float:
    """Pipelined ``chats.list``: up to ``window`` requests outstanding (under the server's
    limit of 128, as a well-behaved client keeps), every answer must be a result."""
    child = Child(db)
    try:
        child.request(0, "chats.list")
        child.answer(0)  # warm: imports done, database open
        line = b'{"jsonrpc":"2.0","id":%d,"method":"chats.list","params":{"limit":20}}\n'
        start = time.perf_counter()
        child.write(b"".join(line % i for i in range(1, min(window, count) + 1)))
        sent = min(window, count)
        for _ in range(count):
            frame = child.recv()
            if "result" not in frame:
                raise RuntimeError(f"pipelined chats.list answered {frame}")
            if sent < count:
                sent += 1
                child.write(line % sent)
        elapsed = time.perf_counter() - start
        return count / elapsed
    finally:
        child.close()


def cold_start(db: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        child = Child(db)
        child.request(1, "chats.list")
        child.answer(1)
        times.append(time.perf_counter() - child.started)
        child.close()
    return statistics.median(times)


def history_under_load(db: str, seconds: float, rate: int = 100) -> tuple[float, float, bool]:
    child = Child(db)
    notes: list[Any] = []
    inserted: list[int] = []
    try:
        subscribe(child, "sub")
        stop = threading.Event()

        def insert() -> None:
            sim = SimDB(db)
            next_at = time.perf_counter()
            while not stop.is_set():
                inserted.append(sim.receive(1, ALICE, f"load {len(inserted)}"))
                next_at += 1 / rate
                time.sleep(max(0.0, next_at - time.perf_counter()))
            sim.close()

        writer = threading.Thread(target=insert)
        writer.start()
        latencies = []
        end = time.perf_counter() + seconds
        rid = 0
        while time.perf_counter() < end:
            rid += 1
            start = time.perf_counter()
            child.request(rid, "messages.history", chat_id=1, limit=50)
            child.answer(rid, notes)
            latencies.append(time.perf_counter() - start)
        stop.set()
        writer.join()
        child.request("sentinel", "status")  # the last rows: read until every one arrived
        child.answer("sentinel", notes)
        delivered = {n["params"]["message"]["id"] for n in notes if n.get("method") == "message"}
        while not set(inserted) <= delivered:
            delivered.add(child.recv()["params"]["message"]["id"])
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        return statistics.median(latencies) * 1000, p99 * 1000, True
    finally:
        child.close()


def subscribe(child: Child, rid: Any) -> None:
    """``watch.subscribe`` with the largest mailbox; the answer is ``{subscription,
    buffer_limit}`` (protocol v1) or just the subscription (older servers), either is fine."""
    child.request(rid, "watch.subscribe", debounce_ms=0, buffer_limit=MAILBOX)
    try:
        child.answer(rid)
    except RuntimeError as err:  # a server that knows no buffer_limit
        if "-32602" not in str(err):
            raise
        child.request(rid, "watch.subscribe", debounce_ms=0)
        child.answer(rid)


def rss_with_subscriptions(db: str, rows: int, subscriptions: int = 10, samples: int = 40,
                           leak: int = 0) -> list[tuple[int, float]]:
    """(notifications so far, server RSS in KiB) at ``samples`` even points while ``rows``
    inserted rows are notified to each of ``subscriptions`` subscriptions."""
    child = Child(db, leak)
    try:
        for sid in range(subscriptions):
            subscribe(child, sid)
        counted = [0]
        failed: list[Any] = []

        def count() -> None:
            while counted[0] < rows * subscriptions:
                frame = child.recv()
                if frame.get("method") == "message":
                    counted[0] += 1
                else:
                    failed.append(frame)
                    return

        reader = threading.Thread(target=count, daemon=True)
        reader.start()

        def caught_up(upto: int) -> None:
            deadline = time.monotonic() + TIMEOUT_S
            while counted[0] < upto * subscriptions:
                if failed or time.monotonic() > deadline:
                    raise RuntimeError(f"stream broke after {counted[0]} notifications: "
                                       f"{failed}")
                time.sleep(0.005)

        sim = SimDB(db)
        taken: list[tuple[int, float]] = []
        batch = 100
        every = max(batch, rows // samples // batch * batch)
        for start in range(0, rows, batch):
            sim.conn.execute("BEGIN")
            for i in range(start, min(rows, start + batch)):
                sim.receive(1 + i % 3, None, f"notification load {i}")
            sim.conn.execute("COMMIT")
            caught_up(start - 10 * batch)  # at most 1,000 rows ahead: a stream, not one burst
            if (start + batch) % every == 0:
                caught_up(start + batch)
                taken.append(((start + batch) * subscriptions, child.rss_mib() * 1024))
        sim.close()
        return taken
    finally:
        child.close()


def slope_per_100k(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of RSS (KiB) against notifications, per 100,000 notifications."""
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread * 100_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller loads, for a smoke run")
    parser.add_argument("--memory", action="store_true", help="only the memory check")
    parser.add_argument("--leak", type=int, default=0, metavar="BYTES",
                        help="only the memory check, against a server leaking BYTES per frame")
    args = parser.parse_args()
    quick, leak = args.quick, args.leak
    if not sys.platform.startswith("linux"):
        print("bench_rpc reads RSS from /proc: run it on Linux")
        return 0
    missed = 0
    with tempfile.TemporaryDirectory() as tmp:
        if leak or args.memory:
            return memory(Path(tmp), quick, leak)
        db = demo_db(Path(tmp))
        rate = throughput(db, 3_000 if quick else 20_000)
        missed += rate < 5000
        print(f"chats.list pipelined over stdio   {rate:8.0f} req/s    target >= 5000  "
              f"{verdict(rate >= 5000)}")
        p50, p99, _ = history_under_load(db, 4.0 if quick else 20.0)
        missed += p99 > 20
        print(f"messages.history under 100/s load  p50 {p50:5.2f} ms  p99 {p99:5.2f} ms   "
              f"target p99 <= 20 ms  {verdict(p99 <= 20)}")
        start = cold_start(db, 5 if quick else 15) * 1000
        missed += start > 250
        print(f"start to first response            {start:8.0f} ms       target <= 250   "
              f"{verdict(start <= 250)}")
    with tempfile.TemporaryDirectory() as tmp:
        missed += memory(Path(tmp), quick)
    return 1 if missed else 0


def memory(folder: Path, quick: bool, leak: int = 0) -> int:
    """The RSS slope check; 1 when missed."""
    db = demo_db(folder)
    rows = 10_000 if quick else 100_000
    points = rss_with_subscriptions(db, rows, leak=leak)
    slope = slope_per_100k(points[len(points) // 2:])
    print(f"RSS, 10 subscriptions, {rows * 10:,} notifications{' (leaking)' if leak else ''}:"
          f" {points[0][1] / 1024:.1f} MiB at {points[0][0]:,},"
          f" {points[len(points) // 2][1] / 1024:.1f} at half,"
          f" {points[-1][1] / 1024:.1f} at the end; slope over the last half"
          f" {slope:+.0f} KiB per 100,000   target < {SLOPE_LIMIT_KIB} KiB"
          f"  {verdict(slope < SLOPE_LIMIT_KIB)}")
    return int(slope >= SLOPE_LIMIT_KIB)


if __name__ == "__main__":
    sys.exit(main())
