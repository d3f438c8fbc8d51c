"""Line framing: bytes in → request lines; frames out → one line each, with backpressure.

Input: ``LineSplitter`` cuts a byte stream at ``\\n`` (a trailing ``\\r`` is dropped). A line
longer than ``MAX_LINE`` bytes is never buffered whole: its bytes are dropped as they arrive
and it is reported once as ``OVERLONG``. ``read_fd`` feeds a file descriptor (stdin: a pipe, a
file or a terminal) to a session from a thread; sockets are read by asyncio directly.

Output: a sink takes encoded frames (no newline) and writes each as one line, in order, never
interleaved. ``send`` waits while more than ``HIGH_WATER`` bytes are queued, so a peer that
stops reading stalls its producers instead of growing memory. When the peer goes away, ``send``
raises ``PeerGone`` and the sink's ``lost`` event is set.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import queue
import select
import threading
from collections.abc import Callable, Coroutine
from typing import Final, Protocol

MAX_LINE: Final = 16 * 1024 * 1024
HIGH_WATER: Final = 1024 * 1024
READ_CHUNK: Final = 1024 * 1024
IDLE_CHECK_S: Final = 1.0


class Overlong:
    """Stands for one input line that exceeded ``MAX_LINE`` (its bytes were discarded)."""


OVERLONG: Final = Overlong()
Line = bytes | Overlong


class PeerGone(Exception):
    """The other side closed the connection or the pipe."""


class LineSplitter:
    """Incremental line splitter with a hard per-line limit (memory stays below the limit)."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[Line]:
        lines: list[Line] = []
        if self._discarding:
            newline = data.find(b"\n")
            if newline < 0:
                return lines
            data = data[newline + 1:]
            self._discarding = False
        buf = self._buf
        scan = len(buf)
        buf += data
        begin = 0
        while (newline := buf.find(b"\n", scan)) >= 0:
            lines.append(self._line(buf, begin, newline))
            begin = scan = newline + 1
        del buf[:begin]
        if len(buf) > self.max_line:
            buf.clear()
            self._discarding = True
            lines.append(OVERLONG)
        return lines

    def finish(self) -> list[Line]:
        """At end of input: the last line if it had no newline."""
        if self._discarding or not self._buf:
            return []
        line = self._line(self._buf, 0, len(self._buf))
        self._buf.clear()
        return [line]

    def _line(self, buf: bytearray, begin: int, end: int) -> Line:
        if end > begin and buf[end - 1] == 0x0D:
            end -= 1
        if end - begin > self.max_line:
            return OVERLONG
        return bytes(buf[begin:end])


class Sink(Protocol):
    lost: asyncio.Event

    async def send(self, frame: bytes) -> None: ...

    def backlog(self) -> int: ...

    async def aclose(self) -> None: ...


def read_fd(fd: int, loop: asyncio.AbstractEventLoop,
            feed: Callable[[bytes], Coroutine[object, object, None]]) -> threading.Thread:
    """Start a daemon thread that reads ``fd`` and awaits ``feed(chunk)`` on ``loop`` for each
    chunk (so input is read only as fast as it is dispatched); ``feed(b"")`` means end of
    input (EOF or a read error)."""

    def run() -> None:
        while True:
            try:
                chunk = os.read(fd, READ_CHUNK)
            except OSError:
                chunk = b""
            try:
                asyncio.run_coroutine_threadsafe(feed(chunk), loop).result()
            except (RuntimeError, asyncio.CancelledError, concurrent.futures.CancelledError):
                return  # the loop is gone or cancelled the feed: shutting down
            if not chunk:
                return

    thread = threading.Thread(target=run, name="imsg-rpc-stdin", daemon=True)
    thread.start()
    return thread


def _hung_up(fd: int) -> bool:
    """True when the reading side of ``fd`` (a pipe, socket or terminal) is gone; False
    where ``poll`` is missing (then only a failed write tells)."""
    if not hasattr(select, "poll"):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP | select.POLLNVAL)
               for _, events in poller.poll(0))


class FdSink:
    """Writes frames to a file descriptor from a daemon thread, coalescing queued frames into
    one ``write``. Works for pipes, files and terminals alike. The peer is gone (``lost``,
    then ``send`` raises ``PeerGone``) when a write fails or, while idle, when the descriptor
    reports a hang-up (checked every ``IDLE_CHECK_S``). ``error`` keeps a failed write's
    exception unless it was the reader going away (EPIPE, a hang-up): a full disk (ENOSPC) or a
    bad descriptor (EBADF) is an output error the caller must report."""

    def __init__(self, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        self.lost = asyncio.Event()
        self.error: OSError | None = None
        self._fd = fd
        self._loop = loop
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending = 0
        self._waiting = False
        self._space = asyncio.Event()
        self._done = loop.create_future()
        threading.Thread(target=self._run, name="imsg-rpc-stdout", daemon=True).start()

    async def send(self, frame: bytes) -> None:
        while True:
            if self.lost.is_set():
                raise PeerGone
            with self._lock:
                if self._pending <= HIGH_WATER:
                    self._pending += len(frame) + 1
                    break
                self._waiting = True
                self._space.clear()
            await self._space.wait()
        self._queue.put(frame)

    async def aclose(self) -> None:
        """Write what is queued, then stop the writer thread."""
        self._queue.put(None)
        await asyncio.shield(self._done)

    def backlog(self) -> int:
        """Bytes queued and not yet written."""
        with self._lock:
            return self._pending

    def _run(self) -> None:
        stop = False
        while not stop:
            frames: list[bytes] = []
            try:
                item = self._queue.get(timeout=IDLE_CHECK_S)
            except queue.Empty:
                if _hung_up(self._fd):
                    self._notify(self._on_lost)
                    break
                continue
            while item is not None:
                frames.append(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            stop = item is None
            if frames and not self._write(b"\n".join(frames) + b"\n"):
                self._notify(self._on_lost)
                break
        self._notify(self._finished)

    def _write(self, data: bytes) -> bool:
        """Write all of ``data``, releasing its share of the backlog as it goes; False when
        the peer is gone."""
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._fd, view)
            except InterruptedError:
                continue
            except BrokenPipeError:
                return False
            except OSError as exc:
                self.error = exc
                return False
            view = view[written:]
            with self._lock:
                self._pending -= written
                wake = self._waiting and self._pending <= HIGH_WATER
                if wake:
                    self._waiting = False
            if wake:
                self._notify(self._space.set)
        return True

    def _notify(self, callback: Callable[[], object]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self._loop.call_soon_threadsafe(callback)

    def _on_lost(self) -> None:
        self.lost.set()
        self._space.set()

    def _finished(self) -> None:
        if not self._done.done():
            self._done.set_result(None)


class StreamSink:
    """Writes frames to an asyncio stream (a socket client); ``drain`` provides backpressure."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.lost = asyncio.Event()
        self._writer = writer
        writer.transport.set_write_buffer_limits(high=HIGH_WATER)

    async def send(self, frame: bytes) -> None:
        if self.lost.is_set() or self._writer.is_closing():
            self.lost.set()
            raise PeerGone
        self._writer.write(frame + b"\n")
        try:
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            self.lost.set()
            raise PeerGone from exc

    def backlog(self) -> int:
        """Bytes buffered by the transport and not yet sent."""
        return self._writer.transport.get_write_buffer_size()

    async def aclose(self) -> None:
        try:
            if not self._writer.is_closing():
                await self._writer.drain()
            self._writer.close()
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            self.lost.set()
