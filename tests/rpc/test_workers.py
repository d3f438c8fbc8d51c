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
