"""One Messages-like writer process for the churn test.

``python churn_writer.py DB SEED ROWS OUT CHATS`` writes ROWS messages into the direct chats
CHATS (comma-separated ids), each row and its join in separate commits, as Messages does. About
4 % of the joins are written late, 0.05 to 5 s after their row (other rows go on meanwhile),
0.2 % of the rows are never joined, and every 97th row runs a TRUNCATE checkpoint. When every
late join is written it stores ``{"joined": [...], "unjoined": [...]}`` (ROWIDs) in OUT.
"""

from __future__ import annotations

import contextlib
import json
import random
import sqlite3
import sys
import time

from imsg.sim.messages import SimDB

LATE = 0.04
NEVER = 0.002
LATEST_S = 5.0
CHECKPOINT_EVERY = 97


def main() -> None:
    path, seed, rows, out, chat_list = sys.argv[1:6]
    rng = random.Random(int(seed))
    chats = [int(chat) for chat in chat_list.split(",")]
    sim = SimDB(path)
    joined: list[int] = []
    unjoined: list[int] = []
    late: list[tuple[float, int, int]] = []  # (when, chat, rowid)

    def join_due(until: float) -> None:
        late.sort()
        while late and late[0][0] <= until:
            _, chat, rowid = late.pop(0)
            sim.join(chat, rowid)
            joined.append(rowid)

    for i in range(int(rows)):
        chat = rng.choice(chats)
        roll = rng.random()
        text = f"writer {seed} row {i}"
        if roll < NEVER:
            unjoined.append(sim.message(chat, text, join=False))
        elif roll < NEVER + LATE:
            rowid = sim.message(chat, text, join=False)
            late.append((time.monotonic() + rng.uniform(0.05, LATEST_S), chat, rowid))
        else:
            joined.append(sim.message(chat, text))
        join_due(time.monotonic())
        if i % CHECKPOINT_EVERY == 0:
            # Locked by the other writer: Messages would simply try again later.
            with contextlib.suppress(sqlite3.OperationalError):
                sim.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        time.sleep(rng.uniform(0, 0.002))
    while late:
        time.sleep(max(0.0, min(when for when, _, _ in late) - time.monotonic()))
        join_due(time.monotonic())
    sim.close()
    with open(out, "w") as fh:
        json.dump({"joined": joined, "unjoined": unjoined}, fh)


if __name__ == "__main__":
    main()
