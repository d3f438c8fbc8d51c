"""Handlers: how a dispatched envelope reaches the agent, and its answer comes back.

Three kinds (``[imessage.handler]``, exactly one):

- ``command = [argv…]``: run without a shell, in the config file's directory; the envelope
  is JSON on stdin, the answer is stdout (at most ``MAX_OUTPUT`` bytes). Past ``timeoutMs``
  (default 120 s) the process group is killed; a non-zero exit is an error (its last stderr
  lines logged) and nothing is sent.
- ``webhook = "http(s)://…"``: the envelope is POSTed as JSON (``headers`` added), the answer
  is the response body. Connection failures are retried (3 attempts in all); an HTTP error
  status or a timeout is an error, never retried (the agent may have acted).
- ``python = "module:function"``: imported once (the config file's directory first on
  ``sys.path``), called with the envelope dict; sync functions run in a worker thread, async
  ones are awaited; either is given ``timeoutMs`` (a sync function that overruns keeps its
  thread, but its answer is discarded).

The answer: nothing (no reply); plain text (one reply); or a JSON object (a dict from Python)
with ``replies`` and/or ``react``::

    {"replies": [{"text": "…", "files": ["/path"], "reply_to": true}], "react": "like"}

``reply_to`` threads that reply to the inbound message (``true``) or to a message GUID (a
string); ``react`` puts a tapback on the inbound message. Both need the bridge and are left out
silently without it. A JSON object with neither key is plain text. A malformed structured
answer is a ``HandlerError`` (logged; nothing sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from imsg.gateway.config import HandlerConfig

MAX_OUTPUT = 4 * 1024 * 1024
WEBHOOK_ATTEMPTS = 3
WEBHOOK_RETRY_S = 0.25
ANSWER_KEYS = frozenset({"replies", "react"})
REPLY_KEYS = frozenset({"text", "files", "reply_to"})


class HandlerError(Exception):
    """The handler failed or answered something unusable; ``str()`` says what."""


@dataclass(frozen=True)
class Reply:
    text: str = ""
    files: tuple[str, ...] = ()
    reply_to: str | None = None  # a message GUID to thread under


@dataclass(frozen=True)
class Answer:
    replies: tuple[Reply, ...] = ()
    react: str | None = None


Handler = Callable[[dict[str, Any]], Awaitable[Answer]]


def parse_answer(raw: Any, *, inbound_guid: str, base_dir: str = ".") -> Answer:
    """The handler's answer (see the module docstring). Raises HandlerError."""
    if raw is None:
        return Answer()
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return Answer()
        if text.startswith("{"):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict) and ANSWER_KEYS & parsed.keys():
                return _structured(parsed, inbound_guid, base_dir)
        return Answer((Reply(text=text),))
    if isinstance(raw, dict):
        return _structured(raw, inbound_guid, base_dir)
    raise HandlerError(f"answer must be text, a JSON object or nothing, not {type(raw).__name__}")


def _structured(answer: dict[str, Any], inbound_guid: str, base_dir: str) -> Answer:
    unknown = sorted(set(answer) - ANSWER_KEYS)
    if unknown:
        raise HandlerError(f"answer has unknown key {unknown[0]!r} (use replies, react)")
    replies_raw = answer.get("replies") or []
    if not isinstance(replies_raw, list):
        raise HandlerError("answer.replies must be a list")
    replies = []
    for index, item in enumerate(replies_raw):
        if isinstance(item, str):
            item = {"text": item}
        if not isinstance(item, dict):
            raise HandlerError(f"answer.replies[{index}] must be an object or a string")
        extra = sorted(set(item) - REPLY_KEYS)
        if extra:
            raise HandlerError(f"answer.replies[{index}] has unknown key {extra[0]!r}")
        text = item.get("text", "")
        files = item.get("files", [])
        thread = item.get("reply_to")
        if not isinstance(text, str):
            raise HandlerError(f"answer.replies[{index}].text must be a string")
        if not isinstance(files, list) or not all(isinstance(f, str) and f for f in files):
            raise HandlerError(f"answer.replies[{index}].files must be a list of paths")
        if thread is not None and not isinstance(thread, bool | str):
            raise HandlerError(f"answer.replies[{index}].reply_to must be true or a GUID")
        reply_to = inbound_guid if thread is True else (thread or None)
        paths = tuple(os.path.join(base_dir, os.path.expanduser(f)) for f in files)
        if text.strip() or paths:
            replies.append(Reply(text, paths, reply_to))
    react = answer.get("react")
    if react is not None and not isinstance(react, str):
        raise HandlerError("answer.react must be a string (like, love, laugh…)")
    return Answer(tuple(replies), (react.strip() or None) if react else None)


def make_handler(config: HandlerConfig) -> Handler:
    if config.kind == "command":
        return _command_handler(config)
    if config.kind == "webhook":
        return _webhook_handler(config)
    return _python_handler(config)


def _command_handler(config: HandlerConfig) -> Handler:
    async def run(envelope: dict[str, Any]) -> Answer:
        data = json.dumps(envelope, ensure_ascii=False).encode("utf-8")
        try:
            proc = await asyncio.create_subprocess_exec(
                *config.command, cwd=config.base_dir, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                start_new_session=True)
        except OSError as exc:
            raise HandlerError(f"cannot start {config.command[0]}: "
                               f"{exc.strerror or exc}") from None
        try:
            out, err = await asyncio.wait_for(_communicate(proc, data), config.timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise HandlerError(f"timed out after {config.timeout_s:g}s (killed)") from None
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        if proc.returncode:
            tail = " | ".join(err.decode("utf-8", "replace").strip().splitlines()[-3:])
            raise HandlerError(f"exited with code {proc.returncode}"
                               + (f": {tail[:500]}" if tail else ""))
        return parse_answer(out, inbound_guid=str(envelope["message"].get("guid", "")),
                            base_dir=config.base_dir)

    return run


async def _communicate(proc: asyncio.subprocess.Process, data: bytes) -> tuple[bytes, bytes]:
    """stdin written and closed, stdout (capped) and stderr read to the end."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None

    async def feed() -> None:
        assert proc.stdin is not None
        with contextlib.suppress(OSError, RuntimeError):
            proc.stdin.write(data)
            await proc.stdin.drain()
        with contextlib.suppress(OSError, RuntimeError):
            proc.stdin.close()

    async def read(stream: asyncio.StreamReader, cap: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while chunk := await stream.read(65536):
            if size < cap:
                chunks.append(chunk[: cap - size])
            size += len(chunk)
        if size > cap:
            raise HandlerError(f"wrote more than {cap} bytes on stdout")
        return b"".join(chunks)

    _, out, err = await asyncio.gather(feed(), read(proc.stdout, MAX_OUTPUT),
                                       read(proc.stderr, 1 << 20))
    await proc.wait()
    return out, err


class _Webhook:
    """The webhook handler; ``aclose`` releases its connection pool."""

    def __init__(self, config: HandlerConfig) -> None:
        import httpx

        self.config = config
        self.client = httpx.AsyncClient(timeout=config.timeout_s, headers=dict(config.headers))

    async def __call__(self, envelope: dict[str, Any]) -> Answer:
        import httpx

        config = self.config
        reason = ""
        for attempt in range(WEBHOOK_ATTEMPTS):
            try:
                response = await self.client.post(config.webhook, json=envelope)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                reason = str(exc) or type(exc).__name__
                if attempt + 1 < WEBHOOK_ATTEMPTS:
                    await asyncio.sleep(WEBHOOK_RETRY_S * (attempt + 1))
                continue
            except httpx.TimeoutException:
                raise HandlerError(f"webhook timed out after {config.timeout_s:g}s") from None
            except httpx.HTTPError as exc:
                raise HandlerError(f"webhook failed: {exc}") from None
            if response.status_code >= 400:
                raise HandlerError(f"webhook answered HTTP {response.status_code}: "
                                   f"{response.text[:200]}")
            return parse_answer(response.text,
                                inbound_guid=str(envelope["message"].get("guid", "")),
                                base_dir=config.base_dir)
        raise HandlerError(f"webhook unreachable after {WEBHOOK_ATTEMPTS} attempts: {reason}")

    async def aclose(self) -> None:
        await self.client.aclose()


def _webhook_handler(config: HandlerConfig) -> Handler:
    return _Webhook(config)


def load_python_target(target: str, base_dir: str) -> Callable[..., Any]:
    """Import ``module:function``. Raises HandlerError."""
    module_name, _, function_name = target.partition(":")
    if base_dir not in sys.path:
        sys.path.insert(0, base_dir)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise HandlerError(f"cannot import {module_name}: {exc}") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise HandlerError(f"{target}: no function {function_name} in {module_name}")
    return function  # type: ignore[no-any-return]


def _python_handler(config: HandlerConfig) -> Handler:
    function = load_python_target(config.python, config.base_dir)
    is_async = inspect.iscoroutinefunction(function)

    async def run(envelope: dict[str, Any]) -> Answer:
        try:
            if is_async:
                result = await asyncio.wait_for(function(envelope), config.timeout_s)
            else:
                result = await asyncio.wait_for(asyncio.to_thread(function, envelope),
                                                config.timeout_s)
        except TimeoutError:
            raise HandlerError(f"timed out after {config.timeout_s:g}s") from None
        except HandlerError:
            raise
        except Exception as exc:
            raise HandlerError(f"raised {type(exc).__name__}: {exc}") from None
        return parse_answer(result, inbound_guid=str(envelope["message"].get("guid", "")),
                            base_dir=config.base_dir)

    return run
