"""One account's child: spawned, probed, subscribed, watched, restarted.

A session: spawn ``<cliPath> rpc [--db dbPath]``; probe it (``initialize`` → ``status`` →
``chats.list``); on the very first start, take the newest ROWID as the cursor (so old
history is not taken for new); catch up from the durable cursor (``messages.after`` pages of
500 when the child lists it; otherwise ``watch.subscribe``'s own replay, counted as catch-up
until the newest ROWID seen at subscribe time arrives or the stream goes quiet); then
``watch.subscribe {since_rowid: cursor, debounce_ms: 50}`` (and ``buffer_limit: 4096`` with a
protocol v1 child) and feed every notification to the pipeline.

The session ends when the child exits, stops answering the periodic health check
(``status`` every ``healthIntervalMs``, each within ``probeTimeoutMs``), never answers the
probe, reports a terminal ``error``, or a send finds its mutation lane blocked (-32004). A
``watch.overflow`` (or our older server's ``error`` with ``last_rowid``) does not end it: the
cursor is moved back to the resume point and the same child is subscribed again (duplicates
are recognized by GUID, so nothing is handled twice and nothing is skipped).

After a session ends the child is stopped and started again after a delay: ``restartInitialMs``
(500 ms: the first retry within a second), doubling up to ``restartMaxMs``, +0–10 % jitter,
back to the first delay after a child that ran ``HEALTHY_S``. There is no attempt limit: an
account keeps trying (at the longest delay when the child reported a permission problem),
each failure logged on one line and kept as the account's ``last_error``; one account's
failures never touch another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from imsg.errors import ChildFailed, StateError
from imsg.gateway.client import CallTimeout, ClientGone, RpcClient, RpcError
from imsg.gateway.config import AccountConfig
from imsg.gateway.pipeline import Pipeline
from imsg.gateway.probe import ChildInfo, newest_rowid, probe
from imsg.gateway.state import State

HEALTHY_S = 10.0
PAGE_LIMIT = 500
CATCHUP_QUIET_S = 0.5
CATCHUP_MAX_S = 10.0
WATCH_DEBOUNCE_MS = 50  # the watch's default (500 ms) would delay every reply by half a second
WATCH_BUFFER_LIMIT = 4096  # protocol v1's largest: a burst overflows later (and is resumed)


class SessionEnded(Exception):
    """Why a session ended (one line)."""


class Supervisor:
    def __init__(self, account: AccountConfig, state: State, pipeline: Pipeline, *,
                 log: logging.Logger | None = None, env: dict[str, str] | None = None,
                 jitter: Callable[[], float] = random.random) -> None:
        self.account = account
        self.state = state
        self.pipeline = pipeline
        self.log = log or logging.getLogger("imsg.gateway")
        self.env = env
        self.jitter = jitter
        self.client: RpcClient | None = None
        self.info: ChildInfo | None = None
        self.subscription: int | None = None
        self.starts = 0
        self.subscribes = 0
        self.last_error = ""
        self.subscribed = asyncio.Event()
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._restart = asyncio.Event()
        self._restart_reason = ""
        self._terminal = asyncio.Event()
        self._terminal_info: tuple[str, int | None, str] = ("", None, "")
        self._horizon: int | None = None
        self._last_note = 0.0
        self._catchup_task: asyncio.Task[None] | None = None
        self.subscribed_once = False
        self.client_fatal = ""

    # --- for the outbox -------------------------------------------------------------------

    async def client_for(self, timeout: float) -> tuple[RpcClient, ChildInfo]:
        """The current probed child, waiting up to ``timeout`` for one. Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            client, info = self.client, self.info
            if self._ready.is_set() and client is not None and client.alive and info:
                return client, info
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stop.is_set():
                raise TimeoutError
            await asyncio.wait_for(self._ready.wait(), remaining)
            await asyncio.sleep(0)

    def request_restart(self, reason: str) -> None:
        self._restart_reason = reason
        self._restart.set()

    # --- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                await self._session()
                reason = "imsg rpc ended"
            except (SessionEnded, ChildFailed, StateError) as exc:
                reason = str(exc)
            except (RpcError, ClientGone) as exc:
                reason = f"imsg rpc failed: {exc}"
            except Exception as exc:
                self.log.exception("[%s] supervisor error", self.account.id)
                reason = f"internal error: {exc}"
            if self._stop.is_set():
                break
            if time.monotonic() - started >= HEALTHY_S and self.subscribed_once:
                attempt = 0
            fatal = bool(self.client_fatal)
            delay = (self.account.restart_max_s if fatal
                     else min(self.account.restart_max_s,
                              self.account.restart_initial_s * 2 ** attempt))
            delay *= 1 + 0.1 * self.jitter()
            attempt += 1
            self.last_error = reason
            with contextlib.suppress(StateError):
                self.state.record_error(self.account.id, reason)
            self.log.warning("[%s] %s; restarting in %.2fs", self.account.id, reason, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    async def _session(self) -> None:
        self._restart.clear()
        self._terminal.clear()
        self.subscribed_once = False
        self.client_fatal = ""
        client = await RpcClient.start(self.account.argv(), notify=self._notify,
                                       name=f"imsg rpc [{self.account.id}]", log=self.log,
                                       env=self.env)
        self.client = client
        self.starts += 1
        try:
            timeout = self.account.probe_timeout_s
            try:
                info = await probe(client, timeout)
            except CallTimeout:
                raise SessionEnded(f"imsg rpc did not answer the probe within {timeout:g}s"
                                   ) from None
            self.info = info
            with contextlib.suppress(StateError):
                self.state.record_probe(self.account.id, info.to_json())
            if info.database_ready is False:
                raise SessionEnded("imsg rpc: database unavailable: "
                                   f"{info.database_error or 'no detail'}")
            self._ready.set()
            if self.state.cursor(self.account.id) is None:
                first = await newest_rowid(client, timeout)
                self.state.set_cursor(self.account.id, first)
                self.log.info("[%s] first start: messages after rowid %d are handled",
                              self.account.id, first)
            while True:
                await self._subscribe(client, info)
                self.subscribed_once = True
                self.subscribed.set()
                await self._wait(client, info)
        finally:
            self.client_fatal = client.fatal
            self._ready.clear()
            self.subscribed.clear()
            if self._catchup_task is not None:
                self._catchup_task.cancel()
                self._catchup_task = None
            if self._stop.is_set() and client.alive and self.subscription is not None:
                with contextlib.suppress(RpcError, ClientGone):
                    await client.request("watch.unsubscribe",
                                         {"subscription": self.subscription}, timeout=1.0)
            self.subscription = None
            await client.stop()
            self.client = None

    async def _subscribe(self, client: RpcClient, info: ChildInfo) -> None:
        timeout = self.account.probe_timeout_s
        self.pipeline.begin_catchup()
        cursor = self.state.cursor(self.account.id) or 0
        horizon = None
        if info.catch_up:
            while True:
                params: dict[str, Any] = {"since_rowid": cursor, "limit": PAGE_LIMIT}
                if self.account.include_attachments:
                    params["attachments"] = True
                page = await client.request("messages.after", params, timeout=timeout)
                page = page if isinstance(page, dict) else {}
                messages: list[Any] = (page["messages"] if isinstance(page.get("messages"), list)
                                       else [])
                following = page.get("next_rowid")
                following = following if isinstance(following, int) else cursor
                await self.pipeline.admit(messages, cursor=following, replay=True)
                if following <= cursor and not messages:
                    break
                cursor = following
                if page.get("has_more") is not True:
                    break
        else:
            horizon = await newest_rowid(client, timeout)
        params = {"debounce_ms": WATCH_DEBOUNCE_MS}
        if info.protocol_version == 1:
            params["buffer_limit"] = WATCH_BUFFER_LIMIT
        if self.account.include_attachments:
            params["attachments"] = True
        if cursor > 0:
            params["since_rowid"] = cursor
        self._horizon = horizon if horizon is not None and horizon > cursor else None
        self._last_note = time.monotonic()
        try:
            result = await client.request("watch.subscribe", params, timeout=timeout)
        except CallTimeout:
            raise SessionEnded(f"imsg rpc timeout (watch.subscribe) after {timeout:g}s"
                               ) from None
        sub = result.get("subscription") if isinstance(result, dict) else None
        self.subscription = sub if isinstance(sub, int) else None
        self.subscribes += 1
        if self._horizon is None:
            self.pipeline.end_catchup()
        else:
            self._catchup_task = asyncio.create_task(self._catchup_timer())

    async def _catchup_timer(self) -> None:
        """Without ``messages.after``: the watch's replay is over once it goes quiet."""
        started = time.monotonic()
        while self._horizon is not None:
            await asyncio.sleep(CATCHUP_QUIET_S / 5)
            now = time.monotonic()
            if now - self._last_note >= CATCHUP_QUIET_S or now - started >= CATCHUP_MAX_S:
                self._end_catchup()

    def _end_catchup(self) -> None:
        if self._horizon is not None:
            self._horizon = None
            self.pipeline.end_catchup()

    async def _wait(self, client: RpcClient, info: ChildInfo) -> None:
        """Until the subscription needs renewing (returns) or the session ends (raises)."""
        waits = {
            "closed": asyncio.create_task(client.closed.wait()),
            "terminal": asyncio.create_task(self._terminal.wait()),
            "restart": asyncio.create_task(self._restart.wait()),
            "stop": asyncio.create_task(self._stop.wait()),
            "health": asyncio.create_task(self._health(client, info)),
        }
        try:
            await asyncio.wait(waits.values(), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits.values():
                task.cancel()
            await asyncio.gather(*waits.values(), return_exceptions=True)
        if self._stop.is_set():
            raise SessionEnded("stopping")
        if self._terminal.is_set():
            kind, resume, text = self._terminal_info
            self._terminal.clear()
            if kind != "overflow":
                raise SessionEnded(f"watch ended with an error: {text}")
            current = self.state.cursor(self.account.id) or 0
            if resume is not None and resume < current:
                self.state.set_cursor(self.account.id, resume, lower=True)
            self.log.warning("[%s] subscription overflowed (%s); subscribing again after "
                             "rowid %d", self.account.id, text or "buffer full",
                             min(current, resume) if resume is not None else current)
            return
        if self._restart.is_set():
            raise SessionEnded(self._restart_reason or "restart requested")
        health = waits["health"]
        if health.done() and not health.cancelled() and health.exception() is None:
            raise SessionEnded(str(health.result()))
        raise SessionEnded(client.close_reason or "imsg rpc closed")

    async def _health(self, client: RpcClient, info: ChildInfo) -> str:
        method, params = info.health_method
        while True:
            await asyncio.sleep(self.account.health_interval_s)
            try:
                await client.request(method, params, timeout=self.account.probe_timeout_s)
            except CallTimeout:
                return (f"imsg rpc is not answering ({method} timed out after "
                        f"{self.account.probe_timeout_s:g}s)")
            except ClientGone:
                await client.closed.wait()
            except RpcError:
                continue

    # --- notifications -----------------------------------------------------------------------

    async def _notify(self, method: str, params: dict[str, Any]) -> None:
        sub = params.get("subscription")
        stale = isinstance(sub, int) and self.subscription is not None \
            and sub != self.subscription
        if method == "message":
            message = params.get("message")
            await self.pipeline.admit([message])
            if self._horizon is not None:
                self._last_note = time.monotonic()
                rowid = message.get("id") if isinstance(message, dict) else None
                if isinstance(rowid, int) and rowid >= self._horizon:
                    self._end_catchup()
        elif method == "watch.skipped":
            rowid, guid = params.get("rowid"), params.get("guid")
            if isinstance(rowid, int):
                self.pipeline.skip(guid if isinstance(guid, str) and guid
                                   else f"rowid:{rowid}", rowid, "never joined a chat")
        elif method in ("watch.overflow", "error") and not stale:
            error: dict[str, Any] = (params["error"] if isinstance(params.get("error"), dict)
                                     else {})
            resume = params.get("resume_after_rowid", error.get("last_rowid"))
            text = str(params.get("reason") or error.get("message") or "")[:200]
            if method == "watch.overflow" or isinstance(resume, int):
                self._terminal_info = ("overflow", resume if isinstance(resume, int) else None,
                                       text)
            else:
                self._terminal_info = ("error", None, text)
            self._terminal.set()
        else:
            self.log.debug("[%s] ignored notification %s", self.account.id, method)

    async def stop(self) -> None:
        """End the session (unsubscribing, stopping the child) and the loop."""
        self._stop.set()
