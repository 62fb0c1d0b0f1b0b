"""The async runner: claims lines from the journal and works them on one AsyncClient, ``concurrency``
at a time (one line's work is :mod:`.line`'s job).

Stopping — a task cancel, Ctrl-C, the caller leaving the loop — never loses an id: in-flight creates
answer first. Then, with a journal of this worker alone (SQLite), running predictions get a bounded
cancel and their lines are marked ``interrupted`` (created again next time). With a shared journal
(claims with leases), they are handed back instead (:meth:`Journal.release`): another worker resumes
them by id at once, and nobody pays twice. A line whose lease is lost (another worker took it over)
is dropped here without a cancel; the worker goes on with the others.

Only the public API of :class:`~comet_replicate.AsyncClient` is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import TYPE_CHECKING

from .errors import JournalError, LeaseLost
from .items import BatchItem
from .journal import Claim, Journal, JournalRow, LineState, RetryPolicy
from .journal_thread import JournalThread
from .line import Line, LineWork, status_text
from .outputs import Outputs
from .plan import PlanSummary, decide
from .results import BatchProgress, BatchReport, BatchResult
from .settings import CANCEL_TIMEOUT_S, EngineSettings

if TYPE_CHECKING:  # types only: the clients may import this package
    from .._client import AsyncClient

__all__ = ["BatchEngine", "untouched"]

_log = logging.getLogger("comet_replicate.batch")
Key = tuple[int, str]


class BatchEngine:
    """Runs the prepared items of one journal on one AsyncClient (see the module docstring)."""

    def __init__(
        self,
        client: AsyncClient,
        journal: Journal,
        items: Sequence[BatchItem],
        plan: PlanSummary,
        *,
        out: Outputs,
        settings: EngineSettings,
        on_progress: Callable[[BatchProgress], object] | None = None,
    ) -> None:
        self.client = client
        self.journal = journal
        self.items = {(item.line, item.digest): item for item in items}
        self.plan = plan
        self.out = out
        self.settings = settings
        self.on_progress = on_progress
        self.writes = JournalThread(journal.group)
        self.work = LineWork(client, journal, self.writes, out, settings, self._stop)
        self.results: dict[Key, BatchResult] = {}
        #: The report, set when the run ended (normally, early, or stopped).
        self.final: BatchReport | None = None
        self.fatal: BaseException | None = None
        self.started = 0
        self._drained = False  # the journal has no more lines for this worker
        self._active: dict[Key, Line] = {}
        self._tasks: dict[Key, asyncio.Task[BatchResult]] = {}
        self._taken_over: dict[Key, LeaseLost] = {}
        self._stopped: list[Line] = []
        self._cancel_failures: list[tuple[str, str]] = []
        self._interrupted_ids: list[str] = []
        self._released_ids: list[str] = []
        self.progress = BatchProgress(
            total=plan.total, done=plan.done, failed=plan.failed + plan.unknown, skipped=plan.done
        )

    # -- the run ----------------------------------------------------------------------------------

    async def stream(self, before: Sequence[BatchResult] = ()) -> AsyncGenerator[BatchResult, None]:
        """Yield ``before`` (lines left alone), then each line's result as it finishes.

        Leaving the loop early, or cancelling the task iterating it, stops the run as described in
        the module docstring before the exception (or the return) goes on.
        """
        runner: asyncio.Future[None] | None = None
        try:
            for earlier in before:
                yield earlier
            self._emit()
            queue: asyncio.Queue[BatchResult | None] = asyncio.Queue()
            runner = asyncio.ensure_future(self._run(queue))
            while (finished := await queue.get()) is not None:
                yield finished
            await runner
        finally:
            if runner is not None and not runner.done():
                runner.cancel()
                await asyncio.wait({runner})
            self.writes.close()  # every write done; the journal is this thread's again
            self.out.finish()
            self.final = self.report()

    async def _run(self, queue: asyncio.Queue[BatchResult | None]) -> None:
        workers = [asyncio.ensure_future(self._worker(queue)) for _ in range(self.settings.concurrency)]
        renewer = asyncio.ensure_future(self._renew()) if self.journal.lease_seconds else None
        try:
            await asyncio.gather(*workers)
        except asyncio.CancelledError:
            await asyncio.wait(workers)  # in-flight creates answer first, so their ids are known
            if self.journal.lease_seconds is None:
                await self._cancel_stopped()
            else:
                await self._hand_back()
            raise
        finally:
            if renewer is not None:
                renewer.cancel()
            queue.put_nowait(None)

    async def _worker(self, queue: asyncio.Queue[BatchResult | None]) -> None:
        while self.fatal is None:
            claim = await self._claim()
            if claim is None:
                return
            result = await self._line(claim)
            self.results[(claim.line_no, claim.digest)] = result
            queue.put_nowait(result)

    async def _claim(self) -> Claim | None:
        """The next line, waiting while other workers hold lines that may still come free (a shared
        journal: a worker that dies leaves its lines to whoever waits); None when nothing is left.

        Once the journal said nothing is left for this worker, the other coroutines of this run stop
        without asking it again (a run of 1,000 lines at 1,000 at a time would ask 2,000 more times).
        """
        while self.fatal is None and not self._drained:
            try:
                claims = await self._take()
                if claims:
                    return claims[0]
                delay = await self.writes.call(self.journal.wait_hint)
            except JournalError as exc:
                self._stop(exc)
                return None
            if delay is None:
                self._drained = True
                return None
            await asyncio.sleep(delay)
        return None

    async def _take(self) -> list[Claim]:
        """One claim; when the run stops meanwhile, what the claim took is given straight back."""
        future = self.writes.submit(self.journal.claim, 1, self.settings.policy)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait({future})
            if not future.cancelled() and future.exception() is None and future.result():
                await self._release([(claim.line_no, claim.digest) for claim in future.result()])
            raise

    async def _line(self, claim: Claim) -> BatchResult:
        """Work one line in a task of its own, so a lost lease can stop just this line."""
        key = (claim.line_no, claim.digest)
        task = asyncio.ensure_future(self._process(claim))
        self._tasks[key] = task
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            lost = self._taken_over.pop(key, None)
            if lost is None or (current is not None and current.cancelling()):
                raise
            return await self._given_up(claim, lost)
        finally:
            del self._tasks[key]

    async def _given_up(self, claim: Claim, lost: LeaseLost) -> BatchResult:
        """The result of a line another worker took over: its state and id as last seen here."""
        self._emit(running=-1)
        item = self.items[(claim.line_no, claim.digest)]
        line = Line(item, claim, None)
        row = None
        with contextlib.suppress(JournalError):
            rows = await self.writes.call(self.journal.rows)
            row = next((found for found in rows if (found.line_no, found.digest) == line.key), None)
        if row is not None:
            line.prediction_id, line.state, line.status = row.prediction_id, row.state, row.status
        return line.result(lost, self.settings.describe(lost))

    async def _process(self, claim: Claim) -> BatchResult:
        item = self.items[(claim.line_no, claim.digest)]
        timeout = self.settings.timeout
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        line = Line(item, claim, deadline)
        self._active[line.key] = line
        self.started += 1
        self._emit(running=1)
        try:
            result = await self.work.run(line, claim.action)
        except asyncio.CancelledError:
            if line.key not in self._taken_over:
                self._stopped.append(line)
            raise
        except LeaseLost as exc:  # another worker holds the line now: leave it to them
            result = line.result(exc, self.settings.describe(exc))
        except JournalError as exc:  # the id (if any) is in the result: the caller still has it
            self._stop(exc)
            result = line.result(exc, self.settings.describe(exc))
        finally:
            del self._active[line.key]
        self._emit(running=-1, done=int(result.ok), failed=int(not result.ok))
        return result

    # -- leases -----------------------------------------------------------------------------------

    async def _renew(self) -> None:
        """Keep this worker's claims alive (shared journals). A line whose lease was lost is dropped
        (another worker has it); any other journal error stops new claims."""
        assert self.journal.lease_seconds is not None
        while self.fatal is None:
            await asyncio.sleep(self.journal.lease_seconds / 3)
            try:
                await self.writes.call(self.journal.renew, list(self._active))
            except LeaseLost as exc:
                self._drop(exc)
            except JournalError as exc:
                self._stop(exc)

    def _drop(self, lost: LeaseLost) -> None:
        if not lost.lines:
            self._stop(lost)
        for key in lost.lines:
            task = self._tasks.get(key)
            if task is not None and not task.done():
                _log.warning("line %s was taken over by another worker: stopping it here", key[0])
                self._taken_over[key] = lost
                task.cancel()

    async def _release(self, keys: Sequence[Key]) -> None:
        if not keys:
            return
        try:
            await self.writes.call(self.journal.release, keys)
        except JournalError as exc:
            self._stop(exc)

    def _stop(self, exc: BaseException) -> None:
        if self.fatal is None:
            self.fatal = exc

    def _emit(self, *, running: int = 0, done: int = 0, failed: int = 0) -> None:
        """Progress moved by these counts: tell the callback (a new object: displays may keep the old)."""
        was = self.progress
        self.progress = BatchProgress(
            was.total, was.done + done, was.failed + failed, was.running + running, was.skipped
        )
        if self.on_progress is None:
            return
        try:
            self.on_progress(self.progress)
        except Exception:  # a display must not break the batch
            _log.exception("batch progress callback failed")

    # -- stopping ---------------------------------------------------------------------------------

    async def _hand_back(self) -> None:
        """Shared journal: give the stopped lines back; another worker resumes them by id."""
        self._released_ids = [str(line.prediction_id) for line in self._stopped if line.running]
        await self._release([line.key for line in self._stopped])

    async def _cancel_stopped(self) -> None:
        """Journal of this worker alone: cancel what was running (best effort, bounded)."""
        lines = [line for line in self._stopped if line.running]
        self._interrupted_ids = [str(line.prediction_id) for line in lines]
        quick = self.client.with_options(timeout=CANCEL_TIMEOUT_S, max_retries=0)
        await asyncio.gather(*(self._cancel_one(quick, line) for line in lines))

    async def _cancel_one(self, quick: AsyncClient, line: Line) -> None:
        prediction_id = str(line.prediction_id)
        item = line.item
        try:
            prediction = await asyncio.wait_for(quick.predictions.cancel(prediction_id), CANCEL_TIMEOUT_S)
        except Exception as exc:
            self._cancel_failures.append((prediction_id, self.settings.describe(exc)))
            _log.warning("could not cancel %s: %s", prediction_id, self.settings.describe(exc))
            return
        status = status_text(prediction)
        try:
            if status == "canceled":
                # Stopped by the user: the next run creates the line again (old id in previous_ids).
                await self.writes.call(
                    self.journal.mark_finished,
                    item.line,
                    item.digest,
                    LineState.INTERRUPTED,
                    status=status,
                    error="canceled on Ctrl-C",
                )
            else:
                # It finished first (or the cancel is pending): the next run resumes it by id.
                await self.writes.call(self.journal.note, item.line, item.digest, status=status, error=None)
        except JournalError as exc:
            self._stop(exc)

    # -- the report -------------------------------------------------------------------------------

    def _rows(self) -> list[JournalRow]:
        try:
            return self.journal.rows()
        except JournalError as exc:
            self._stop(exc)
            return []

    def report(self) -> BatchReport:
        """Every line's result in line order (lines not run: from the journal), and the run's figures."""
        rows = {(row.line_no, row.digest): row for row in self._rows()}
        results = []
        for key, item in sorted(self.items.items(), key=lambda pair: pair[1].line):
            found = self.results.get(key)
            results.append(found or BatchResult.from_row(item.line, item.model, rows.get(key), item.input))
        not_started = max(self.plan.todo - self.started, 0) if self.fatal is not None else 0
        return BatchReport(
            journal=self.journal.location,
            plan=self.plan,
            results=results,
            stopped_early=self.fatal,
            not_started=not_started,
            interrupted_ids=list(self._interrupted_ids),
            released_ids=list(self._released_ids),
            cancel_failures=list(self._cancel_failures),
        )


def untouched(items: Sequence[BatchItem], journal: Journal, policy: RetryPolicy) -> list[BatchResult]:
    """Results of the lines a run leaves alone (done, failed or unknown before it), from the journal."""
    rows = {(row.line_no, row.digest): row for row in journal.rows()}
    left = []
    for item in items:
        row = rows.get((item.line, item.digest))
        if decide(row, policy) in ("done", "failed", "unknown"):
            left.append(BatchResult.from_row(item.line, item.model, row, item.input))
    return left
