"""Journal calls off the event loop: one thread of their own, one call at a time, in order, and the
calls that queued up meanwhile committed together.

A commit waits for the disk (SQLite: an fsync for each ``creating`` marker and id) or for a database
round trip; done on the event loop, a few milliseconds per write would stall every other line, three
writes a line. Here each call runs on a single worker thread — so the store sees the calls in the
order they were made, never two at once — while the loop keeps polling and downloading.

Group commit: while the thread works on one call, the next ones queue; it then takes every queued
call (up to :data:`~comet_replicate._constants.JOURNAL_GROUP_MAX`) and runs them, in order, inside
one :meth:`Journal.group`, so a store that can (SQLite) commits them with one durable commit instead
of one each. No guarantee is weakened: a call's caller hears of it only after the commit that made it
as durable as the store makes that write (see :mod:`.journal`): the ``creating`` rows of many lines
are committed before any of their creates goes out, an id is committed before anything that depends
on it goes on, and a process killed before that commit leaves none of the group's writes, as if it
had died before they were asked for. The callers of a group are woken with one callback, not one
each. On a busy batch few calls queue, so most groups hold one write; a line's final state, which
only its own line waits on, is therefore deferred (:meth:`JournalThread.defer`) to go in the next
call's group, sparing the thread a wake-up and a commit (each costs several times the write itself
after an idle gap) — on batches of many lines at once only (``JOURNAL_DEFER_MIN_LINES``).

A call, once started, always finishes: a cancel arriving meanwhile waits for it and is then raised,
so the journal never holds less than what was done (a ``creating`` row without its fate, an id
recorded without its caller knowing).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, ParamSpec, TypeVar

from .._constants import JOURNAL_DEFER_S, JOURNAL_GROUP_MAX

__all__ = ["JournalThread"]

P = ParamSpec("P")
T = TypeVar("T")

_Call = tuple[Callable[[], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]
_Outcome = tuple["asyncio.Future[Any]", bool, Any]  # (future, ok, result or exception)


class JournalThread:
    """Runs journal calls on one thread, committing those that queued together (``group``: the
    journal's :meth:`~.journal.Journal.group`; none: each call on its own); :meth:`close` waits for
    the last one."""

    def __init__(self, group: Callable[[], AbstractContextManager[object]] | None = None) -> None:
        self._group = group or contextlib.nullcontext
        self._queue: queue.SimpleQueue[list[_Call] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._start_lock = threading.Lock()
        self._deferred: list[_Call] = []
        self._timer: asyncio.TimerHandle | None = None

    def submit(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """Start ``method(*args, **kwargs)`` on the journal thread, after the deferred calls made
        before it (in one group with them); its result as a future."""
        call = self._new_call(functools.partial(method, *args, **kwargs))
        self._queue.put([*self._take_deferred(), call] if self._deferred else [call])
        self._ensure_started()
        return call[1]

    def defer(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """Like :meth:`submit`, but the call waits for the next one submitted — at most
        :data:`~comet_replicate._constants.JOURNAL_DEFER_S` — and runs in its group: no wake-up of the
        thread and no commit of its own. For writes whose caller can hear of them a little later and
        that nothing else waits for (a line's final state). Deferred calls come from one event loop."""
        call = self._new_call(functools.partial(method, *args, **kwargs))
        self._deferred.append(call)
        if self._timer is None:
            self._timer = call[2].call_later(JOURNAL_DEFER_S, self._flush)
        return call[1]

    async def call(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``method(*args, **kwargs)`` on the journal thread; a cancel waits for it to finish.

        The call's future is awaited as it is, not through a shield (one future and one loop turn
        less per call): a cancel then cancels that future but not the call, which runs anyway. Calls
        run in order, so a no-op queued behind it ends once it has finished: that is what the cancel
        waits for.
        """
        return await self._finish(self.submit(method, *args, **kwargs))

    async def call_deferred(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """:meth:`call` through :meth:`defer`: its caller hears of it once it ran (and committed)."""
        return await self._finish(self.defer(method, *args, **kwargs))

    async def _finish(self, future: asyncio.Future[T]) -> T:
        try:
            return await future
        except asyncio.CancelledError:
            if not future.cancelled():  # it had ended already; its error goes with the cancel
                future.exception()
            elif not self._closed:  # a closed thread ran every queued call before it stopped
                await asyncio.shield(self.submit(_nothing))
            raise

    def close(self) -> None:
        """Run what is queued (deferred calls included), then stop the thread (idempotent)."""
        timer = self._timer
        self._flush()
        if timer is not None:
            timer.cancel()
        self._closed = True
        with self._start_lock:
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join()

    def _new_call(self, method: Callable[[], Any]) -> _Call:
        if self._closed:
            raise RuntimeError("the journal thread is closed")
        loop = asyncio.get_running_loop()
        return method, loop.create_future(), loop

    def _take_deferred(self) -> list[_Call]:
        """The deferred calls, to go now. Their timer is left to run (one timer a wait, never a
        cancel each): it then sends on whatever was deferred after, sooner than that call's own wait."""
        calls, self._deferred = self._deferred, []
        return calls

    def _flush(self) -> None:
        """Send the deferred calls on their own (their wait is over, or the thread closes)."""
        self._timer = None
        if self._deferred:
            self._queue.put(self._take_deferred())
            self._ensure_started()

    # -- the thread -------------------------------------------------------------------------------

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._main, name="comet-batch-journal_0", daemon=True)
                self._thread.start()

    def _main(self) -> None:
        pending = self._queue
        while True:
            first = pending.get()
            if first is None:
                return
            calls, stop = list(first), False
            while len(calls) < JOURNAL_GROUP_MAX and not pending.empty():  # this thread alone takes
                queued = pending.get_nowait()
                if queued is None:
                    stop = True
                    break
                calls.extend(queued)
            for start in range(0, len(calls), JOURNAL_GROUP_MAX):  # deferred calls may make more
                group = calls[start : start + JOURNAL_GROUP_MAX]
                self._settle(group, self._run(group))
            if stop:
                return

    def _run(self, calls: list[_Call]) -> list[_Outcome]:
        """Each call in order inside one group; if the group's commit fails, no call of it succeeded.
        A call alone commits by itself (a group of one would only add a savepoint)."""
        outcomes: list[_Outcome] = []
        try:
            with self._group() if len(calls) > 1 else contextlib.nullcontext():
                for method, future, _ in calls:
                    try:
                        outcomes.append((future, True, method()))
                    except BaseException as exc:  # the caller's to handle, as with any call
                        outcomes.append((future, False, exc))
        except BaseException as exc:  # the commit failed: none of the group is durable
            return [(future, False, exc) for _, future, _ in calls]
        return outcomes

    @staticmethod
    def _settle(calls: list[_Call], outcomes: list[_Outcome]) -> None:
        """Hand the outcomes to their loops: one callback per loop for the whole group."""
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for (_, _, loop), outcome in zip(calls, outcomes, strict=True):
            by_loop.setdefault(loop, []).append(outcome)
        for loop, done in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve, done)


def _nothing() -> None:
    """The call queued behind a cancelled one: it ends after that one has."""


def _resolve(outcomes: list[_Outcome]) -> None:
    for future, ok, value in outcomes:
        if future.done():  # cancelled by a caller that gave up on it
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
