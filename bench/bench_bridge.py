"""Bridge round trip against the simulated helper scanning its inbox every 100 ms, as the
real one does: publish → response, p50/p99 over ``ping`` requests, and how much of it is
imsg's own: the time from the helper publishing its answer to the client returning it
(noticing the file, reading, parsing). Requests start at random moments, as real ones do,
so the helper's scan wait averages half its interval: the floor no client goes under. The
figures are also taken with the Swift client's 50 ms response polling for comparison.

Run: ``.venv/bin/python bench/bench_bridge.py [--quick]`` (``PYTHONPATH=src`` if not installed)
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from imsg.bridge.client import BridgeClient
from imsg.bridge.container import Container
from imsg.sim.demo import fill_demo
from imsg.sim.messages import SimDB

SCAN_S = 0.1


def imsg_command() -> list[str]:
    installed = Path(sys.executable).with_name("imsg")
    return [str(installed)] if installed.exists() else [sys.executable, "-m", "imsg"]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(client: BridgeClient, rounds: int) -> dict[str, list[float]]:
    """Milliseconds per ``ping``: the round trip, the helper's scan wait and work, and the
    client's part after the helper answered."""
    samples: dict[str, list[float]] = {"round trip": [], "scan wait": [], "client": []}
    pacing = random.Random(7)
    for i in range(rounds + 3):
        # Requests come at any moment, not in step with the helper's scans.
        time.sleep(pacing.uniform(0, SCAN_S))
        start = time.time()
        data = client.call("ping")
        end = time.time()
        timing = data["_timing"]
        if i >= 3:
            samples["round trip"].append((end - start) * 1000)
            samples["scan wait"].append((timing["claimed_at"] - start) * 1000)
            samples["client"].append((end - timing["answered_at"]) * 1000)
    return samples


def main() -> None:
    rounds = 20 if "--quick" in sys.argv[1:] else 200
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db_path = folder / "chat.db"
        sim = SimDB.create(str(db_path), "tahoe")
        fill_demo(sim)
        sim.close()
        container = Container(folder / "container")
        helper = subprocess.Popen(
            [*imsg_command(), "sim", "bridge", str(db_path), "--container",
             str(container.root), "--interval", str(SCAN_S), "--timing"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "IMSG_SIM_BRIDGE_FAIL": ""})
        try:
            deadline = time.monotonic() + 30
            while not container.is_ready():
                if time.monotonic() > deadline:
                    raise SystemExit("the simulated helper did not get ready")
                time.sleep(0.05)
            ours = measure(BridgeClient(container), rounds)
            swift_polling = measure(BridgeClient(container, poll_s=0.05), rounds)
        finally:
            helper.terminate()
            helper.wait(10)
    for label, samples in (("imsg (10 ms response polling)", ours),
                           ("Swift's 50 ms response polling", swift_polling)):
        trip, client = samples["round trip"], samples["client"]
        print(f"bridge round trip, {label}: p50 {percentile(trip, 0.5):.1f} ms, "
              f"p99 {percentile(trip, 0.99):.1f} ms ({rounds} pings, helper scan every "
              f"{SCAN_S * 1000:.0f} ms)")
        print(f"  helper's scan wait p50 {statistics.median(samples['scan wait']):.1f} ms; "
              f"client after the answer: p50 {percentile(client, 0.5):.1f} ms, "
              f"p99 {percentile(client, 0.99):.1f} ms")


if __name__ == "__main__":
    main()
