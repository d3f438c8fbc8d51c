"""Churn: two writer processes, joins up to 5 s late, TRUNCATE checkpoints, and the watcher
(``imsg watch --json``) stopped with SIGSTOP and resumed again and again. Every joined row must
come out exactly once, and every ``cursor`` must be a safe resume point."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from imsg.sim.messages import SimDB

from .kit import WatchProcess

ROWS_PER_WRITER = 1000
WRITER = str(Path(__file__).with_name("churn_writer.py"))


def test_churn_loses_and_repeats_no_joined_row(tmp_path: Path) -> None:
    sim = SimDB.create(str(tmp_path / "chat.db"), "tahoe")
    chats = [sim.chat([f"+1555000{i:04d}"]) for i in range(3)]
    start = sim.receive(chats[0], None, "before the watch")
    watcher = WatchProcess(sim.path, "--since-rowid", str(start), "--debounce", "0ms")
    rng = random.Random(9)
    stops = 0
    try:
        ready = sim.receive(chats[0], None, "ready")
        lines = watcher.through(ready)
        outputs = [str(tmp_path / f"writer{n}.json") for n in range(2)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        writers = [subprocess.Popen([sys.executable, WRITER, sim.path, str(n), str(ROWS_PER_WRITER),
                                     outputs[n], ",".join(map(str, chats))], env=env)
                   for n in range(2)]
        while any(w.poll() is None for w in writers) or stops < 6:
            time.sleep(rng.uniform(0.2, 0.6))
            watcher.proc.send_signal(signal.SIGSTOP)
            stops += 1
            time.sleep(rng.uniform(0.05, 1.5))
            watcher.proc.send_signal(signal.SIGCONT)
        assert [w.wait() for w in writers] == [0, 0]
        sentinel = sim.receive(chats[1], None, "sentinel")
        lines += watcher.through(sentinel)
    finally:
        watcher.proc.send_signal(signal.SIGCONT)
        code, err = watcher.stop()
        sim.close()
    written = [json.loads(Path(out).read_text()) for out in outputs]
    joined = {ready, sentinel, *(rowid for w in written for rowid in w["joined"])}
    unjoined = {rowid for w in written for rowid in w["unjoined"]}
    delivered = [line["id"] for line in lines]
    lost = joined - set(delivered)
    duplicated = len(delivered) - len(set(delivered))
    assert (len(lost), duplicated) == (0, 0), f"lost {sorted(lost)}, {duplicated} duplicates"
    assert set(delivered) == joined and not unjoined & set(delivered)
    assert len(joined) > 2 * ROWS_PER_WRITER * 0.9
    assert code == 0 and "Traceback" not in err
    cursors = [line["cursor"] for line in lines]
    assert cursors == sorted(cursors), "cursors went back"
    # Resuming from a line's cursor must re-deliver every joined row not delivered by then,
    # and so must never pass a row still waiting for its join.
    first_unjoined = min(unjoined, default=sentinel + 1)
    required = sorted(joined)
    seen: set[int] = set()
    covered = 0
    for index, cursor in enumerate(cursors):
        seen.add(delivered[index])
        while covered < len(required) and required[covered] <= cursor:
            assert required[covered] in seen, (
                f"line {index}: cursor {cursor} passes undelivered row {required[covered]}")
            covered += 1
        assert cursor < first_unjoined
