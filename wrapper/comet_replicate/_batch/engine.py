"""The async runner: claims lines from the journal and runs them on one AsyncClient, ``concurrency``
at a time, each within its own deadline.

Creating a prediction is split from waiting for it, so the id is committed the moment the create
answers, before any waiting. When the run is stopped (task cancel, Ctrl-C, the caller leaving the
loop), an in-flight create is given :data:`ANSWER_GRACE_S` to answer — its id is then known and the
prediction can be canceled — instead of leaving a paid prediction nobody can name; running
predictions then get a bounded cancel and their lines are marked ``interrupted``.

A line's deadline covers waiting and downloading; the create itself is bounded by the client's
request timeout and never cut short (cutting it would lose the id of a prediction that may exist).
Only the public API of :class:`~comet_replicate.AsyncClient` is used.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .._errors import (
    APIConnectionError,
    AuthenticationError,
    CometReplicateError,
    PermissionDeniedError,
    PredictionAborted,
    PredictionCanceled,
    PredictionFailed,
    PredictionTimeout,
    UnexpectedStatus,
)
from .errors import JournalError, LeaseLost, UnknownOutcome
from .items import BatchItem
from .journal import Claim, Journal, LineState, RetryPolicy
from .outcome import definitely_not_created
from .outputs import Outputs
from .plan import PlanSummary, decide
from .results import UNKNOWN_NOTE, BatchProgress, BatchReport, BatchResult, state_label

if TYPE_CHECKING:  # types only: the clients may import this package
    from .._client import AsyncClient

__all__ = ["ANSWER_GRACE_S", "CANCEL_TIMEOUT_S", "BatchEngine", "EngineSettings", "describe_error"]

#: How long a create in flight when the run stops may take to answer (its id is then known).
ANSWER_GRACE_S = 15.0
#: Bound of each best-effort cancel sent when the run stops.
CANCEL_TIMEOUT_S = 15.0
#: A deadline already passed still lets the wait look once (a finished prediction is not lost).
_MIN_WAIT_S = 0.001

_ENDED_BADLY = (PredictionFailed, PredictionCanceled, PredictionAborted, UnexpectedStatus)
_log = logging.getLogger("comet_replicate.batch")


def describe_error(exc: BaseException) -> str:
    """One line naming what went wrong and, when a prediction exists, its id."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    prediction_id = getattr(exc, "prediction_id", None)
    if prediction_id and str(prediction_id) not in message:
        message = f"{message} (prediction {prediction_id})"
    if not isinstance(exc, CometReplicateError):
        message = f"{type(exc).__name__}: {message}"
    return message


def _status_text(prediction: Any) -> str:
    status = getattr(prediction, "status", None)
    return str(getattr(status, "value", status) or "unknown")


def _is_fatal(exc: BaseException) -> bool:
    """Errors every other line would hit too: a rejected key, or an API that cannot be reached."""
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        return True
    return isinstance(exc, APIConnectionError) and definitely_not_created(exc)


@dataclass(frozen=True)
class EngineSettings:
    """How a run works: lines at a time, each line's deadline (None: none), sync-mode seconds per
    create (None: off), which badly ended lines to create again, how errors are worded."""

    concurrency: int = 4
    timeout: float | None = 300.0
    wait: int | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    describe: Callable[[BaseException], str] = describe_error


class _Line:
    """One line being worked on: what the journal and the caller will be told about it."""

    def __init__(self, item: BatchItem, claim: Claim, deadline: float | None) -> None:
        self.item = item
        self.prediction_id = claim.prediction_id
        self.state = LineState.CREATED.value if claim.prediction_id else LineState.PENDING.value
        self.status: str | None = None
        self.deadline = deadline
        #: The task working on the line, and why it was dropped (a lost lease), if it was.
        self.task: asyncio.Task[Any] | None = None
        self.lost: LeaseLost | None = None

    @property
    def key(self) -> tuple[int, str]:
        return self.item.line, self.item.digest

    def on_update(self, prediction: Any) -> None:
        self.status = _status_text(prediction)

    def result(self, error: BaseException | None = None, message: str | None = None) -> BatchResult:
        return BatchResult(
            self.item.line,
            self.item.model,
            state_label(self.state),
            prediction_id=self.prediction_id,
            status=self.status,
            error=error,
            message=message,
        )


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
        self.results: dict[tuple[int, str], BatchResult] = {}
        #: The report, set when the run ended (normally, early, or stopped).
        self.final: BatchReport | None = None
        self.fatal: BaseException | None = None
        self.started = 0
        self._active: dict[tuple[int, str], _Line] = {}
        self._interrupted: list[_Line] = []
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
                await self._cancel_interrupted()
            else:  # a shared journal: the other workers resume them by id; canceling would pay again
                self._release_interrupted()
            raise
        finally:
            if renewer is not None:
                renewer.cancel()
            self._release_all()
            queue.put_nowait(None)

    async def _worker(self, queue: asyncio.Queue[BatchResult | None]) -> None:
        while self.fatal is None:
            claim = await self._claim()
            if claim is None:
                return
            result = await self._process(claim)
            self.results[(claim.line_no, claim.digest)] = result
            queue.put_nowait(result)

    async def _claim(self) -> Claim | None:
        """The next line, waiting while other workers hold lines that may still come free (a shared
        journal: a worker that dies leaves its lines to whoever waits); None when nothing is left."""
        while self.fatal is None:
            try:
                claims = self.journal.claim(1, self.settings.policy)
                if claims:
                    return claims[0]
                delay = self.journal.wait_hint()
            except JournalError as exc:
                self._stop(exc)
                return None
            if delay is None:
                return None
            await asyncio.sleep(delay)
        return None

    async def _renew(self) -> None:
        """Keep this worker's claims alive (shared journals). A line whose lease was lost (another
        worker holds it now) is dropped at once, so no line is worked on by two workers; any other
        journal error stops new claims."""
        assert self.journal.lease_seconds is not None
        while self.fatal is None:
            await asyncio.sleep(self.journal.lease_seconds / 3)
            try:
                self.journal.renew(list(self._active))
            except LeaseLost as exc:
                for key in exc.lines:
                    self._drop(key, exc)
            except JournalError as exc:
                self._stop(exc)

    def _drop(self, key: tuple[int, str], exc: LeaseLost) -> None:
        """Stop working on a line another worker took over (its task only; nothing is sent)."""
        line = self._active.get(key)
        if line is not None and line.task is not None and not line.task.done():
            line.lost = exc
            line.task.cancel()

    def _release_interrupted(self) -> None:
        lines = list(self._interrupted)
        self._released_ids = [str(line.prediction_id) for line in lines]
        try:
            self.journal.release([line.key for line in lines])
        except JournalError as exc:
            self._stop(exc)

    def _release_all(self) -> None:
        try:
            self.journal.release(list(self._active))
        except JournalError as exc:
            self._stop(exc)

    def _stop(self, exc: BaseException) -> None:
        if self.fatal is None:
            self.fatal = exc

    def _emit(self, **changes: int) -> None:
        self.progress = replace(self.progress, **changes)
        if self.on_progress is None:
            return
        try:
            self.on_progress(self.progress)
        except Exception:  # a display must not break the batch
            _log.exception("batch progress callback failed")

    # -- one line ---------------------------------------------------------------------------------

    async def _process(self, claim: Claim) -> BatchResult:
        item = self.items[(claim.line_no, claim.digest)]
        timeout = self.settings.timeout
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        line = _Line(item, claim, deadline)
        line.task = asyncio.current_task()
        self._active[line.key] = line
        self.started += 1
        self._emit(running=self.progress.running + 1)
        try:
            result = await self._attempt(line, claim.action)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if line.lost is not None and task is not None and task.cancelling() == 1:
                task.uncancel()  # only our own drop: the line is another worker's now
                result = line.result(line.lost, self.settings.describe(line.lost))
            else:
                if line.prediction_id and line.state == LineState.CREATED:
                    self._interrupted.append(line)
                raise
        except LeaseLost as exc:  # this line only: another worker holds it now
            task = asyncio.current_task()
            if line.lost is not None and task is not None and task.cancelling():
                task.uncancel()  # our own drop arrived while the line was writing its id
            result = line.result(exc, self.settings.describe(exc))
        except JournalError as exc:  # the id (if any) is in the result: the caller still has it
            self._stop(exc)
            result = line.result(exc, self.settings.describe(exc))
        finally:
            del self._active[line.key]
        done, failed = self.progress.done, self.progress.failed
        if result.ok:
            done += 1
        else:
            failed += 1
        self._emit(running=self.progress.running - 1, done=done, failed=failed)
        return result

    async def _attempt(self, line: _Line, action: str) -> BatchResult:
        try:
            self.out.clear_line(line.item.line)
            if action == "create":
                await self._create(line)
            files = await self._complete(line)
        except _ENDED_BADLY as exc:
            return self._ended_badly(line, exc)
        except (asyncio.CancelledError, JournalError):
            raise
        except Exception as exc:
            return self._failed(line, exc)
        self.journal.mark_finished(
            line.item.line, line.item.digest, LineState.SUCCEEDED, status="succeeded", outputs=files
        )
        line.state, line.status = LineState.SUCCEEDED.value, "succeeded"
        return replace(line.result(), files=tuple(files))

    async def _create(self, line: _Line) -> None:
        """Send the create and commit its id; a stop waits for the answer instead of losing it."""
        item = line.item
        self.journal.mark_creating(item.line, item.digest, item.model)
        line.state = LineState.CREATING.value
        task = asyncio.ensure_future(
            self.client.predictions.create(item.model, dict(item.input), wait=self.settings.wait)
        )
        try:
            prediction = await asyncio.shield(task)
        except asyncio.CancelledError:
            prediction = await self._answer_after_stop(task)
            self._record_created(line, prediction)
            raise
        self._record_created(line, prediction)

    @staticmethod
    async def _answer_after_stop(task: asyncio.Future[Any]) -> Any:
        """The create's answer when the run was stopped during it, or CancelledError if none comes."""
        if not task.done():
            try:
                return await asyncio.wait_for(asyncio.shield(task), ANSWER_GRACE_S)
            except BaseException:
                raise asyncio.CancelledError from None
        if task.cancelled() or task.exception() is not None:
            raise asyncio.CancelledError
        return task.result()

    def _record_created(self, line: _Line, prediction: Any) -> None:
        line.prediction_id = str(prediction.id)
        line.status = _status_text(prediction)
        line.state = LineState.CREATED.value
        self.journal.mark_created(line.item.line, line.item.digest, line.prediction_id, line.status)

    async def _complete(self, line: _Line) -> list[str]:
        """Wait for the prediction and save its outputs, within the line's deadline."""
        assert line.prediction_id is not None
        wait_s = self._left(line)
        outputs = await self.client.resume(line.prediction_id, timeout=wait_s, on_update=line.on_update)
        line.status = "succeeded"
        try:
            async with asyncio.timeout_at(line.deadline):
                return await self.out.save(line.item.line, outputs)
        except TimeoutError:
            raise PredictionTimeout(
                line.prediction_id, timeout=self.settings.timeout or 0.0, status="succeeded (saving outputs)"
            ) from None

    @staticmethod
    def _left(line: _Line) -> float | None:
        if line.deadline is None:
            return None
        return max(line.deadline - asyncio.get_running_loop().time(), _MIN_WAIT_S)

    def _ended_badly(self, line: _Line, exc: PredictionFailed | PredictionCanceled | Any) -> BatchResult:
        state = {PredictionCanceled: "canceled", PredictionAborted: "aborted"}.get(type(exc), "failed")
        detail = getattr(exc, "error", None)  # the provider's own words, for failed predictions
        message = " ".join(detail.split()) if isinstance(detail, str) and detail else None
        message = message or self.settings.describe(exc)
        line.state, line.status = state, exc.status
        self.journal.mark_finished(line.item.line, line.item.digest, state, status=exc.status, error=message)
        return line.result(exc, message)

    def _failed(self, line: _Line, exc: Exception) -> BatchResult:
        """Any other error: the line stays resumable by id, not created, or unknown."""
        if _is_fatal(exc):
            self._stop(exc)  # no new line starts; the report counts the lines left pending
        message = self.settings.describe(exc)
        item = line.item
        if line.prediction_id:
            self.journal.note(item.line, item.digest, error=message)  # resumed by id next time
            return line.result(exc, message)
        if definitely_not_created(exc):
            self.journal.mark_not_created(item.line, item.digest, message)
            line.state = LineState.NOT_CREATED.value
            return line.result(exc, message)
        message = f"{UNKNOWN_NOTE} ({message})"
        self.journal.note(item.line, item.digest, error=message)
        unknown = UnknownOutcome(message)
        unknown.__cause__ = exc
        return line.result(unknown, message)

    # -- stopping ---------------------------------------------------------------------------------

    async def _cancel_interrupted(self) -> None:
        """Cancel what was running when the run stopped (best effort, bounded)."""
        lines = list(self._interrupted)
        self._interrupted_ids = [str(line.prediction_id) for line in lines]
        quick = self.client.with_options(timeout=CANCEL_TIMEOUT_S, max_retries=0)
        await asyncio.gather(*(self._cancel_one(quick, line) for line in lines))

    async def _cancel_one(self, quick: AsyncClient, line: _Line) -> None:
        prediction_id = str(line.prediction_id)
        item = line.item
        try:
            prediction = await asyncio.wait_for(quick.predictions.cancel(prediction_id), CANCEL_TIMEOUT_S)
        except Exception as exc:
            self._cancel_failures.append((prediction_id, self.settings.describe(exc)))
            _log.warning("could not cancel %s: %s", prediction_id, self.settings.describe(exc))
            return
        status = _status_text(prediction)
        try:
            if status == "canceled":
                # Stopped by the user: the next run creates the line again (old id in previous_ids).
                self.journal.mark_finished(
                    item.line, item.digest, LineState.INTERRUPTED, status=status, error="canceled on Ctrl-C"
                )
            else:
                # It finished first (or the cancel is pending): the next run resumes it by id.
                self.journal.note(item.line, item.digest, status=status, error=None)
        except JournalError as exc:
            self._stop(exc)

    # -- the report -------------------------------------------------------------------------------

    def report(self) -> BatchReport:
        """Every line's result in line order (lines not run: from the journal), and the run's figures."""
        try:
            rows = {(row.line_no, row.digest): row for row in self.journal.rows()}
        except JournalError as exc:
            self._stop(exc)
            rows = {}
        results = []
        for key, item in sorted(self.items.items(), key=lambda pair: pair[1].line):
            found = self.results.get(key)
            results.append(found or BatchResult.from_row(item.line, item.model, rows.get(key)))
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
            left.append(BatchResult.from_row(item.line, item.model, row))
    return left
