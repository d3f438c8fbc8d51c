"""What became of a v2 request whose answer did not come (deadline, cancellation, a vanished
or unreadable response): the Swift tool's reclaim table.

=====================================================  ==========================================
observed                                               outcome
=====================================================  ==========================================
a response file appeared                               that response is used
the request is claimed (``<ID>.processing.*``), or     ``still_in_flight``: the helper may
the inbox cannot be read                               still do it (the RPC mutation lane blocks)
the request is still unclaimed (``<ID>.json``)         imsg deletes it; deleted before any claim:
                                                       ``not_started`` (provably never seen, so
                                                       safe to retry or fall back); the file
                                                       moved meanwhile: ``still_in_flight``
neither request, claim nor response                    ``may_have_completed`` (claimed, done,
                                                       answer lost)
=====================================================  ==========================================

``claim_settled`` says when a ``still_in_flight`` request can no longer complete: its claim
is gone (the helper finished: any answer is now published), or the claim is an orphan (its
PID is dead, or it is older than the helper's own 10-minute orphan limit).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ORPHAN_AFTER_S = 600.0

Outcome = Literal["response", "not_started", "still_in_flight", "may_have_completed"]
Unknown = Literal["not_started", "still_in_flight", "may_have_completed"]


class Unpublished(Exception):
    """The request never reached the helper (directories, symlinks, writing, renaming)."""


class Unanswered(Exception):
    """No usable answer came; ``disposition`` says what the request may have become and
    ``settled`` (for ``still_in_flight``) tells when it can no longer complete."""

    def __init__(self, disposition: Unknown, detail: str,
                 settled: Callable[[], bool] | None = None, *, cancelled: bool = False) -> None:
        super().__init__(detail)
        self.disposition: Unknown = disposition
        self.detail = detail
        self.settled = settled
        self.cancelled = cancelled


@dataclass(frozen=True)
class Reclaimed:
    outcome: Outcome
    detail: str
    claims: tuple[Path, ...] = ()


def claims(inbox: Path, request_id: str) -> list[Path]:
    """``<ID>.processing.<pid>`` files of this request (raises OSError if unreadable)."""
    prefix = f"{request_id}.processing."
    return [inbox / name for name in os.listdir(inbox) if name.startswith(prefix)]


def reclaim(inbox: Path, outbox: Path, request_id: str) -> Reclaimed:
    """Classify request ``request_id`` (table above); never raises."""
    response = outbox / f"{request_id}.json"
    if _exists(response):
        return Reclaimed("response", "a response arrived")
    try:
        claimed = claims(inbox, request_id)
    except OSError as exc:
        return Reclaimed("still_in_flight",
                         f"the bridge inbox could not be read ({exc.strerror or exc})")
    if claimed:
        return Reclaimed("still_in_flight", "the helper claimed the request but sent no "
                         "response before the deadline", tuple(claimed))
    request = inbox / f"{request_id}.json"
    try:
        os.unlink(request)
    except FileNotFoundError:
        pass
    except OSError as exc:
        return Reclaimed("still_in_flight", f"the unclaimed request could not be withdrawn "
                         f"({exc.strerror or exc})")
    else:
        return Reclaimed("not_started", "the helper never claimed the request; it was "
                         "withdrawn before dispatch")
    # The request file was gone when we tried to withdraw it: the helper took it meanwhile.
    if _exists(response):
        return Reclaimed("response", "a response arrived")
    try:
        claimed = claims(inbox, request_id)
    except OSError:
        claimed = []
    if claimed:
        return Reclaimed("still_in_flight", "the helper claimed the request while it was "
                         "being withdrawn", tuple(claimed))
    return Reclaimed("may_have_completed", "the request was claimed and finished, but its "
                     "response was lost")


def claim_settled(inbox: Path, request_id: str, now: float | None = None) -> bool:
    """True once request ``request_id`` can no longer complete (module docstring)."""
    try:
        claimed = claims(inbox, request_id)
    except OSError:
        return False
    now = time.time() if now is None else now
    return all(_orphan(claim, now) for claim in claimed)


def _orphan(claim: Path, now: float) -> bool:
    try:
        age = now - os.lstat(claim).st_mtime
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if age >= ORPHAN_AFTER_S:
        return True
    pid_text = claim.name.rsplit(".", 1)[-1]
    return pid_text.isdigit() and not pid_alive(int(pid_text))


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _exists(path: Path) -> bool:
    try:
        os.lstat(path)
    except OSError:
        return False
    return True
