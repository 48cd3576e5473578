"""Many transfers at once from synchronous code: at most CONCURRENCY in flight, the bytes
they hold in memory within a budget, and a coroutine run to completion whether or not the
calling thread has an event loop.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["Budget", "CONCURRENCY", "each", "run"]

#: Transfers in flight at once.
CONCURRENCY = 64


class Budget:
    """Bytes in memory across concurrent transfers; one transfer may always proceed alone."""

    def __init__(self, cap: int) -> None:
        self.cap, self.used, self.cond = cap, 0, asyncio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, n: int):
        async with self.cond:
            await self.cond.wait_for(lambda: self.used == 0 or self.used + n <= self.cap)
            self.used += n
        try:
            yield
        finally:
            async with self.cond:
                self.used -= n
                self.cond.notify_all()


async def each(work, items) -> None:
    """``await work(item)`` for every item, CONCURRENCY at a time. After the first failure no
    more start and those in flight finish before it is raised: ``asyncio.gather`` alone
    raises at once and leaves obstore calls running, and one that completes after the event
    loop closed prints a traceback."""
    sem, failed = asyncio.Semaphore(CONCURRENCY), []

    async def one(item) -> None:
        async with sem:
            if failed:
                return
            try:
                await work(item)
            except BaseException as exc:  # (re-raised below, once every call has settled)
                failed.append(exc)

    await asyncio.gather(*(one(i) for i in items))
    if failed:
        raise failed[0]


def run(coro):
    """Run a coroutine to completion from sync code, even if this thread has a loop running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
