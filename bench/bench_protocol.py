"""Protocol v1 figures: how soon a spawned `imsg rpc` answers `initialize`, and how fast
`messages.after` pages through the 500,000-message benchmark database.

    python bench/bench_protocol.py [--quick]

Targets: `initialize` answered <= 200 ms after process start (median; `python -c pass` in the
same run is the floor); `messages.after` pages of 500 at >= 50,000 messages/s through the
whole RPC round trip.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_reader import DATA, build

decode = msgspec.json.Decoder().decode  # a client's parser should not be what is measured


def startup_ms(argv: list[str], request: bytes | None) -> float:
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None
    if request is None:
        proc.stdin.close()
        proc.wait()
        return (time.perf_counter() - t) * 1000
    proc.stdin.write(request)
    proc.stdin.flush()
    proc.stdout.readline()
    elapsed = (time.perf_counter() - t) * 1000
    proc.stdin.close()
    proc.wait()
    return elapsed


def page_through(path: Path, limit_messages: int) -> tuple[int, float]:
    proc = subprocess.Popen([sys.executable, "-m", "imsg", "rpc", "--db", str(path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None
    cursor, total, rid = 0, 0, 0
    t = time.perf_counter()
    while total < limit_messages:
        rid += 1
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": rid, "method": "messages.after",
                                     "params": {"since_rowid": cursor, "limit": 500}}).encode()
                         + b"\n")
        proc.stdin.flush()
        result = decode(proc.stdout.readline())["result"]
        total += len(result["messages"])
        cursor = result["next_rowid"]
        if not result["has_more"]:
            break
    elapsed = time.perf_counter() - t
    proc.stdin.close()
    proc.wait()
    return total, elapsed


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    DATA.mkdir(exist_ok=True)
    path = DATA / "reader-v2-500000-5000.db"
    if not path.exists():
        build(path, 500_000, 5_000)
    runs = 5 if quick else 11
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                          "params": {"protocol_version": 1}}).encode() + b"\n"
    rpc = [sys.executable, "-m", "imsg", "rpc", "--db", str(path)]
    floor = statistics.median(startup_ms([sys.executable, "-c", "pass"], None)
                              for _ in range(runs))
    initialize = statistics.median(startup_ms(rpc, request) for _ in range(runs))
    print(f"`python -c pass` (floor):            {floor:7.1f} ms median")
    print(f"start → `initialize` answered:       {initialize:7.1f} ms median"
          f"   ({initialize / floor:.1f}x the floor; target <= 200 ms)")
    rates = []
    for _ in range(1 if quick else 3):
        count, seconds = page_through(path, 100_000 if quick else 500_000)
        rates.append(count / seconds)
    print(f"messages.after, pages of 500 (RPC):  {statistics.median(rates):9,.0f} messages/s"
          f"   ({count:,} messages; target >= 50,000/s)")


if __name__ == "__main__":
    main()
