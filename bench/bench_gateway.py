"""Gateway benchmark: ``imsg gateway``'s pipeline in this process, its children real or fake.

Prints, each with its target:

- notification → handler start latency, p50/p99, at debounce 0 with a ``python`` handler
  (a stream child writes each notification with its send time; the handler, in its worker
  thread, takes the difference), 2,000 notifications at 100/s over 20 conversations;
- sustained 200 inbound messages/s spread over 10 accounts, each with a real ``imsg rpc`` on its
  own simulated chat.db (rows written by the simulator, as Messages would): every message
  handled exactly once, the rate reached, chat.db row → handler latency, the gateway's CPU;
- RSS of the gateway over 1,000,000 messages (a fake child streaming as fast as the gateway
  reads): sampled 40 times, judged by its slope over the last half (KiB per 100,000 messages),
  so caches may fill first while a leak of a few bytes per message still fails.

    python bench/bench_gateway.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from imsg.gateway.config import load_config
from imsg.gateway.handlers import Handler, HandlerConfig, make_handler
from imsg.gateway.inbound import parse_time
from imsg.gateway.runner import Gateway
from imsg.sim.messages import SimDB

SLOPE_LIMIT_KIB = 256  # per 100,000 messages over the last half: ~2.6 bytes per message
STREAM_CHILD = r'''
import json, os, sys, threading, time
RATE = float(os.environ.get("BENCH_RATE", "0"))
COUNT = int(os.environ.get("BENCH_COUNT", "1000"))
CHATS = int(os.environ.get("BENCH_CHATS", "20"))
out = sys.stdout.buffer
lock = threading.Lock()

def send(obj):
    data = json.dumps(obj).encode() + b"\n"
    with lock:
        out.write(data)
        out.flush()

def stream(sub):
    start = time.time()
    run = int(start * 1000)
    for i in range(1, COUNT + 1):
        if RATE:
            delay = start + i / RATE - time.time()
            if delay > 0:
                time.sleep(delay)
        chat = 1 + i % CHATS
        sender = "+1555%07d" % (2000000 + chat)
        now = time.time()
        send({"jsonrpc": "2.0", "method": "message", "params": {"subscription": sub, "message": {
            "id": i, "guid": "B%d-%d" % (run, i), "chat_id": chat, "sender": sender,
            "is_from_me": False, "text": "%.6f" % now,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now)),
            "attachments": [], "destination_caller_id": "me@icloud.com",
            "chat_identifier": sender, "chat_guid": "iMessage;-;" + sender,
            "participants": [sender], "is_group": False}}})

for line in sys.stdin:
    request = json.loads(line)
    method, rid = request["method"], request.get("id")
    if method in ("initialize", "status"):
        result = {"version": "bench", "protocol_version": 1,
                  "database": {"path": "-", "ready": True, "features": {}},
                  "bridge": {"ready": False},
                  "methods": ["initialize", "status", "chats.list", "messages.history",
                              "watch.subscribe", "watch.unsubscribe", "send"]}
    elif method == "chats.list":
        result = {"chats": []}
    elif method == "watch.subscribe":
        result = {"subscription": 1}
        threading.Thread(target=stream, args=(1,), daemon=True).start()
    else:
        result = {"ok": True}
    send({"jsonrpc": "2.0", "id": rid, "result": result})
'''


# Writes incoming messages round-robin into the databases at a steady rate; prints nothing,
# writes each new row's GUID to argv[1].
WRITER = r'''
import sys, time
from imsg.sim.messages import SimDB
out, rate, seconds, dbs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
sims = [SimDB(db) for db in dbs]
chats = [[(sim.chat([f"+1555100{c:04d}"]), f"+1555100{c:04d}") for c in range(5)]
         for sim in sims]
begin = time.monotonic()
index = 0
with open(out, "w") as fh:
    while time.monotonic() - begin < seconds:
        sim = sims[index % len(sims)]
        chat, sender = chats[index % len(sims)][(index // len(sims)) % 5]
        fh.write(sim.guid_of(sim.receive(chat, sender, f"load {index}")) + "\n")
        index += 1
        delay = begin + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
'''


def write_child(folder: Path) -> str:
    path = folder / "stream-child"
    path.write_text(f"#!{sys.executable} -S\n{STREAM_CHILD}")
    path.chmod(0o755)
    return str(path)


def write_config(folder: Path, accounts: dict[str, dict[str, Any]]) -> Any:
    lines = ["[imessage]", 'dmPolicy = "open"', 'allowFrom = ["*"]', "restartInitialMs = 50",
             "healthIntervalMs = 600000", "replayMaxRows = 100000"]
    for name, keys in accounts.items():
        lines.append(f"[imessage.accounts.{name}]")
        lines += [f'{key} = "{value}"' for key, value in keys.items()]
    path = folder / "bench.toml"
    path.write_text("\n".join(lines) + "\n")
    return load_config(str(path))


def python_handler(folder: Path, code: str, name: str) -> Handler:
    (folder / f"{name}.py").write_text(code)
    return make_handler(HandlerConfig("python", python=f"{name}:handle", base_dir=str(folder)))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def rss_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def run_gateway(config: Any, folder: Path, handler: Handler, env: dict[str, str],
                      until: Any, timeout: float) -> None:
    gateway = Gateway(config, str(folder / "state"), env=env,
                      handler_factory=lambda _account: handler)
    await gateway.start()
    try:
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                raise SystemExit("bench: timed out")
            await asyncio.sleep(0.05)
    finally:
        await gateway.stop()


# --- 1. latency -------------------------------------------------------------------------------

def latency(folder: Path, count: int) -> None:
    child = write_child(folder)
    config = write_config(folder, {"bench": {"cliPath": child, "dbPath": "-"}})
    handler = python_handler(folder, "import time\nSEEN = []\n"
                                     "def handle(envelope):\n"
                                     "    SEEN.append(time.time() - float(envelope['text']))\n",
                             "bench_latency_handler")
    import bench_latency_handler  # type: ignore[import-not-found]

    env = {**os.environ, "BENCH_RATE": "100", "BENCH_COUNT": str(count), "BENCH_CHATS": "20"}
    asyncio.run(run_gateway(config, folder, handler, env,
                            lambda: len(bench_latency_handler.SEEN) >= count, 120))
    seen = [s * 1000 for s in bench_latency_handler.SEEN]
    p50, p99 = statistics.median(seen), percentile(seen, 0.99)
    verdict = "ok" if p99 <= 50 else "MISSED"
    print(f"notification → handler start, {count} at 100/s, python handler: "
          f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {max(seen):.2f} ms "
          f"(target p99 <= 50 ms) {verdict}", flush=True)


# --- 2. 200 messages/s over 10 accounts, real imsg rpc -------------------------------------

def fleet(folder: Path, seconds: float, accounts: int = 10, rate: float = 200.0) -> None:
    imsg = str(Path(sys.executable).with_name("imsg"))
    dbs = {}
    for index in range(accounts):
        # A folder each: a watcher wakes on writes anywhere in its database's directory.
        (folder / f"account{index}").mkdir()
        db = str(folder / f"account{index}" / "chat.db")
        sim = SimDB.create(db, "ventura")
        sim.receive(sim.chat(["+15550000000"]), "+15550000000", "history")
        sim.close()
        dbs[f"a{index}"] = db
    config = write_config(folder, {name: {"cliPath": imsg, "dbPath": db}
                                   for name, db in dbs.items()})
    handler = python_handler(folder, "import time\nSEEN = []\n"
                                     "def handle(envelope):\n"
                                     "    SEEN.append((envelope['account'], "
                                     "envelope['message']['guid'], time.time(), "
                                     "envelope['message']['created_at']))\n",
                             "bench_fleet_handler")
    import bench_fleet_handler  # type: ignore[import-not-found]

    guid_file = folder / "written.txt"
    usage: dict[str, float] = {}

    async def body() -> None:
        gateway = Gateway(config, str(folder / "state"), env=dict(os.environ),
                          handler_factory=lambda _account: handler)
        await gateway.start()
        try:
            while not all(a.supervisor.subscribed.is_set() for a in gateway.accounts.values()):
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
            cpu0, wall0 = time.process_time(), time.monotonic()
            # The load comes from another process, as Messages' writes would.
            writer = await asyncio.create_subprocess_exec(
                sys.executable, "-c", WRITER, str(guid_file), str(rate), str(seconds),
                *dbs.values())
            await writer.wait()
            written = guid_file.read_text().split()
            deadline = time.monotonic() + 30
            while len(bench_fleet_handler.SEEN) < len(written):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            usage["cpu"] = time.process_time() - cpu0
            usage["wall"] = time.monotonic() - wall0
        finally:
            await gateway.stop()

    asyncio.run(body())
    written = guid_file.read_text().split()
    seen = bench_fleet_handler.SEEN
    guids = [guid for _, guid, _, _ in seen]
    lost = len(set(written) - set(guids))
    twice = len(guids) - len(set(guids))
    lat = [(at - (parse_time(created) or at)) * 1000 for _, _, at, created in seen]
    achieved = len(written) / seconds
    ok = lost == 0 and twice == 0 and achieved >= rate * 0.95
    print(f"{accounts} accounts (real imsg rpc each), {len(written)} messages in {seconds:g} s "
          f"({achieved:.0f}/s): {lost} lost, {twice} handled twice; chat.db row → handler "
          f"p50 {statistics.median(lat):.0f} ms, p99 {percentile(lat, 0.99):.0f} ms; gateway "
          f"CPU {100 * usage['cpu'] / usage['wall']:.0f}% of a core "
          f"(target 200/s, zero loss) {'ok' if ok else 'MISSED'}", flush=True)


# --- 3. RSS over a million messages ---------------------------------------------------------

def memory(folder: Path, total: int) -> None:
    child = write_child(folder)
    config = write_config(folder, {"bench": {"cliPath": child, "dbPath": "-"}})
    handler = python_handler(folder, "COUNT = [0]\n"
                                     "def handle(envelope):\n"
                                     "    COUNT[0] += 1\n", "bench_memory_handler")
    import bench_memory_handler  # type: ignore[import-not-found]

    env = {**os.environ, "BENCH_RATE": "0", "BENCH_COUNT": str(total), "BENCH_CHATS": "100"}
    samples: list[tuple[int, int]] = []
    step = total // 40
    began = time.monotonic()

    def progress() -> bool:
        done = bench_memory_handler.COUNT[0]
        if done >= (len(samples) + 1) * step:
            samples.append((done, rss_kib()))
        return done >= total

    asyncio.run(run_gateway(config, folder, handler, env, progress, 3600))
    elapsed = time.monotonic() - began
    half = samples[len(samples) // 2:]
    xs = [n / 100_000 for n, _ in half]
    ys = [float(kib) for _, kib in half]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    slope = (sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
             / sum((x - mean_x) ** 2 for x in xs))
    verdict = "ok" if slope <= SLOPE_LIMIT_KIB else "MISSED"
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"RSS over {total:,} messages ({total / elapsed:,.0f} msg/s through the whole "
          f"pipeline): {samples[0][1] / 1024:.1f} MiB at {samples[0][0]:,}, "
          f"{samples[len(samples) // 2][1] / 1024:.1f} MiB at half, "
          f"{samples[-1][1] / 1024:.1f} MiB at the end, peak {peak_mib:.1f} MiB; "
          f"slope over the last half {slope:+.0f} KiB per 100,000 "
          f"(target flat: <= {SLOPE_LIMIT_KIB}) {verdict}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("latency", "fleet", "memory"))
    args = parser.parse_args()
    if args.only is None:  # each measure in a process of its own: a clean RSS baseline
        for name in ("latency", "fleet", "memory"):
            command = [sys.executable, __file__, "--only", name] + (["--quick"] if args.quick
                                                                    else [])
            if subprocess.run(command).returncode:
                return 1
        return 0
    jobs = {"latency": lambda f: latency(f, 500 if args.quick else 2000),
            "fleet": lambda f: fleet(f, 5 if args.quick else 30),
            "memory": lambda f: memory(f, 100_000 if args.quick else 1_000_000)}
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        sys.path.insert(0, tmp)
        jobs[args.only](Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
