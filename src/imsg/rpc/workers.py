"""A small pool of daemon threads that runs blocking calls for the event loop.

Daemon threads, unlike ``ThreadPoolExecutor``'s, never hold up interpreter exit: a send stuck in
AppleScript cannot keep the server alive after stdin closed. Threads start on first use.

A worker that finds more calls queued runs them back to back and hands their outcomes to the
loop together (after at most ``HANDOFF_S`` of work): under pipelined load that saves a thread
switch per call, which is most of the cost of a small query.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
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
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker thread; its exception is re-raised here."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, args, future, loop))
        self._grow()
        return await future

    def _grow(self) -> None:
        with self._lock:
            if len(self._threads) < self._size and self._jobs.qsize() > 0:
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"{self._name}-{len(self._threads) + 1}")
                self._threads.append(thread)
                thread.start()

    def _work(self) -> None:
        while True:
            first = self._jobs.get()
            loop = first[3]
            done: list[_Outcome] = []
            started = time.monotonic()
            job: _Job | None = first
            while job is not None:
                fn, args, future, _ = job
                if not future.cancelled():
                    try:
                        done.append((future, True, fn(*args)))
                    except Exception as exc:  # handed to the awaiting coroutine
                        done.append((future, False, exc))
                job = self._next(loop) if time.monotonic() - started < HANDOFF_S else None
            if done and not _hand_over(loop, done):
                return

    def _next(self, loop: asyncio.AbstractEventLoop) -> _Job | None:
        """Another queued job for the same loop, if one is waiting."""
        try:
            job = self._jobs.get_nowait()
        except queue.Empty:
            return None
        if job[3] is not loop:
            self._jobs.put(job)
            return None
        return job


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
