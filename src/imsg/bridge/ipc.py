"""File IPC v2, client side: one request published, one response awaited.

1. ``.imsg-rpc/in`` and ``/out`` exist, 0700, no symlink anywhere (``container.ipc_dirs``);
2. the request goes to ``in/<ID>.tmp`` (created exclusively, never through a symlink), then is
   renamed to ``in/<ID>.json``: the rename is the publication point, and before it nothing
   can have been dispatched (any failure up to here raises ``Unpublished``);
3. ``out/<ID>.json`` is looked for every ``poll_s`` until the deadline (the Swift client
   polls every 50 ms; a stat is cheap, so imsg looks more often and answers sooner);
4. the response is read (without following a symlink, at most ``MAX_RESPONSE_BYTES``), then
   deleted, and parsed as untrusted input (``envelope.parse_response``);
5. at the deadline, on cancellation, or when the response is unusable the request is
   reclaimed (``outcome.reclaim``) and ``Unanswered`` says what it may have become.

A request is never written twice: nothing here retries.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
import time
import uuid
from pathlib import Path

from imsg.bridge.container import Container, UnsafePath
from imsg.bridge.envelope import (
    MAX_RESPONSE_BYTES,
    Malformed,
    Response,
    parse_response,
    request_bytes,
)
from imsg.bridge.outcome import Unanswered, Unpublished, claim_settled, reclaim

POLL_S = 0.01
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def new_request_id() -> str:
    return str(uuid.uuid4()).upper()


def exchange(container: Container, action: str, params: dict[str, object], *,
             timeout_s: float, poll_s: float = POLL_S,
             cancel: threading.Event | None = None, request_id: str | None = None) -> Response:
    """Publish one request and return the helper's response. Raises ``Unpublished`` (nothing
    was dispatched), ``Unanswered`` (see ``outcome``) or ``Malformed`` (the response was not
    a valid answer: the helper may have acted)."""
    try:
        inbox, outbox = container.ipc_dirs()
    except UnsafePath as exc:
        raise Unpublished(str(exc)) from None
    rid = request_id or new_request_id()
    publish(inbox, rid, request_bytes(rid, action, params))
    response = outbox / f"{rid}.json"
    deadline = time.monotonic() + timeout_s
    while True:
        raw = read_response(response)
        if raw is not None:
            return parse_response(raw, rid)
        cancelled = cancel is not None and cancel.is_set()
        if cancelled or time.monotonic() >= deadline:
            return _reclaimed(inbox, outbox, rid, timeout_s, cancelled)
        if cancel is not None:
            cancel.wait(poll_s)
        else:
            time.sleep(poll_s)


def publish(inbox: Path, request_id: str, body: bytes) -> None:
    """Write ``<ID>.tmp`` and rename it to ``<ID>.json``; raises Unpublished."""
    temporary = inbox / f"{request_id}.tmp"
    try:
        fd = os.open(temporary, _WRITE_FLAGS, 0o600)
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.rename(temporary, inbox / f"{request_id}.json")
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise Unpublished(f"the request could not be written to {inbox} "
                          f"({exc.strerror or exc})") from None


def read_response(path: Path) -> bytes | None:
    """The response file's bytes, then the file is removed; None while it is absent. Raises
    Malformed for a symlink, a non-regular file or one over the size cap."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        _discard(path)
        if exc.errno == errno.ELOOP:
            raise Malformed("the response file is a symbolic link") from None
        raise Malformed(f"the response file could not be read ({exc.strerror or exc})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Malformed("the response file is not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_RESPONSE_BYTES:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise Malformed(f"the response file could not be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
        _discard(path)
    return b"".join(chunks)


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _reclaimed(inbox: Path, outbox: Path, rid: str, timeout_s: float,
               cancelled: bool) -> Response:
    found = reclaim(inbox, outbox, rid)
    if found.outcome == "response":
        raw = read_response(outbox / f"{rid}.json")
        if raw is not None:
            return parse_response(raw, rid)
        raise Unanswered("may_have_completed", "the response vanished before it could be read",
                         cancelled=cancelled)
    why = "the request was cancelled" if cancelled else f"no response within {timeout_s:g}s"
    detail = f"{why}: {found.detail}"
    if found.outcome == "still_in_flight":
        raise Unanswered("still_in_flight", detail, lambda: _settled(inbox, outbox, rid),
                         cancelled=cancelled)
    raise Unanswered(found.outcome, detail, cancelled=cancelled)


def _settled(inbox: Path, outbox: Path, rid: str) -> bool:
    """The late request can no longer complete; its late answer, if any, is discarded."""
    if not claim_settled(inbox, rid):
        return False
    _discard(outbox / f"{rid}.json")
    return True
