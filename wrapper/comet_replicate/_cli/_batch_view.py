"""How ``batch`` shows a run: a Rich progress bar on stderr, a summary table or JSON on stdout, exit codes.

Rendering only: every decision about lines is the library's (``comet_replicate._batch``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import InputValidationError, PredictionTimeout
from .._batch import FINISHED_BAD, BatchProgress, BatchReport, BatchResult, JournalError, PlanSummary
from ._console import print_json
from ._errors import ExitCode, describe_error, redact

__all__ = [
    "ProgressRelay",
    "exit_code",
    "json_report",
    "plan_line",
    "progress_bar",
    "report_interrupt",
    "report_stop",
    "summary",
]

# Which problem decides the exit code when lines end differently (the first one present wins).
_EXIT_ORDER = (ExitCode.USAGE, ExitCode.API, ExitCode.TIMEOUT, ExitCode.PREDICTION)


def plan_line(journal: str, plan: PlanSummary) -> str | None:
    """``journal X: N done, M to resume by id, K unknown, L to create`` when the journal knew lines."""
    if not (plan.done or plan.resume or plan.failed or plan.unknown):
        return None
    return (
        f"journal {journal}: {plan.done} done, {plan.resume} to resume by id, "
        f"{plan.unknown} unknown, {plan.create} to create"
    )


@contextmanager
def progress_bar(console: Console, plan: PlanSummary) -> Iterator[Progress]:
    """A bar of finished lines with done / failed / running counts; ``update`` it with BatchProgress."""
    progress = Progress(
        TextColumn("batch"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "done {task.fields[done]} · failed {task.fields[failed]} · running {task.fields[running]}"
        ),
        TimeElapsedColumn(),
        console=console,
    )
    failed = plan.failed + plan.unknown
    progress.add_task(
        "batch", total=plan.total, completed=plan.done + failed, done=plan.done, failed=failed, running=0
    )
    with progress:
        yield progress


class ProgressRelay:
    """The engine's ``on_progress``: moves the bar, once there is one, to each new state.

    Called from the engine's thread; Rich locks its own updates.
    """

    bar: Progress | None = None

    def __call__(self, state: BatchProgress) -> None:
        if self.bar is not None:
            self.bar.update(
                self.bar.task_ids[0],
                completed=state.finished,
                done=state.done,
                failed=state.failed,
                running=state.running,
            )


def _code(result: BatchResult) -> ExitCode | None:
    """The exit code one line's outcome calls for (None: nothing wrong, or nothing tried)."""
    if result.ok:
        return None
    if result.state in FINISHED_BAD:
        return ExitCode.PREDICTION
    if result.state == "unknown":
        return ExitCode.API
    if result.error is None:
        return None
    if isinstance(result.error, PredictionTimeout):
        return ExitCode.TIMEOUT
    if isinstance(result.error, InputValidationError):
        return ExitCode.USAGE
    return ExitCode.API


def exit_code(report: BatchReport) -> ExitCode:
    codes = {code for result in report.results if (code := _code(result)) is not None}
    if isinstance(report.stopped_early, JournalError):
        codes.add(ExitCode.API)
    return next((code for code in _EXIT_ORDER if code in codes), ExitCode.OK)


def _message(result: BatchResult) -> str:
    if result.message:
        return redact(result.message)
    return describe_error(result.error) if result.error is not None else ""


def json_report(report: BatchReport) -> None:
    print_json(
        {
            "journal": report.journal,
            "lines": [
                {
                    "line": result.line,
                    "state": result.state,
                    "prediction_id": result.prediction_id,
                    "status": result.status,
                    "outputs": list(result.files),
                    "error": _message(result) or None,
                }
                for result in report.results
            ],
        }
    )


def summary(report: BatchReport, console: Console) -> None:
    """``N/M lines succeeded …``, a table of the lines that did not, and what to do about them."""
    console.print(
        f"{report.succeeded}/{len(report.results)} lines succeeded ({report.plan.done} already done "
        f"before this run); journal: {report.journal}",
        markup=False,
    )
    problems = [result for result in report.results if not result.ok]
    if not problems:
        return
    table = Table(title="Lines that did not succeed")
    for column in ("line", "state", "prediction id", "error"):
        table.add_column(column, overflow="fold")
    for result in problems:
        table.add_row(str(result.line), result.state, result.prediction_id or "", _message(result))
    console.print(table)
    for hint in _hints(problems):
        console.print(f"hint: {hint}", markup=False)


def _hints(problems: Sequence[BatchResult]) -> list[str]:
    states = {result.state for result in problems}
    hints = []
    if "created" in states:
        hints.append("re-run the same command to resume the unfinished predictions by id")
    if "unknown" in states:
        hints.append(
            "--retry-unknown creates every unknown line again, --retry-unknown-line N just line N "
            "(each may pay twice: check first that its prediction does not exist)"
        )
    if states & set(FINISHED_BAD):
        hints.append("--retry-failed creates new predictions for failed lines")
    return hints


def report_stop(report: BatchReport) -> None:
    """On stderr: why the run stopped early, and the cancels that did not go through."""
    for prediction_id, error in report.cancel_failures:
        sys.stderr.write(f"could not cancel {prediction_id}: {redact(error)}\n")
    if report.stopped_early is not None:
        sys.stderr.write(
            f"stopped early: {describe_error(report.stopped_early)}; {report.not_started} line(s) not "
            "started (re-run the same command once this is fixed)\n"
        )
    unrecorded = [
        result.prediction_id
        for result in report.results
        if result.prediction_id and isinstance(result.error, JournalError)
    ]
    if unrecorded:  # the journal failed around these: their ids must reach the user some way
        sys.stderr.write("prediction ids the journal may not hold: " + " ".join(unrecorded) + "\n")


def report_interrupt(report: BatchReport | None) -> None:
    """On stderr, after Ctrl-C: what was canceled, what is unknown, how to continue."""
    ids = report.interrupted_ids if report else []
    unknown = 0
    if report is not None:
        unknown = max(sum(1 for r in report.results if r.state == "unknown") - report.plan.unknown, 0)
        for prediction_id, error in report.cancel_failures:
            sys.stderr.write(f"could not cancel {prediction_id}: {redact(error)}\n")
    released = report.released_ids if report else []
    if released:  # a shared journal: other workers resume them by id, nothing is canceled
        sys.stderr.write(
            f"interrupted: handed running predictions {' '.join(released)} back to the journal; "
            "another worker (or the next run) resumes them by id\n"
            "prediction ids: " + " ".join(released) + "\n"
        )
        return
    sys.stderr.write(
        "interrupted: "
        + (f"canceled running predictions {' '.join(ids)}; " if ids else "no prediction was running; ")
        + (f"{unknown} create(s) had no answer and are marked unknown; " if unknown else "")
        + "re-run the same command to continue (canceled lines are created again)\n"
    )
    if ids:
        sys.stderr.write("prediction ids: " + " ".join(ids) + "\n")
