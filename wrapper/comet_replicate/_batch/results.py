"""What a batch reports: one result per line, progress counts, and the run's report."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import UnknownOutcome
from .journal import JournalRow, LineState
from .plan import PlanSummary

__all__ = ["UNKNOWN_NOTE", "BatchProgress", "BatchReport", "BatchResult", "state_label"]

UNKNOWN_NOTE = "unknown — may have been created: the create was sent but its answer never arrived"


def state_label(state: str | None) -> str:
    """The state shown to users: ``unknown`` for a create that never answered, ``pending`` if not run."""
    if state == LineState.CREATING:
        return "unknown"
    return state or LineState.PENDING.value


@dataclass(frozen=True)
class BatchResult:
    """How one line ended (or stands) after this run.

    ``state``: ``succeeded``, ``failed``/``canceled``/``aborted``, ``created`` (the prediction exists
    but did not finish here: a deadline or an error; the next run resumes it by id), ``unknown`` (a
    create was sent and never answered), ``not_created``, ``interrupted``, or ``pending`` (not run).
    ``error`` is the typed exception when this run saw one; ``message`` the text the journal keeps.
    ``ran`` is False for lines this run left alone (done or reported before it started).
    """

    line: int
    model: str
    state: str
    prediction_id: str | None = None
    status: str | None = None
    files: tuple[str, ...] = ()
    error: BaseException | None = None
    message: str | None = None
    ran: bool = True

    @property
    def ok(self) -> bool:
        return self.state == LineState.SUCCEEDED

    @classmethod
    def from_row(cls, line: int, model: str, row: JournalRow | None) -> BatchResult:
        """The standing of a line this run did not work on, from its journal row."""
        if row is None:
            return cls(line, model, LineState.PENDING.value, ran=False)
        error = UnknownOutcome(row.error or UNKNOWN_NOTE) if row.state == LineState.CREATING else None
        return cls(
            line,
            model,
            state_label(row.state),
            prediction_id=row.prediction_id,
            status=row.status,
            files=tuple(row.outputs),
            error=error,
            message=row.error,
            ran=False,
        )


@dataclass(frozen=True)
class BatchProgress:
    """Counts for a progress display; ``done`` includes ``skipped`` (done before this run)."""

    total: int
    done: int = 0
    failed: int = 0
    running: int = 0
    skipped: int = 0

    @property
    def finished(self) -> int:
        return self.done + self.failed


@dataclass
class BatchReport:
    """The whole run: every line's result in line order, and why it stopped if it stopped early."""

    journal: str
    plan: PlanSummary
    results: list[BatchResult] = field(default_factory=list)
    #: An error every further line would hit too (a rejected key, an unreachable API, a lost journal).
    stopped_early: BaseException | None = None
    #: Lines this run would have worked on but did not start because it stopped early.
    not_started: int = 0
    #: Predictions that were running when the run was stopped (each got a bounded cancel).
    interrupted_ids: list[str] = field(default_factory=list)
    #: With a shared journal: predictions that were running when the run was stopped, handed back
    #: uncanceled for another worker to resume by id.
    released_ids: list[str] = field(default_factory=list)
    #: ``(prediction id, error text)`` for each cancel that did not go through.
    cancel_failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def succeeded(self) -> int:
        return sum(1 for result in self.results if result.ok)

    @property
    def ok(self) -> bool:
        return self.stopped_early is None and all(result.ok for result in self.results)
