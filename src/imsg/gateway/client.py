"""A JSON-RPC 2.0 client of one ``imsg rpc`` child (line-delimited, over its stdio).

The child is spawned without a shell, in its own session (so stopping it also stops what an
SSH wrapper started). One reader task splits stdout on ``\\n`` (bytes; each complete line
decoded as UTF-8, so U+2028 inside a message and multi-byte characters split across reads are
safe), and:

- a line starting with ``{`` is a frame: a response (its ``id`` matched as a string against
  the pending requests; unknown ids are ignored) or a notification (``method``, no ``id``),
  which is *awaited* before the next line is read, so a slow consumer slows the child down
  instead of growing a queue;
- a line mentioning Full Disk Access / authorization denied marks the client ``fatal``
  (respawning would hit the same wall) and becomes the close reason;
- anything else is noise: collected and logged as one grouped line (at most one per 5 s), never
  a crash. A line longer than ``MAX_LINE`` bytes is dropped.

stderr lines are logged (at most ``STDERR_BURST`` per 5 s, the rest counted). Requests
have ids counting from 1 and a timeout each. Failures are typed:

- ``RpcError``: the child answered with a JSON-RPC error (``code``, ``message``, ``data``);
- ``NotSent``: the request was never written (the child was gone): safe to retry;
- ``Unanswered``: written, then the child died or the timeout passed: the outcome is unknown,
  so a mutation must not be retried blindly. ``CallTimeout`` is the timeout case.

The client never restarts the child: the supervisor does.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from imsg.errors import ChildFailed

MAX_LINE = 32 * 1024 * 1024
READ_CHUNK = 256 * 1024
NOISE_KEEP = 64
LOG_WINDOW_S = 5.0
STDERR_BURST = 20
STOP_GRACE_S = 0.5
TERM_GRACE_S = 2.0
_PERMISSION = re.compile(r"permission error|authorization denied|full disk access",
                         re.IGNORECASE)

Notify = Callable[[str, dict[str, Any]], Awaitable[None]]


class RpcError(Exception):
    """The child answered a JSON-RPC error."""

    def __init__(self, code: int | None, message: str, data: Any = None) -> None:
        detail = data if isinstance(data, str) else json.dumps(data) if data is not None else ""
        super().__init__(f"{message or 'imsg rpc error'}: code={code}"
                         + (f" {detail}" if detail else ""))
        self.code = code
        self.message = message
        self.data = data

    @property
    def disposition(self) -> str | None:
        return self.data.get("disposition") if isinstance(self.data, dict) else None


class ClientGone(Exception):
    """The child is not there (any more) to answer."""


class NotSent(ClientGone):
    """Never written to the child: nothing happened, a retry is safe."""


class Unanswered(ClientGone):
    """Written, but no answer came: the outcome is unknown."""


class CallTimeout(Unanswered):
    pass


class _RateLimited:
    """At most ``burst`` log calls per window; the rest are counted and summarized."""

    def __init__(self, log: Callable[[str], None], burst: int) -> None:
        self.log = log
        self.burst = burst
        self.window_start = 0.0
        self.count = 0
        self.suppressed = 0

    def __call__(self, text: str) -> None:
        now = time.monotonic()
        if now - self.window_start >= LOG_WINDOW_S:
            if self.suppressed:
                self.log(f"({self.suppressed} more lines not shown)")
            self.window_start, self.count, self.suppressed = now, 0, 0
        if self.count < self.burst:
            self.count += 1
            self.log(text)
        else:
            self.suppressed += 1


class RpcClient:
    """One running child. Create with ``await RpcClient.start(argv, …)``."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str, notify: Notify,
                 log: logging.Logger) -> None:
        self.proc = proc
        self.name = name
        self.log = log
        self._notify = notify
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.fatal = ""  # set when respawning cannot help (a permission problem)
        self._noise: list[str] = []
        self._noise_total = 0
        self._noise_logged_at = 0.0
        self._stderr_log = _RateLimited(lambda t: log.warning("%s stderr: %s", name, t),
                                        STDERR_BURST)
        self._tasks = [asyncio.create_task(self._read_stdout()),
                       asyncio.create_task(self._read_stderr())]

    @classmethod
    async def start(cls, argv: Sequence[str], *, notify: Notify, name: str = "imsg rpc",
                    log: logging.Logger | None = None,
                    env: dict[str, str] | None = None) -> RpcClient:
        """Spawn ``argv`` (no shell). Raises ChildFailed when it cannot be started."""
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, start_new_session=True, env=env)
        except OSError as exc:
            raise ChildFailed(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
        return cls(proc, name, notify, log or logging.getLogger("imsg.gateway"))

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return not self.closed.is_set()

    # --- requests ------------------------------------------------------------------------------

    async def request(self, method: str, params: dict[str, Any] | None = None, *,
                      timeout: float | None = 10.0) -> Any:
        """The ``result`` of ``method``. Raises RpcError, NotSent, Unanswered/CallTimeout."""
        if self.closed.is_set() or self.proc.stdin is None or self.proc.stdin.is_closing():
            raise NotSent(f"{self.name} not running ({self.close_reason or 'closed'})")
        rid = next(self._ids)
        frame = json.dumps({"jsonrpc": "2.0", "id": rid, "method": method,
                            "params": params or {}}, ensure_ascii=False,
                           separators=(",", ":")).encode("utf-8") + b"\n"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[str(rid)] = future
        try:
            try:
                self.proc.stdin.write(frame)
            except (OSError, RuntimeError) as exc:
                raise NotSent(f"{self.name}: cannot write {method}: {exc}") from None
            try:
                await self.proc.stdin.drain()
            except (OSError, RuntimeError) as exc:
                raise Unanswered(f"{self.name}: writing {method} failed: {exc}") from None
            try:
                return await asyncio.wait_for(asyncio.shield(future), timeout)
            except TimeoutError:
                raise CallTimeout(f"{self.name} timeout ({method}) after "
                                  f"{timeout:g}s") from None
        finally:
            self._pending.pop(str(rid), None)

    def _resolve(self, frame: dict[str, Any]) -> None:
        future = self._pending.get(str(frame.get("id")))
        if future is None or future.done():
            return
        error = frame.get("error")
        if error is not None:
            if not isinstance(error, dict):
                error = {"message": str(error)}
            code = error.get("code")
            future.set_exception(RpcError(code if isinstance(code, int) else None,
                                          str(error.get("message") or ""), error.get("data")))
        else:
            future.set_result(frame.get("result"))

    # --- reading --------------------------------------------------------------------------------

    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        buffer = b""
        discarding = False
        try:
            while True:
                chunk = await self.proc.stdout.read(READ_CHUNK)
                if not chunk:
                    break
                buffer += chunk
                while True:
                    end = buffer.find(b"\n")
                    if end < 0:
                        break
                    line, buffer = buffer[:end], buffer[end + 1:]
                    if discarding:
                        discarding = False
                        continue
                    await self._line(line)
                if len(buffer) > MAX_LINE:
                    self.log.warning("%s: dropped an output line longer than %d bytes",
                                     self.name, MAX_LINE)
                    buffer, discarding = b"", True
            if buffer.strip() and not discarding:
                await self._line(buffer)
        finally:
            self._flush_noise(force=True)
            await self._closed()

    async def _line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").strip()
        if not text:
            return
        if text.startswith("{"):
            try:
                frame = json.loads(text)
            except ValueError:
                frame = None
            if isinstance(frame, dict):
                self._flush_noise()
                await self._frame(frame)
                return
        if _PERMISSION.search(text):
            if not self.fatal:
                self.fatal = f"{self.name} reports a permission problem: {text[:300]}"
                self.log.error("%s", self.fatal)
            return
        self._noise.append(text[:300])
        self._noise_total += 1
        if len(self._noise) >= NOISE_KEEP:
            self._flush_noise()

    def _flush_noise(self, force: bool = False) -> None:
        if not self._noise:
            return
        now = time.monotonic()
        if not force and now - self._noise_logged_at < LOG_WINDOW_S:
            if len(self._noise) >= NOISE_KEEP:
                del self._noise[: NOISE_KEEP // 2]  # keep the newest, count the rest
            return
        self.log.warning("%s wrote %d non-JSON line(s) on stdout (ignored), last: %s",
                         self.name, self._noise_total, " | ".join(self._noise[-3:]))
        self._noise.clear()
        self._noise_total = 0
        self._noise_logged_at = now

    async def _frame(self, frame: dict[str, Any]) -> None:
        if "id" in frame and ("result" in frame or "error" in frame):
            if frame["id"] is None:
                self.log.warning("%s answered an unreadable request: %s", self.name,
                                 json.dumps(frame.get("error"))[:300])
                return
            self._resolve(frame)
            return
        method = frame.get("method")
        if isinstance(method, str) and "id" not in frame:
            params = frame.get("params")
            try:
                await self._notify(method, params if isinstance(params, dict) else {})
            except Exception:
                self.log.exception("%s: handling a %s notification failed", self.name, method)

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while True:
            try:
                raw = await self.proc.stderr.readline()
            except ValueError:  # a line over the stream limit: skip it
                continue
            if not raw:
                return
            text = raw.decode("utf-8", "replace").strip()
            if not text:
                continue
            if "full disk access" in text.lower() and "chat.db" in text.lower():
                self.fatal = self.fatal or f"{self.name}: {text[:300]}"
            self._stderr_log(text[:500])

    async def _closed(self) -> None:
        try:
            code = await asyncio.wait_for(self.proc.wait(), TERM_GRACE_S)
        except TimeoutError:  # stdout closed but the process lingers
            self._signal(signal.SIGKILL)
            code = await self.proc.wait()
        if code < 0:
            reason = f"{self.name} exited (signal {signal.Signals(-code).name})"
        elif code:
            reason = f"{self.name} exited (code {code})"
        else:
            reason = f"{self.name} closed"
        self.close_reason = self.fatal or reason
        for future in list(self._pending.values()):
            if not future.done():
                future.set_exception(Unanswered(self.close_reason))
        self.closed.set()

    # --- stopping ---------------------------------------------------------------------------

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """End stdin (imsg exits on EOF), then SIGTERM after ``grace_s``, SIGKILL after
        ``TERM_GRACE_S`` more; returns once the reader has finished."""
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            with contextlib.suppress(OSError, RuntimeError):
                self.proc.stdin.close()
        for sig, wait in ((None, grace_s), (signal.SIGTERM, TERM_GRACE_S),
                          (signal.SIGKILL, TERM_GRACE_S)):
            if sig is not None:
                self._signal(sig)
            try:
                await asyncio.wait_for(self.closed.wait(), wait)
                break
            except TimeoutError:
                continue
        for task in self._tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def kill(self) -> None:
        """SIGKILL the child (and its process group) now."""
        self._signal(signal.SIGKILL)

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)
