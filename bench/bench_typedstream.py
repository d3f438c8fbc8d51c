"""Micro-benchmark of the attributedBody codec: calls/s of ``body_text`` (fast path) and
``parse_attributed_string`` (full parse) for short, medium and long message bodies.

Run: ``.venv/bin/python bench/bench_typedstream.py`` (``PYTHONPATH=src`` if not installed)
"""

from __future__ import annotations

import time
from collections.abc import Callable

from imsg.chatdb.typedstream import body_text, encode_attributed_string, parse_attributed_string


def calls_per_second(function: Callable[[bytes], object], blob: bytes, seconds: float) -> float:
    """Best rate over a few timed batches (best-of damps scheduler noise on a small machine)."""
    batch = 1
    while True:  # grow the batch until one takes ~20 ms, so the loop overhead is negligible
        start = time.perf_counter()
        for _ in range(batch):
            function(blob)
        elapsed = time.perf_counter() - start
        if elapsed > 0.02:
            break
        batch *= 2
    best = batch / elapsed
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(batch):
            function(blob)
        best = max(best, batch / (time.perf_counter() - start))
    return best


def main() -> None:
    bodies = {
        "short (20 B)": encode_attributed_string("See you at 7 tonight"),
        "500 B": encode_attributed_string(("Lorem ipsum dolor sit amet, café ☕ " * 15)[:480]),
        "70 KB": encode_attributed_string("long message with ünïcödé and emoji 👍 " * 1800),
        "short, mutable": encode_attributed_string("See you at 7 tonight", mutable=True),
    }
    for name, blob in bodies.items():
        assert body_text(blob) == parse_attributed_string(blob).text
        fast = calls_per_second(body_text, blob, 1.0)
        full = calls_per_second(parse_attributed_string, blob, 1.0)
        text_mb = len(body_text(blob) or "") * fast / 1e6
        print(
            f"{name:>15} ({len(blob):>6} B blob): body_text {fast:>12,.0f}/s"
            f" ({text_mb:,.0f} M chars/s)   parse_attributed_string {full:>10,.0f}/s"
        )


if __name__ == "__main__":
    main()
