"""One line's work: create (or resume) its prediction, wait, save the outputs, and tell the journal.

Creating a prediction is split from waiting for it, so the id is committed the moment the create
answers, before any waiting. A create is never cut short: when the run stops during it, the create
gets :data:`~.settings.ANSWER_GRACE_S` to answer (a held create is also looked for through the list
route meanwhile), so its id is known (and can be canceled or handed on) instead of leaving a paid
prediction nobody can name. The line's deadline covers waiting and saving, and a held create's
hold; a create without waiting is bounded by the client's own request timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._constants import JOURNAL_DEFER_MIN_LINES
from .._errors import (
    APIConnectionError,
    AuthenticationError,
    PermissionDeniedError,
    PredictionAborted,
    PredictionCanceled,
    PredictionError,
    PredictionFailed,
    PredictionTimeout,
    UnexpectedStatus,
)
from .errors import JournalError
from .held import find_held, held_create, prediction_files
from .items import BatchItem
from .journal import Claim, Journal, LineState
from .journal_thread import JournalThread
from .outcome import definitely_not_created
from .outputs import Outputs
from .results import UNKNOWN_NOTE, BatchResult, outcome_unknown, state_label
from .settings import (
    ANSWER_GRACE_S,
    DOWNLOADS_AT_ONCE,
    HELD_LOOKUP_GAP_S,
    HELD_LOOKUPS,
    MIN_WAIT_S,
    EngineSettings,
)

if TYPE_CHECKING:  # types only: the clients may import this package
    from comet_replicate_api.models import Prediction

    from .._client import AsyncClient

__all__ = ["Line", "LineWork", "is_fatal", "status_text"]

_ENDED_BADLY = (PredictionFailed, PredictionCanceled, PredictionAborted, UnexpectedStatus)


def status_text(prediction: Any) -> str:
    """A prediction's status as plain text (an enum member or a string the contract does not list)."""
    status = getattr(prediction, "status", None)
    return str(getattr(status, "value", status) or "unknown")


def is_fatal(exc: BaseException) -> bool:
    """Errors every other line would hit too: a rejected key, or an API that cannot be reached."""
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        return True
    return isinstance(exc, APIConnectionError) and definitely_not_created(exc)


class Line:
    """One line being worked on: what the journal and the caller will be told about it."""

    def __init__(self, item: BatchItem, claim: Claim, deadline: float | None) -> None:
        self.item = item
        self.prediction_id = claim.prediction_id
        self.state = LineState.CREATED.value if claim.prediction_id else LineState.PENDING.value
        self.status: str | None = None
        self.deadline = deadline
        self.sent_at: float | None = None

    @property
    def key(self) -> tuple[int, str]:
        return self.item.line, self.item.digest

    @property
    def running(self) -> bool:
        """Its prediction exists and is not finished here (a stop cancels it or hands it on)."""
        return bool(self.prediction_id) and self.state == LineState.CREATED

    def on_update(self, prediction: Any) -> None:
        self.status = status_text(prediction)

    def result(
        self, error: BaseException | None = None, message: str | None = None, files: tuple[str, ...] = ()
    ) -> BatchResult:
        return BatchResult(
            self.item.line,
            self.item.model,
            state_label(self.state),
            prediction_id=self.prediction_id,
            status=self.status,
            files=files,
            error=error,
            message=message,
        )


class LineWork:
    """Runs lines on one AsyncClient, writing each step to the journal; ``on_fatal`` hears of errors
    every further line would hit too."""

    def __init__(
        self,
        client: AsyncClient,
        journal: Journal,
        writes: JournalThread,
        out: Outputs,
        settings: EngineSettings,
        on_fatal: Callable[[BaseException], None],
    ) -> None:
        self.client = client
        self.journal = journal
        self.writes = writes
        self.out = out
        self.settings = settings
        self.on_fatal = on_fatal
        self._lookups = asyncio.Semaphore(HELD_LOOKUPS)
        self._downloads = asyncio.Semaphore(DOWNLOADS_AT_ONCE)
        # A final state shares the next write's group on a batch busy enough (`JOURNAL_DEFER_MIN_LINES`)
        self._finish = (
            writes.call_deferred if settings.concurrency >= JOURNAL_DEFER_MIN_LINES else writes.call
        )

    async def run(self, line: Line, action: str) -> BatchResult:
        """Create (``action == "create"``) or resume the line's prediction, wait, save: its result.

        CancelledError and JournalError go on to the caller (the line's id, if any, is on ``line``).
        """
        try:
            self.out.clear_line(line.item.line)
            created = await self._create(line) if action == "create" else None
            files = await self._complete(line, created)
        except _ENDED_BADLY as exc:
            return await self._ended_badly(line, exc)
        except (asyncio.CancelledError, JournalError):
            raise
        except Exception as exc:
            return await self._failed(line, exc)
        line.status = "succeeded"
        try:
            await self._finish(  # goes with the next write: see JournalThread.defer
                self.journal.mark_finished,
                line.item.line,
                line.item.digest,
                LineState.SUCCEEDED,
                status="succeeded",
                outputs=files,
            )
        except asyncio.CancelledError:
            line.state = LineState.SUCCEEDED.value  # not running: a stop sends it no cancel
            raise
        line.state = LineState.SUCCEEDED.value
        return line.result(files=tuple(files))

    async def _create(self, line: Line) -> Prediction:
        """Send the create and commit its id; a stop waits for the answer instead of losing it.

        With ``settings.wait`` the create is held in sync mode (in one of the client's held-create
        slots while one is free, else created without waiting, as ``run`` does): its answer, and so
        its id, comes when the prediction ends or the hold does. A kill meanwhile leaves the line
        ``creating``, found again through the list route by the next run (see ``BatchOptions``).
        """
        item = line.item
        try:
            await self.writes.call(self.journal.mark_creating, item.line, item.digest, item.model)
        except asyncio.CancelledError:
            # Stopped before the create went out: say so, or the next run would report it unknown.
            await self.writes.call(
                self.journal.mark_not_created, item.line, item.digest, "stopped before its create was sent"
            )
            raise
        line.state, line.sent_at = LineState.CREATING.value, time.time()
        wait = None if item.digest in self.settings.never_held else self.settings.wait
        if wait is None:
            sent = self.client.predictions.create(item.model, dict(item.input))
        else:
            sent = held_create(self.client, item.model, dict(item.input), wait, _left(line))
        task = asyncio.ensure_future(sent)
        try:
            prediction = await asyncio.shield(task)
        except asyncio.CancelledError:
            if wait is None:
                prediction = await _answer_after_stop(task)
            else:
                prediction = await self._held_after_stop(line, task)
            await self._record_created(line, prediction)
            raise
        await self._record_created(line, prediction)
        return prediction

    async def _held_after_stop(self, line: Line, task: asyncio.Future[Any]) -> Any:
        """A held create when the run stops: its answer may be a minute away, so within
        ``ANSWER_GRACE_S`` the prediction is also looked for through the list route (a few lines at a
        time); found either way, its id is journaled and the stop cancels it like any running line.
        Not found: CancelledError, the line stays ``creating`` for the next run's lookup."""
        loop = asyncio.get_running_loop()
        until = loop.time() + ANSWER_GRACE_S
        assert line.sent_at is not None
        while not task.done() and loop.time() < until:
            async with self._lookups:
                found = None if task.done() else await find_held(self.client, line.item, line.sent_at)
            if found is not None:
                return found
            await asyncio.wait({task}, timeout=min(HELD_LOOKUP_GAP_S, max(until - loop.time(), 0.0)))
        return await _answer_after_stop(task)

    async def _record_created(self, line: Line, prediction: Any) -> None:
        line.prediction_id = str(prediction.id)
        line.status = status_text(prediction)
        line.state = LineState.CREATED.value
        await self.writes.call(
            self.journal.mark_created, line.item.line, line.item.digest, line.prediction_id, line.status
        )

    async def _complete(self, line: Line, created: Prediction | None) -> list[str]:
        """Wait for the prediction and save its outputs, within the line's deadline. A prediction
        the create answered with is waited for from there (no poll at once; none when it is done)."""
        assert line.prediction_id is not None
        target: Prediction | str = line.prediction_id if created is None else created
        prediction = await self.client.predictions.wait(target, timeout=_left(line), on_update=line.on_update)
        outputs = prediction_files(self.client, prediction)
        line.status = "succeeded"
        try:
            async with asyncio.timeout_at(line.deadline), self._downloads:
                return await self.out.save(line.item.line, outputs)
        except TimeoutError:
            raise PredictionTimeout(
                line.prediction_id, timeout=self.settings.timeout or 0.0, status="succeeded (saving outputs)"
            ) from None

    async def _ended_badly(self, line: Line, exc: PredictionError) -> BatchResult:
        state = {PredictionCanceled: "canceled", PredictionAborted: "aborted"}.get(type(exc), "failed")
        detail = getattr(exc, "error", None)  # the provider's own words, for failed predictions
        message = " ".join(detail.split()) if isinstance(detail, str) and detail else None
        message = message or self.settings.describe(exc)
        line.state, line.status = state, exc.status
        await self._finish(
            self.journal.mark_finished,
            line.item.line,
            line.item.digest,
            state,
            status=exc.status,
            error=message,
        )
        return line.result(exc, message)

    async def _failed(self, line: Line, exc: Exception) -> BatchResult:
        """Any other error: the line stays resumable by id, not created, or unknown."""
        if is_fatal(exc):
            self.on_fatal(exc)  # no new line starts; the report counts the lines left pending
        message = self.settings.describe(exc)
        item = line.item
        if line.prediction_id:
            await self.writes.call(self.journal.note, item.line, item.digest, error=message)  # resumed by id
            return line.result(exc, message)
        if definitely_not_created(exc):
            await self.writes.call(self.journal.mark_not_created, item.line, item.digest, message)
            line.state = LineState.NOT_CREATED.value
            return line.result(exc, message)
        message = f"{UNKNOWN_NOTE} ({message})"
        await self.writes.call(self.journal.note, item.line, item.digest, error=message)
        return line.result(outcome_unknown(item.model, item.input, line.sent_at, message, exc), message)


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


def _left(line: Line) -> float | None:
    if line.deadline is None:
        return None
    return max(line.deadline - asyncio.get_running_loop().time(), MIN_WAIT_S)
