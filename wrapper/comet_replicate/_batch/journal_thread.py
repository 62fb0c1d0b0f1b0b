"""Journal calls off the event loop: one thread of their own, one call at a time, in order.

A durable commit waits for the disk (``synchronous=FULL``: an fsync per write) or for a database
round trip; done on the event loop, a few milliseconds per write would stall every other line, three
writes a line. Here each call runs on a single worker thread — so the store sees the calls in the
order they were made, never two at once — while the loop keeps polling and downloading.

A call, once started, always finishes: a cancel arriving meanwhile waits for it and is then raised,
so the journal never holds less than what was done (a ``creating`` row without its fate, an id
recorded without its caller knowing).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["JournalThread"]

P = ParamSpec("P")
T = TypeVar("T")


class JournalThread:
    """Runs journal calls on one thread; :meth:`close` waits for the last one."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="comet-batch-journal")

    def submit(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """Start ``method(*args, **kwargs)`` on the journal thread; its result as a future."""
        return asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(method, *args, **kwargs)
        )

    async def call(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``method(*args, **kwargs)`` on the journal thread; a cancel waits for it to finish."""
        future = self.submit(method, *args, **kwargs)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait({future})
            raise

    def close(self) -> None:
        self._executor.shutdown(wait=True)
