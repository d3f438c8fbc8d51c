"""`make bench`: run every benchmark in turn and print its figures.

    python bench/run.py [--quick]

``--quick`` is passed to the benchmarks that accept it (smaller loads, for a smoke run).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ("bench_typedstream", "bench_reader", "bench_search", "bench_startup", "bench_protocol",
         "bench_watch", "bench_send", "bench_rpc", "bench_bridge", "bench_gateway", "bench_mcp")
QUICK_CAPABLE = ("bench_watch", "bench_rpc", "bench_send", "bench_protocol", "bench_bridge",
                 "bench_gateway", "bench_mcp")


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    failed = 0
    for name in ORDER:
        script = HERE / f"{name}.py"
        if not script.exists():
            continue
        print(f"\n== {name} ==", flush=True)
        args = [sys.executable, str(script)]
        if quick and name in QUICK_CAPABLE:
            args.append("--quick")
        failed += subprocess.run(args).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
