"""A small pool of daemon threads that runs blocking calls for the event loop.

Daemon threads, unlike ``ThreadPoolExecutor``'s, never hold up interpreter exit: a send stuck in
AppleScript cannot keep the server alive after stdin closed. Threads start on first use.

Calls run in the order they were submitted. A call goes to the thread that became idle last:
a client asking one thing after another keeps meeting the same thread, and so the same warm
database connection and caches (reader threads each hold their own connection). A worker that
finds more calls waiting runs them back to back and hands their outcomes to the loop together
(after at most ``HANDOFF_S`` of work): under pipelined load that saves a thread switch per
call, which is most of the cost of a small query.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
HANDOFF_S = 0.001
_Job = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]",
             asyncio.AbstractEventLoop]
_Outcome = tuple["asyncio.Future[Any]", bool, Any]


class Workers:
    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._lock = threading.Lock()
        self._backlog: deque[_Job] = deque()  # calls no idle thread has taken yet
        self._idle: list[queue.SimpleQueue[_Job]] = []  # idle threads' inboxes, last idle on top
        self._started = 0

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker thread; its exception is re-raised here."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        job: _Job = (fn, args, future, loop)
        with self._lock:
            if self._idle:
                self._idle.pop().put(job)
            else:
                self._backlog.append(job)
                if self._started < self._size:
                    self._started += 1
                    threading.Thread(target=self._work, daemon=True,
                                     name=f"{self._name}-{self._started}").start()
        return await future

    def _work(self) -> None:
        inbox: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        job = self._backlog_or_idle(inbox) or inbox.get()
        while True:
            loop = job[3]
            done: list[_Outcome] = []
            started = time.monotonic()
            current: _Job | None = job
            while current is not None:
                fn, args, future, _ = current
                if not future.cancelled():
                    try:
                        done.append((future, True, fn(*args)))
                    except Exception as exc:  # handed to the awaiting coroutine
                        done.append((future, False, exc))
                current = self._next(loop) if time.monotonic() - started < HANDOFF_S else None
            # Idle again before the caller hears back, so its next call comes here.
            waiting = self._backlog_or_idle(inbox)
            if done and not _hand_over(loop, done):
                self._retire(inbox, waiting)
                return
            job = waiting or inbox.get()

    def _backlog_or_idle(self, inbox: queue.SimpleQueue[_Job]) -> _Job | None:
        """The oldest waiting call; else None, with this thread registered as idle (its next
        call will arrive in ``inbox``)."""
        with self._lock:
            if self._backlog:
                return self._backlog.popleft()
            self._idle.append(inbox)
        return None

    def _retire(self, inbox: queue.SimpleQueue[_Job], waiting: _Job | None) -> None:
        """This thread stops (its loop is closed). Calls handed to it for a loop still running
        go back to the backlog, for a thread started for the next call; those of closed loops,
        whose callers are gone, are dropped, never run."""
        with self._lock:
            if inbox in self._idle:
                self._idle.remove(inbox)
            handed = [waiting] if waiting is not None else []
            while not inbox.empty():
                handed.append(inbox.get_nowait())
            self._backlog.extendleft(reversed([j for j in handed if not j[3].is_closed()]))
            self._started -= 1

    def _next(self, loop: asyncio.AbstractEventLoop) -> _Job | None:
        """Another waiting call for the same loop, if there is one."""
        with self._lock:
            if self._backlog and self._backlog[0][3] is loop:
                return self._backlog.popleft()
        return None


def _hand_over(loop: asyncio.AbstractEventLoop, done: list[_Outcome]) -> bool:
    try:
        loop.call_soon_threadsafe(_settle, done)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        return False
    return True


def _settle(done: list[_Outcome]) -> None:
    for future, ok, value in done:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
