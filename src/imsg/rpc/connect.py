"""``imsg rpc --connect``: a stdio ↔ Unix-socket bridge to a running ``imsg rpc --socket``.

A gateway that can only spawn a child (``cliPath``) uses the service this way. Requests go to
the service byte for byte as they arrive; the service's frames are written to stdout whole
lines at a time, so stdout only ever carries complete frames. The bridge keeps a ledger of the
requests still unanswered and the subscriptions still open, for one purpose: if the service
goes away mid-session, no client is left waiting.

Ends:

- stdin EOF half-closes the socket; the service answers what is still running and closes;
  the bridge then returns 0;
- stdout closed, or SIGTERM/SIGINT: returns 0 at once;
- the service closes the connection (or resets it) while requests are unanswered, while
  subscriptions are open, or before stdin ended: every unanswered request gets an error
  response (``-32001 Delivery outcome unknown`` with a delivery object for methods that may
  have changed something, such as ``send``; ``-32603`` for reads), every open subscription an
  ``error`` notification, then ``bridge`` raises ``ServiceError`` (one stderr line, exit 22),
  so the gateway restarts its child, which reconnects (``imsg.rpc.client.open_service``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from types import FrameType
from typing import Any

import msgspec

from imsg.errors import DeliveryUnknown, ServiceError

CHUNK = 1024 * 1024
MAX_TRACKED_LINE = 64 * 1024 * 1024  # a longer request is forwarded but not tracked
READ_METHODS = frozenset({
    "initialize", "status", "chats.list", "chats.get", "group", "messages.history",
    "messages.search", "messages.after", "messages.stats", "messages.scheduled",
    "message.send_status", "handles.check", "watch.subscribe", "watch.unsubscribe",
    "bridge.events.subscribe", "contacts.available", "contacts.shouldShareContact",
})
SUBSCRIBE_METHODS = frozenset({"watch.subscribe", "bridge.events.subscribe"})
ENDING_NOTIFICATIONS = frozenset({"error", "watch.overflow"})
_json = msgspec.json.Decoder()


class Lines:
    """Cuts a byte stream into complete lines (without their newline)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        lines = []
        start = 0
        while (newline := data.find(b"\n", start)) >= 0:
            self._buf += data[start:newline]
            lines.append(bytes(self._buf))
            self._buf.clear()
            start = newline + 1
        self._buf += data[start:]
        return lines


class Ledger:
    """Unanswered requests (by id) and open subscriptions, as seen on the wire. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[bytes, list[tuple[Any, str, Any]]] = {}
        self._subscriptions: set[Any] = set()

    def sent(self, line: bytes) -> None:
        """Note the requests in a line going to the service."""
        for item in _objects(line):
            method, rid = item.get("method"), item.get("id", _MISSING)
            if not isinstance(method, str) or rid is _MISSING:
                continue  # a notification, or not a request: nothing will answer it
            params = item.get("params")
            target = params.get("subscription") if isinstance(params, dict) else None
            with self._lock:
                self._pending.setdefault(_key(rid), []).append((rid, method, target))

    def received(self, line: bytes) -> None:
        """Note the responses and the subscription ends in a line from the service."""
        for item in _objects(line):
            if "id" in item and ("result" in item or "error" in item):
                self._answered(item)
            elif item.get("method") in ENDING_NOTIFICATIONS:
                params = item.get("params")
                if isinstance(params, dict):
                    with self._lock:
                        self._subscriptions.discard(params.get("subscription"))

    def _answered(self, item: dict[str, Any]) -> None:
        with self._lock:
            waiting = self._pending.get(_key(item["id"]))
            if not waiting:
                return
            _, method, target = waiting.pop(0)
            if not waiting:
                del self._pending[_key(item["id"])]
            result = item.get("result")
            if method in SUBSCRIBE_METHODS and isinstance(result, dict):
                self._subscriptions.add(result.get("subscription"))
            elif method == "watch.unsubscribe" and "result" in item:
                self._subscriptions.discard(target)

    def answered_all(self) -> bool:
        with self._lock:
            return not self._pending

    def orphans(self, why: str) -> list[bytes]:
        """A frame for every unanswered request and open subscription (then forgets them)."""
        with self._lock:
            pending = [entry for entries in self._pending.values() for entry in entries]
            subscriptions = sorted(self._subscriptions, key=repr)
            self._pending.clear()
            self._subscriptions.clear()
        frames = [msgspec.json.encode({"jsonrpc": "2.0", "id": rid, "error": _error(method, why)})
                  for rid, method, _ in pending]
        frames += [msgspec.json.encode({"jsonrpc": "2.0", "method": "error", "params": {
            "subscription": sub, "error": {"message": why}}}) for sub in subscriptions]
        return frames


_MISSING = object()


def _objects(line: bytes) -> list[dict[str, Any]]:
    try:
        value = _json.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return []
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, dict)]


def _key(rid: Any) -> bytes:
    return msgspec.json.encode(rid)


def _error(method: str, why: str) -> dict[str, Any]:
    if method in READ_METHODS:
        return {"code": -32603, "message": "Internal error", "data": why}
    unknown = DeliveryUnknown(why, disposition="may_have_completed", transport="unknown",
                              operation=method)
    return {"code": unknown.rpc_code, "message": unknown.rpc_message, "data": unknown.rpc_data}


class _Stopped(Exception):
    """SIGTERM/SIGINT arrived."""


class _SendFailed(Exception):
    """Writing to the service failed."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


class Bridge:
    """One bridged session (see the module docstring)."""

    def __init__(self, sock: socket.socket, path: str, in_fd: int = 0, out_fd: int = 1) -> None:
        self.sock = sock
        self.path = path
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.ledger = Ledger()
        self.stdin_done = threading.Event()

    def run(self) -> int:
        """Bridge until an end (see the module docstring); 0, or raises ServiceError."""
        try:
            if threading.current_thread() is threading.main_thread():
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, _stop)
            threading.Thread(target=self._upstream, daemon=True,
                             name="imsg-bridge-stdin").start()
            lost = self._downstream()
        except (_Stopped, BrokenPipeError):
            return 0
        except OSError:  # stdout is gone
            return 0
        finally:
            self.sock.close()
        if lost is None:
            return 0
        with contextlib.suppress(OSError):
            self._write(b"".join(frame + b"\n" for frame in self.ledger.orphans(lost)))
        raise ServiceError(lost)

    def _downstream(self) -> str | None:
        """Copy whole lines from the service to stdout; None at a normal end, else why the
        service is lost."""
        lines = Lines()
        while True:
            try:
                chunk = self.sock.recv(CHUNK)
            except ConnectionError as exc:
                return self._lost(f"the connection was reset ({exc.strerror or exc})")
            if not chunk:  # after stdin EOF, subscriptions end silently with the session
                if self.stdin_done.is_set() and self.ledger.answered_all():
                    return None
                return self._lost("the service closed the connection")
            complete = lines.feed(chunk)
            if complete:
                for line in complete:
                    self.ledger.received(line)
                self._write(b"".join(line + b"\n" for line in complete))

    def _lost(self, what: str) -> str:
        return (f"The imsg service at {self.path} went away mid-session: {what}. Requests "
                "still unanswered may or may not have been carried out; run the command again "
                "to reconnect (`imsg service status`, `imsg service logs`).")

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.out_fd, view):]

    def _upstream(self) -> None:
        """Forward stdin to the service, each line noted in the ledger before it is sent (a
        partial line is held until its newline, unless it grows past MAX_TRACKED_LINE: then
        it is forwarded as it comes, untracked)."""
        held = bytearray()
        skipping = False
        try:
            while chunk := os.read(self.in_fd, CHUNK):
                out = bytearray()
                start = 0
                while (newline := chunk.find(b"\n", start)) >= 0:
                    if skipping:
                        skipping = False
                    else:
                        held += chunk[start:newline]
                        self.ledger.sent(bytes(held))
                        out += held
                        held.clear()
                        start = newline  # the newline itself is appended below
                    out += chunk[start:newline + 1]
                    start = newline + 1
                if skipping:
                    out += chunk[start:]
                else:
                    held += chunk[start:]
                    if len(held) > MAX_TRACKED_LINE:
                        out += held
                        held.clear()
                        skipping = True
                if out:
                    self._send(out)
            if held:
                self.ledger.sent(bytes(held))
                self._send(held)
        except _SendFailed:
            return  # the service is gone; the other direction reports it
        except OSError:
            pass  # stdin failed: like its end
        self.stdin_done.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)


    def _send(self, data: bytes | bytearray) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise _SendFailed from exc


def bridge(sock: socket.socket, path: str, in_fd: int = 0, out_fd: int = 1) -> int:
    """Bridge stdin/stdout and ``sock`` (connected to ``path``); see ``Bridge``."""
    return Bridge(sock, path, in_fd, out_fd).run()
