"""The mutation lane: every mutation of a server runs here, one at a time and in order, and
the lane blocks after a mutation whose outcome is still open, so nothing is sent twice.

A mutation that fails ``still_in_flight`` (it may still complete later) blocks the lane: later
mutations are refused with ``MutationLaneBlocked`` (-32004) until the failure's ``settled``
check says it can no longer complete, or ``LANE_BLOCK_S`` has passed. A handler may also answer
and block afterwards by returning ``BlocksLane`` (a poll whose caption is still in flight).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imsg.errors import MutationLaneBlocked, SendError
from imsg.rpc.workers import Workers

log = logging.getLogger("imsg.rpc")

LANE_BLOCK_S = 600.0  # how long a mutation still in flight blocks later ones, at most


@dataclass(frozen=True)
class BlocksLane:
    """A mutation's result that must be answered, after which the mutation lane blocks as
    after ``cause`` (a ``poll.send`` whose caption is still in flight)."""

    result: dict[str, Any]
    cause: SendError


class MutationLane:
    """One FIFO worker for every mutation of the server, blocked after ``still_in_flight``."""

    def __init__(self) -> None:
        self._worker = Workers(1, "imsg-mutation")
        self._blocked_by: SendError | None = None
        self._blocked_until = 0.0

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self._worker.run(self._guarded, fn, args)

    def _guarded(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        # Checked when the mutation's turn comes, so mutations queued behind the one that
        # blocks the lane are refused too.
        self.check()
        try:
            value = fn(*args)
        except SendError as err:
            if err.disposition == "still_in_flight":
                self._block(err)
            raise
        if isinstance(value, BlocksLane):  # answered, then blocks (a poll's late caption)
            self._block(value.cause)
            return value.result
        return value

    def _block(self, err: SendError) -> None:
        log.error("mutation lane blocked: %s", err.message)
        self._blocked_by = err
        self._blocked_until = time.monotonic() + LANE_BLOCK_S

    def check(self) -> None:
        """Raise MutationLaneBlocked while an earlier mutation may still complete (until its
        ``settled`` check says it no longer can, or ``LANE_BLOCK_S`` has passed)."""
        if self._blocked_by is None:
            return
        if time.monotonic() >= self._blocked_until:
            log.warning("mutation lane unblocked after %gs", LANE_BLOCK_S)
            self._blocked_by = None
            return
        settled = self._blocked_by.settled
        if settled is not None and settled():
            log.warning("mutation lane unblocked: the %s in flight can no longer complete",
                        self._blocked_by.operation)
            self._blocked_by = None
            return
        raise MutationLaneBlocked(self._blocked_by)
