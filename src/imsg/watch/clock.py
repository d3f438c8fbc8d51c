"""Awake time: how long a watcher has been running and looking, not how long the wall says.

A hold ("wait up to 2 s for this row's join") measured on the monotonic clock expires while the
process is stopped (SIGSTOP, a laptop lid, a debugger) or starved of CPU: it wakes up, sees the
deadline long gone and gives up on a row whose join was written 39 ms after it first looked.
``AwakeClock`` only advances when the watcher polls, and by at most ``STEP_CAP_S`` per poll, so a
pause of any length counts as one short step; and because the engine reads it *before* it queries
the database, every decision is taken on rows read after the time it charges.
"""

from __future__ import annotations

import time

# Longer than any gap the engine plans between polls while something is held or pending
# (HOLD_RETRY_S, PENDING_RETRY_S), so an awake watcher's clock keeps pace with real time.
STEP_CAP_S = 1.0


class AwakeClock:
    """Seconds of awake polling; ``tick()`` once per poll, before reading the database."""

    def __init__(self) -> None:
        self._last: float | None = None
        self._awake = 0.0

    def tick(self) -> float:
        """Advance by the time since the last tick (at most ``STEP_CAP_S``); return the new
        reading."""
        now = time.monotonic()
        if self._last is not None:
            self._awake += min(max(now - self._last, 0.0), STEP_CAP_S)
        self._last = now
        return self._awake

    @property
    def now(self) -> float:
        """The reading at the last tick."""
        return self._awake
