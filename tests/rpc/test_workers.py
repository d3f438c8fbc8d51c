"""The worker pool: results and exceptions reach the awaiting coroutine, batched or not."""

from __future__ import annotations

import asyncio
import threading

import pytest

from imsg.rpc.workers import Workers


def test_results_and_exceptions_in_order_of_calls() -> None:
    def work(n: int) -> int:
        if n % 3 == 0:
            raise ValueError(n)
        return n * 2

    async def run() -> list[object]:
        pool = Workers(1, "test")
        outcomes = await asyncio.gather(*(pool.run(work, n) for n in range(30)),
                                        return_exceptions=True)
        return list(outcomes)

    outcomes = asyncio.run(run())
    for n, outcome in enumerate(outcomes):
        if n % 3 == 0:
            assert isinstance(outcome, ValueError) and outcome.args == (n,)
        else:
            assert outcome == n * 2


def test_calls_run_off_the_loop_thread_and_cancelled_ones_are_skipped() -> None:
    ran: list[int] = []
    gate = threading.Event()

    def record(n: int) -> int:
        gate.wait(20)
        ran.append(n)
        return threading.get_ident()

    async def run() -> int:
        pool = Workers(1, "test")
        first = asyncio.ensure_future(pool.run(record, 1))
        skipped = asyncio.ensure_future(pool.run(record, 2))
        await asyncio.sleep(0)
        skipped.cancel()
        gate.set()
        with pytest.raises(asyncio.CancelledError):
            await skipped
        ident = await first
        assert ident != threading.get_ident()
        return await pool.run(record, 3)

    asyncio.run(run())
    assert ran == [1, 3]


def test_a_call_goes_to_the_thread_that_became_idle_last() -> None:
    """One call after another meets the same thread (and its warm connection), while calls
    that overlap still spread over the pool."""

    async def run() -> tuple[set[int], set[int]]:
        pool = Workers(4, "test")
        release = threading.Event()

        def block() -> int:
            release.wait(20)
            return threading.get_ident()

        blocked = [asyncio.ensure_future(pool.run(block)) for _ in range(4)]
        await asyncio.sleep(0.05)
        release.set()
        spread = set(await asyncio.gather(*blocked))
        await asyncio.sleep(0.05)  # every thread back to idle
        one_by_one = {await pool.run(threading.get_ident) for _ in range(20)}
        return spread, one_by_one

    spread, one_by_one = asyncio.run(run())
    assert len(spread) == 4 and len(one_by_one) == 1
