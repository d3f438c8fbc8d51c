"""Outbound: replies and proactive messages through the child's ``send``, and the bridge extras.

A reply's text gets ``responsePrefix``, loses agent scaffolding (``sanitize_outbound``), has
its Markdown rendered (``imsg.gateway.markdown``: plain text, plus native styles through the
bridge when the child has one) and is cut by ``chunk_text``; each chunk is one ``send``. Files
(each at most ``mediaMaxMb``, staged to the remote Mac first when there is one) go one per
``send``, the last text chunk riding on the first file sent as its caption (alone, if no file
could go). After every send, successful or of unknown outcome, the text
(and the ids the child returned) is remembered in the echo cache under the target's scope, so
its echo is not taken for a person's message.

Retries follow the failure's meaning, so nothing is ever sent twice by us:

- never written (the child was gone), -32603 ``not_started``, -32002 database unavailable,
  -32000 busy: retried (``RETRY_DELAYS``) on the current or next child;
- -32004 mutation lane blocked: the child is restarted, then the send retried (it never ran);
- -32602 with ``reply_to``: sent again without it (the child cannot thread);
- -32001 "Delivery outcome unknown", a timeout, or the child dying after the request was
  written: **not retried** (it may have been delivered), logged as such;
- any other error: logged, not retried.

``typing``/``read``/``tapback`` are called only when the child's bridge is ready and lists
them; their failures are logged at debug level and never affect the reply.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from imsg.errors import (
    DATABASE_UNAVAILABLE,
    DELIVERY_OUTCOME_UNKNOWN,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    MUTATION_LANE_BLOCKED,
    ImsgError,
)
from imsg.gateway.chunking import chunk_text, sanitize_outbound
from imsg.gateway.client import ClientGone, NotSent, RpcClient, RpcError, Unanswered
from imsg.gateway.config import AccountConfig
from imsg.gateway.guards import EchoCache
from imsg.gateway.handlers import Reply
from imsg.gateway.markdown import Range, render, slice_ranges, units
from imsg.gateway.probe import ChildInfo
from imsg.gateway.remote import RemoteError, stage_outbound
from imsg.gateway.state import State
from imsg.rpc.errors import ServerBusy
from imsg.send.targets import parse_target

RETRY_DELAYS = (0.5, 1.0, 2.0)

ClientSource = Callable[[float], Awaitable[tuple[RpcClient, ChildInfo]]]


@dataclass(frozen=True)
class Sent:
    """One send's outcome: ``ok``; or ``unknown`` (may have been delivered); else failed."""

    ok: bool
    unknown: bool = False
    result: dict[str, Any] | None = None
    error: str = ""


def send_params(target: str, account: AccountConfig) -> tuple[dict[str, Any], str]:
    """(``send`` params selecting ``target``, its echo scope). Raises InvalidTarget."""
    parsed = parse_target(target, region=account.region, service=account.service)
    if parsed.kind == "chat_id":
        return {"chat_id": int(parsed.value)}, f"chat_id:{parsed.value}"
    if parsed.kind in ("chat_guid", "chat_identifier"):
        return {parsed.kind: parsed.value}, f"{parsed.kind}:{parsed.value}"
    params: dict[str, Any] = {"to": parsed.value, "region": account.region}
    if parsed.service != "auto":
        params["service"] = parsed.service
    return params, f"imessage:{parsed.value}"


class Outbox:
    """Sends for one account, through whatever child is current."""

    def __init__(self, account: AccountConfig, echo: EchoCache, source: ClientSource, *,
                 restart: Callable[[str], None] | None = None, state: State | None = None,
                 log: logging.Logger | None = None,
                 clock: Callable[[], float] = time.time,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self.account = account
        self.echo = echo
        self.source = source
        self.restart = restart
        self.state = state  # set: record sends for another process's echo cache
        self.log = log or logging.getLogger("imsg.gateway")
        self.clock = clock
        self.retry_delays = retry_delays

    async def deliver(self, target: str, reply: Reply, *, prefix: bool = True) -> list[Sent]:
        """Send one reply (text chunks and files) to ``target`` (``prefix``: with
        ``responsePrefix``)."""
        try:
            params, scope = send_params(target, self.account)
        except ImsgError as err:
            self.log.error("[%s] cannot send to %s: %s", self.account.id, target, err.message)
            return [Sent(False, error=err.message)]
        text = sanitize_outbound(reply.text)
        if text and prefix and self.account.response_prefix:
            text = f"{self.account.response_prefix} {text}"
        text, styles = render(text)
        chunks = chunk_text(text, self.account.text_chunk_limit, self.account.chunk_mode)
        formatting = _chunk_formatting(text, chunks, styles)
        files = [f for f in reply.files if self._file_ok(f)]
        caption = chunks.pop() if files and chunks else ""
        caption_formatting = formatting.pop() if files and formatting else []
        outcomes = []
        extra = {"reply_to": reply.reply_to} if reply.reply_to else {}
        for chunk, ranges in zip(chunks, formatting, strict=True):
            outcomes.append(await self._send({**params, "text": chunk, **extra}, scope, chunk,
                                             formatting=ranges))
        for path in files:
            send_path = path
            if self.account.remote_host:
                try:
                    send_path = await stage_outbound(self.account.remote_host, path)
                except RemoteError as err:
                    self.log.error("[%s] file %s not sent: %s", self.account.id, path, err)
                    outcomes.append(Sent(False, error=str(err)))
                    continue
            body, caption = caption, ""
            file_params = {**params, "file": send_path, **extra}
            if body:
                file_params["text"] = body
            outcomes.append(await self._send(file_params, scope, body,
                                             os.path.basename(send_path),
                                             formatting=caption_formatting if body else []))
        if caption:  # no file could go: the caption still does
            outcomes.append(await self._send({**params, "text": caption, **extra}, scope,
                                             caption, formatting=caption_formatting))
        return outcomes

    def _file_ok(self, path: str) -> bool:
        try:
            size = os.path.getsize(path)
        except OSError as exc:
            self.log.error("[%s] reply file %s not sent: %s", self.account.id, path,
                           exc.strerror or exc)
            return False
        if not os.path.isfile(path) or size > self.account.media_max_bytes:
            self.log.error("[%s] reply file %s not sent: larger than mediaMaxMb (%d MiB) or "
                           "not a file", self.account.id, path,
                           self.account.media_max_bytes // (1024 * 1024))
            return False
        return True

    async def _send(self, params: dict[str, Any], scope: str, text: str,
                    file_name: str = "", *, formatting: list[Range] | None = None) -> Sent:
        """One ``send``; ``formatting`` (the text's style ranges) goes along as
        ``text_formatting`` only when the child's bridge can render it."""
        attempt = 0
        while True:
            try:
                client, info = await self.source(self.account.send_timeout_s)
            except TimeoutError:
                return self._failed(scope, "no imsg rpc child became ready")
            if "reply_to" in params and not info.bridge_ready:
                params = {k: v for k, v in params.items() if k != "reply_to"}
            if formatting and info.bridge_ready:
                params = {**params, "text_formatting": [r.to_json() for r in formatting]}
            retry = False
            try:
                result = await client.request("send", params,
                                              timeout=self.account.send_timeout_s)
            except NotSent:
                retry = True
            except Unanswered as exc:
                return self._unknown(scope, text, file_name, str(exc))
            except RpcError as err:
                if err.code == DELIVERY_OUTCOME_UNKNOWN:
                    return self._unknown(scope, text, file_name, str(err))
                if err.code == MUTATION_LANE_BLOCKED and self.restart is not None:
                    self.restart("the child's mutation lane is blocked (-32004)")
                    retry = True
                elif err.code == INVALID_PARAMS and "reply_to" in params:
                    params = {k: v for k, v in params.items() if k != "reply_to"}
                    continue
                elif ((err.code == INTERNAL_ERROR and err.disposition == "not_started")
                      or err.code in (DATABASE_UNAVAILABLE, ServerBusy.CODE)):
                    retry = True
                else:
                    return self._failed(scope, str(err))
                if not retry:
                    return self._failed(scope, str(err))
            else:
                result = result if isinstance(result, dict) else {}
                ids = [result.get(k) for k in ("id", "guid", "message_id")]
                self._remember(scope, text, file_name, ids)
                return Sent(True, result=result)
            if attempt >= len(self.retry_delays):
                return self._failed(scope, f"gave up after {attempt + 1} attempts")
            await asyncio.sleep(self.retry_delays[attempt])
            attempt += 1

    def _remember(self, scope: str, text: str, file_name: str, ids: list[Any]) -> None:
        now = self.clock()
        self.echo.remember(scope, text=text, ids=ids, file_name=file_name, now=now)
        if self.state is not None:
            self.state.record_send(self.account.id, scope, text=text, ids=ids,
                                   file_name=file_name, now=now)

    def _unknown(self, scope: str, text: str, file_name: str, detail: str) -> Sent:
        self._remember(scope, text, file_name, [])
        self.log.warning("[%s] send to %s: outcome unknown, not retried (it may have been "
                         "delivered): %s", self.account.id, scope, detail)
        return Sent(False, unknown=True, error=detail)

    def _failed(self, scope: str, detail: str) -> Sent:
        self.log.error("[%s] send to %s failed: %s", self.account.id, scope, detail)
        return Sent(False, error=detail)

    async def bridge(self, method: str, params: dict[str, Any]) -> bool:
        """A best-effort bridge call (typing, read, tapback): False when unavailable or
        failed."""
        try:
            client, info = await self.source(0.0)  # only a child that is up right now
        except TimeoutError:
            return False
        if not info.bridge(method):
            return False
        try:
            await client.request(method, params, timeout=self.account.probe_timeout_s)
        except (RpcError, ClientGone) as exc:
            self.log.debug("[%s] %s failed: %s", self.account.id, method, exc)
            return False
        return True


def _chunk_formatting(text: str, chunks: list[str], styles: list[Range]) -> list[list[Range]]:
    """Each chunk's share of ``styles`` (chunks are pieces of ``text``, in order, trimmed)."""
    result: list[list[Range]] = []
    at = 0
    for chunk in chunks:
        found = text.find(chunk, at)
        if found < 0 or not styles:
            result.append([])
            continue
        result.append(slice_ranges(styles, units(text[:found]), units(chunk)))
        at = found + len(chunk)
    return result


def chat_selector(chat_guid: str | None, chat_id: int | None) -> dict[str, Any]:
    """The chat selector bridge methods get: the GUID when known, else the id."""
    if chat_guid:
        return {"chat_guid": chat_guid}
    return {"chat_id": chat_id} if chat_id is not None else {}

