"""One account's inbound pipeline: journal, order, decide, act.

``admit`` is called by the supervisor for every message the child reports. In one state
transaction the rows are journaled (by GUID) and the account's cursor advances, so a cursor
never covers a message that is not journaled; a GUID already journaled (a replay after a
restart, a re-subscribe after an overflow) is recognized and not handled again.

Admitted rows are queued per conversation (the chat, else the sender): one conversation's
messages are handled one at a time, in order; different conversations run concurrently, at
most ``maxConcurrent`` handlers at once. Admission never waits for a handler, so a slow
handler delays neither other conversations nor the reading of new messages. At most
``MAX_QUEUED`` rows are held in memory; beyond that new rows wait in the journal only and are
read back, oldest first, as the queues drain, so memory stays bounded whatever the backlog.

During a catch-up (after a start or a child restart) admitted rows are held in the journal;
``end_catchup`` then applies the replay bounds to them and to rows a previous run left
pending (``replayMaxRows``: beyond it the oldest are skipped, with a warning naming how many
and which ROWIDs; ``replayMaxAgeMinutes``) and queues them. Rows that arrived live are never
skipped for the row bound, however long the backlog. A live row whose date is more than
``staleAfterMinutes`` before its arrival (an iCloud backlog flush) is suppressed with a log
line; ages count from arrival (the journal's ``received_at``), never from when a busy gateway
gets to the row.

Each row is then decided (``decide``), logged on one line with its reason, and acted on: a
drop is journaled as done; a pairing challenge records the request and (once per request, if
``pairingReply``) answers with the code; a dispatch runs the handler and delivers its answer,
and only then is the row marked done. So after a crash a row is handled again only if its
handler had not finished (at least once); after a clean stop (``stop``) running handlers are
given ``shutdownGraceMs`` to finish, and rows not started stay journaled for the next start.

A state-database failure while deciding (say, reading the pairing approvals) leaves the row
pending and retries it, rather than treating the approvals as empty and challenging a paired
user again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any

from imsg.errors import StateError
from imsg.gateway.config import AccountConfig
from imsg.gateway.decide import Decision, Drop, Pair, Snapshot, decide
from imsg.gateway.delivery import Outbox, chat_selector
from imsg.gateway.envelope import Envelope, HistoryEntry, Media
from imsg.gateway.guards import LoopBreaker, SelfChatCache
from imsg.gateway.handlers import Answer, Handler, HandlerError, Reply
from imsg.gateway.handles import normalize_handle
from imsg.gateway.inbound import Inbound, MalformedMessage, parse_message
from imsg.gateway.remote import RemoteError, fetch, safe_name
from imsg.gateway.state import State

HISTORY_CHATS = 1000
WARNED_MAX = 10_000
MAX_QUEUED = 2000  # rows held in memory per account; more wait in the journal
REFILL_BELOW = MAX_QUEUED // 2
STATE_RETRY_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
EXTERNAL_SENDS_EVERY_S = 0.25


@dataclass(slots=True)
class Item:
    message: Inbound
    replay: bool
    received_at: float


def pairing_text(sender: str, code: str) -> str:
    return ("imsg gateway: access not configured.\n"
            f"Your iMessage sender id: {sender}\n"
            f"Pairing code: {code}\n"
            "Ask the bot owner to approve with:\n"
            f"imsg pairing approve {code}")


class Pipeline:
    def __init__(self, account: AccountConfig, state: State, outbox: Outbox,
                 handler: Handler | None, *, media_dir: str,
                 log: logging.Logger | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.account = account
        self.state = state
        self.outbox = outbox
        self.handler = handler
        self.media_dir = media_dir
        self.log = log or logging.getLogger("imsg.gateway")
        self.clock = clock
        self.echo = outbox.echo
        self.self_chat = SelfChatCache()
        self.loop = LoopBreaker()
        self.history: OrderedDict[int, deque[HistoryEntry]] = OrderedDict()
        self.warned: OrderedDict[str, None] = OrderedDict()
        self.queues: dict[str, deque[Item]] = {}
        self.workers: dict[str, asyncio.Task[None]] = {}
        self.arrivals: dict[str, asyncio.Event] = {}
        self.inflight: set[str] = set()
        self.queued = 0  # rows in the queues (not yet taken by a worker)
        self.spilled = False  # rows above high_water wait in the journal only
        self.high_water = -1 << 62  # the highest ROWID ever queued
        self.holding = True  # until the first catch-up ends
        self.stopping = False
        self.semaphore = asyncio.Semaphore(account.max_concurrent)
        self.counts: Counter[str] = Counter()
        self._sends_seen = state.last_send_id()
        self._sends_checked = 0.0
        state.rearrive_pending(account.id, now=clock())
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- admission -----------------------------------------------------------------------------

    async def admit(self, payloads: list[Any], *, cursor: int | None = None,
                    replay: bool = False) -> None:
        """Journal messages (and advance the cursor past them, or to ``cursor``)."""
        rows: list[tuple[str, int, str]] = []
        parsed: list[Inbound | None] = []
        malformed: dict[str, str] = {}
        highest = None
        for payload in payloads:
            try:
                message = parse_message(payload)
            except MalformedMessage as exc:
                rowid = payload.get("id") if isinstance(payload, dict) else None
                rowid = rowid if isinstance(rowid, int) and not isinstance(rowid, bool) else 0
                guid = payload.get("guid") if isinstance(payload, dict) else None
                guid = guid if isinstance(guid, str) and guid else f"malformed:{rowid}"
                malformed[guid] = str(exc)
                rows.append((guid, rowid, "{}"))
                parsed.append(None)
                highest = max(highest or 0, rowid)
                continue
            rows.append((message.guid, message.id, json.dumps(payload, ensure_ascii=False)))
            parsed.append(message)
            highest = max(highest or 0, message.resume_rowid)
        if not rows:
            if cursor is not None:
                self.state.set_cursor(self.account.id, cursor)
            return
        now = self.clock()
        fresh = self.state.admit(self.account.id, rows,
                                 cursor=cursor if cursor is not None else highest,
                                 replay=replay or self.holding, now=now)
        for (guid, rowid, _), entry, new in zip(rows, parsed, fresh, strict=True):
            if not new:
                self.log.debug("[%s] duplicate rowid=%d guid=%s (already journaled)",
                               self.account.id, rowid, guid)
                continue
            if entry is None:
                self.log.warning("[%s] drop rowid=%d: malformed message payload (%s)",
                                 self.account.id, rowid, malformed[guid])
                self.state.finish(self.account.id, [guid], f"malformed: {malformed[guid]}")
                self.counts["malformed"] += 1
                continue
            if self.holding or self.stopping:
                continue
            if self.spilled or self.queued >= MAX_QUEUED:
                self.spilled = True  # the journal holds it until the queues drain
                continue
            self._enqueue(Item(entry, replay, now))

    def skip(self, guid: str, rowid: int, reason: str) -> None:
        """Journal a row the child reports it will never deliver, and move past it."""
        self.state.admit(self.account.id, [(guid, rowid, "{}")], cursor=rowid,
                         now=self.clock())
        self.state.finish(self.account.id, [guid], reason, status="skipped")
        self.log.warning("[%s] skip rowid=%d guid=%s: %s", self.account.id, rowid, guid, reason)

    def begin_catchup(self) -> None:
        self.holding = True

    def end_catchup(self) -> None:
        """Queue the rows journaled while holding (and any left from a previous run), within
        the replay bounds."""
        self.holding = False
        account = self.account.id
        excess = (self.state.pending_count(account, after=self.high_water, replay_only=True)
                  - self.account.replay_max_rows)
        if excess > 0:
            first, last = self.state.skip_oldest_replays(
                account, excess, f"replay limit (replayMaxRows={self.account.replay_max_rows})",
                after=self.high_water, now=self.clock())
            self.counts["replay_skipped"] += excess
            self.log.warning(
                "[%s] replay: %d rows arrived while the gateway was away, more than "
                "replayMaxRows=%d; the oldest %d (rowids %d-%d) are skipped, not handled",
                account, excess + self.account.replay_max_rows, self.account.replay_max_rows,
                excess, first, last)
        self.spilled = True
        self._refill()

    def _refill(self) -> None:
        """Queue journaled rows that were left out (catch-up, or memory full), oldest first."""
        if not self.spilled or self.holding or self.stopping:
            return
        room = MAX_QUEUED - self.queued
        if room <= 0:
            return
        rows = self.state.pending(self.account.id, after=self.high_water, limit=room)
        for row in rows:
            if row.guid in self.inflight:
                continue
            try:
                message = parse_message(json.loads(row.payload))
            except (MalformedMessage, ValueError) as exc:
                self.state.finish(self.account.id, [row.guid], f"malformed: {exc}")
                self.high_water = max(self.high_water, row.rowid)
                continue
            self._enqueue(Item(message, row.replay, row.received_at))
        if len(rows) < room:
            self.spilled = False

    def _enqueue(self, item: Item) -> None:
        message = item.message
        key = (f"chat:{message.chat_id}" if message.chat_id is not None
               else f"sender:{normalize_handle(message.sender, self.account.region)}")
        self.inflight.add(message.guid)
        self.queued += 1
        self.high_water = max(self.high_water, message.id)
        self.queues.setdefault(key, deque()).append(item)
        event = self.arrivals.get(key)
        if event is not None:
            event.set()
        if key not in self.workers:
            self.workers[key] = asyncio.create_task(self._work(key))

    @property
    def idle(self) -> bool:
        return not self.workers

    # --- the per-conversation worker ---------------------------------------------------------

    async def _work(self, key: str) -> None:
        queue = self.queues[key]
        try:
            while queue and not self.stopping:
                batch = [queue.popleft()]
                self.queued -= 1
                if self.account.debounce_s > 0 and self._joinable(batch[0].message):
                    await self._gather(key, batch)
                await self._run(batch)
                if self.queued <= REFILL_BELOW:
                    self._refill()
        finally:
            self.workers.pop(key, None)
            self.arrivals.pop(key, None)
            if not queue or self.stopping:
                self.queues.pop(key, None)

    @staticmethod
    def _joinable(message: Inbound) -> bool:
        text = message.text.strip()
        return bool(text) and not message.attachments and not text.startswith("/") \
            and bool(message.sender) and not message.is_from_me

    async def _gather(self, key: str, batch: list[Item]) -> None:
        """Debounce: take the sender's next quick texts from the queue into ``batch``."""
        queue = self.queues[key]
        event = self.arrivals.setdefault(key, asyncio.Event())
        sender = batch[0].message.sender
        while True:
            while queue and self._joinable(queue[0].message) \
                    and queue[0].message.sender == sender:
                batch.append(queue.popleft())
                self.queued -= 1
            if queue:
                return
            event.clear()
            try:
                await asyncio.wait_for(event.wait(), self.account.debounce_s)
            except TimeoutError:
                return

    async def _run(self, batch: list[Item]) -> None:
        guids = [item.message.guid for item in batch]
        message = batch[-1].message
        if len(batch) > 1:
            message = replace(message, text="\n".join(i.message.text for i in batch),
                              attachments=())
        attempt = 0
        try:
            while True:
                try:
                    await self._handle(message, batch[0], guids)
                    return
                except StateError as err:
                    delay = STATE_RETRY_S[min(attempt, len(STATE_RETRY_S) - 1)]
                    attempt += 1
                    self.log.error("[%s] rowid=%d left pending, retry in %gs: %s",
                                   self.account.id, message.id, delay, err)
                    if self.stopping:
                        return
                    await asyncio.sleep(delay)
                except Exception:
                    self.log.exception("[%s] rowid=%d: internal error", self.account.id,
                                       message.id)
                    self.state.finish(self.account.id, guids, "internal error")
                    return
        finally:
            self.inflight.difference_update(guids)

    async def _handle(self, message: Inbound, item: Item, guids: list[str]) -> None:
        now = self.clock()
        created = message.created_ts
        if created is not None:
            age = item.received_at - created
            if item.replay and age > self.account.replay_max_age_s:
                self._finish(guids, "skip", message, f"replay: older than "
                             f"{self.account.replay_max_age_s / 60:g} min", status="skipped")
                return
            if not item.replay and age > self.account.stale_after_s:
                self._finish(guids, "suppressed stale inbound backlog", message,
                             f"created {age / 60:.0f} min before it arrived", status="skipped")
                return
        self._absorb_external_sends(now)
        snapshot = Snapshot(approved=self.state.approved(self.account.id), echo=self.echo,
                            self_chat=self.self_chat, loop=self.loop,
                            history=self._history_for)
        decision = decide(message, self.account, snapshot, now)
        self._apply(decision, message, now)
        if isinstance(decision, Drop):
            self._finish(guids, "drop", message, decision.reason)
        elif isinstance(decision, Pair):
            await self._pair(decision, message)
            self.state.finish(self.account.id, guids, "pairing challenge")
        else:
            await self._dispatch(decision.envelope, message)
            self.state.finish(self.account.id, guids, "dispatched")

    def _finish(self, guids: list[str], verb: str, message: Inbound, reason: str, *,
                status: str = "done") -> None:
        self.counts[verb] += 1
        self.log.info("[%s] %s rowid=%d chat=%s sender=%s: %s", self.account.id, verb,
                      message.id, message.chat_id, message.sender or "-", reason)
        self.state.finish(self.account.id, guids, f"{verb}: {reason}", status=status)

    def _apply(self, decision: Decision, message: Inbound, now: float) -> None:
        effects = decision.effects
        if effects.remember_self_chat:
            self.self_chat.remember(effects.remember_self_chat, now)
        if effects.history is not None and message.chat_id is not None:
            self._remember_history(message.chat_id, effects.history)
        if effects.warn is not None:
            self._warn_once(*effects.warn)
        if effects.echo_hit:
            self.loop.record(decision.conversation, now)
        if effects.absorb is not None:
            key = effects.absorb
            self.echo.absorb(key.scopes, ids=key.ids, text=key.text,
                             file_names=key.file_names, now=now)

    def _warn_once(self, key: str, text: str) -> None:
        if key in self.warned:
            return
        self.warned[key] = None
        while len(self.warned) > WARNED_MAX:
            self.warned.popitem(last=False)
        self.log.warning("[%s] %s", self.account.id, text)

    def _history_for(self, chat_id: int) -> list[HistoryEntry]:
        return list(self.history.get(chat_id, ()))

    def _remember_history(self, chat_id: int, entry: HistoryEntry) -> None:
        entries = self.history.get(chat_id)
        if entries is None:
            entries = self.history[chat_id] = deque(maxlen=self.account.history_limit)
        entries.append(entry)
        self.history.move_to_end(chat_id)
        while len(self.history) > HISTORY_CHATS:
            self.history.popitem(last=False)

    def _absorb_external_sends(self, now: float) -> None:
        """Learn texts that ``imsg gateway send`` sent from another process."""
        if now - self._sends_checked < EXTERNAL_SENDS_EVERY_S:
            return
        self._sends_checked = now
        for sent in self.state.sends_after(self.account.id, self._sends_seen):
            self.echo.remember(sent.scope, text=sent.text, ids=sent.ids,
                               file_name=sent.file_name, now=sent.at)
            self._sends_seen = sent.id

    # --- acting ----------------------------------------------------------------------------------

    async def _pair(self, decision: Pair, message: Inbound) -> None:
        account = self.account.id
        request, created = self.state.request_pairing(account, decision.sender,
                                                       decision.chat_id, now=self.clock())
        self.counts["pair"] += 1
        if request is None:
            self.log.info("[%s] pair rowid=%d sender=%s: no code (3 requests already pending, "
                          "or denied within the hour); no reply", account, message.id,
                          decision.sender)
            return
        if not created:
            self.log.info("[%s] pair rowid=%d sender=%s: code %s already sent; no second "
                          "reply", account, message.id, decision.sender, request.code)
            return
        self.log.info("[%s] pair rowid=%d sender=%s: pairing code %s (approve with: imsg "
                      "pairing approve %s)%s", account, message.id, decision.sender,
                      request.code, request.code,
                      "" if self.account.pairing_reply else "; pairingReply is off, no reply")
        if self.account.pairing_reply:
            target = (f"chat_id:{decision.chat_id}" if decision.chat_id is not None
                      else decision.sender)
            await self.outbox.deliver(target, Reply(pairing_text(decision.sender,
                                                                 request.code)),
                                      prefix=False)

    async def _dispatch(self, envelope: Envelope, message: Inbound) -> None:
        account = self.account.id
        self.counts["dispatch"] += 1
        self.log.info("[%s] dispatch rowid=%d chat=%s sender=%s: %s%s", account, message.id,
                      envelope.chat_id, envelope.sender, envelope.chat_type,
                      ", mentioned" if envelope.was_mentioned else "")
        if envelope.media and self.account.remote_host:
            envelope = replace(envelope, media=await self._fetch_media(envelope))
        selector = chat_selector(envelope.chat_guid, envelope.chat_id)
        if self.account.send_read_receipts and selector:
            self._background(self.outbox.bridge("read", selector))
        typing = None
        if envelope.chat_type == "direct" and selector:
            typing = self._background(self.outbox.bridge("typing", {**selector,
                                                                     "typing": True}))
        answer = Answer()
        if self.handler is None:
            self.log.error("[%s] rowid=%d: no handler configured", account, message.id)
        else:
            async with self.semaphore:
                try:
                    answer = await self.handler(envelope.to_json())
                except HandlerError as err:
                    self.log.error("[%s] handler failed for rowid=%d: %s", account,
                                   message.id, err)
        if typing is not None and await typing:
            self._background(self.outbox.bridge("typing", {**selector, "typing": False}))
        for reply in answer.replies:
            await self.outbox.deliver(envelope.reply_to, reply)
        if answer.react and selector:
            await self.outbox.bridge("tapback", {**selector, "message_guid": envelope.guid,
                                                 "kind": answer.react})
        if envelope.chat_type == "group" and envelope.chat_id is not None:
            self.history.pop(envelope.chat_id, None)

    async def _fetch_media(self, envelope: Envelope) -> tuple[Media, ...]:
        assert self.account.remote_host is not None
        folder = f"{self.media_dir}/{safe_name(self.account.id)}/{safe_name(envelope.session)}"
        local = []
        for item in envelope.media:
            try:
                path = await fetch(self.account.remote_host, item.path, folder,
                                   self.account.remote_attachment_roots)
            except RemoteError as err:
                self.log.error("[%s] attachment not fetched: %s", self.account.id, err)
                continue
            local.append(replace(item, path=path))
        return tuple(local)

    def _background(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- stopping -------------------------------------------------------------------------------

    async def stop(self, grace_s: float) -> int:
        """Stop taking rows; give running handlers ``grace_s``; the number of rows left in
        the journal for the next start."""
        self.stopping = True
        workers = list(self.workers.values())
        if workers:
            _, late = await asyncio.wait(workers, timeout=grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)
        left = self.state.pending_count(self.account.id)
        if left:
            self.log.info("[%s] %d message(s) left journaled for the next start",
                          self.account.id, left)
        return left
