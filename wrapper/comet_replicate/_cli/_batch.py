"""``batch FILE.jsonl --model M``: many predictions with bounded concurrency, resumable after a crash.

Each line's progress is kept in a SQLite journal (see ``_journal``). Creating a prediction is split
from waiting for it so that the id is committed the moment the create answers, before any waiting,
and so that a Ctrl-C lets an in-flight create finish (its id is then known and it can be canceled)
instead of leaving a paid prediction nobody can name.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import (
    APIConnectionError,
    AsyncClient,
    AuthenticationError,
    InputValidationError,
    PermissionDeniedError,
    PredictionAborted,
    PredictionCanceled,
    PredictionFailed,
    PredictionTimeout,
    UnexpectedStatus,
)
from .._inputs import prepare_input
from ._app import EXIT_CODES_HELP, app
from ._client import BaseUrlOption, JsonOption, OutOption, connection, make_async_client
from ._console import err_console, out_console, print_json
from ._errors import CliUsageError, ExitCode, cli_errors, describe_error, redact
from ._journal import (
    CREATED,
    CREATING,
    FINISHED_BAD,
    INTERRUPTED,
    NOT_CREATED,
    SUCCEEDED,
    Journal,
    default_journal_path,
)
from ._journal import input_hash as hash_input
from ._progress import status_text
from ._shared import definitely_not_created

__all__ = ["BatchLine", "batch_command", "read_jsonl"]

# Which problem decides the exit code when lines end differently (the first one present wins).
_EXIT_ORDER = (ExitCode.USAGE, ExitCode.API, ExitCode.TIMEOUT, ExitCode.PREDICTION)
_CANCEL_TIMEOUT_S = 15.0
UNKNOWN_NOTE = "unknown — may have been created: the create was sent but its answer never arrived"


@dataclass
class BatchLine:
    """One input line and what this run does with it."""

    line_no: int
    value: dict[str, Any]
    digest: str
    action: str = "create"  # create | resume | done | failed | unknown
    prediction_id: str | None = None
    state: str = ""
    status: str | None = None
    error: str | None = None
    outputs: list[str] = field(default_factory=list)
    code: ExitCode = ExitCode.OK


@dataclass
class Counters:
    """What the progress bar shows."""

    total: int = 0
    done: int = 0
    failed: int = 0
    running: int = 0
    skipped: int = 0


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """The inputs of a JSONL file: one JSON object per line (or ``{"input": {...}}``); blank lines skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliUsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    lines: list[tuple[int, dict[str, Any]]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise CliUsageError(f"{path} line {number} is not valid JSON: {exc}") from None
        if isinstance(value, dict) and set(value) == {"input"} and isinstance(value["input"], dict):
            value = value["input"]
        if not isinstance(value, dict):
            raise CliUsageError(f"{path} line {number} must be a JSON object, not {type(value).__name__}")
        lines.append((number, value))
    if not lines:
        raise CliUsageError(f"{path} holds no input lines")
    return lines


def _plan(
    lines: list[tuple[int, dict[str, Any]]],
    model: str,
    journal: Journal,
    *,
    retry_unknown: bool,
    retry_failed: bool,
    retry_lines: frozenset[int] = frozenset(),
) -> list[BatchLine]:
    """Decide each line's action from the journal: skip, resume by id, or create.

    A row is matched by (line number, input hash) first; an input that moved to another line since
    (the file was edited above it) adopts its old row by hash, so editing the file never pays twice.
    """
    plan = [BatchLine(line_no, value, hash_input(model, value)) for line_no, value in lines]
    keys = set(journal.keys())
    unclaimed: dict[str, list[int]] = {}
    for line_no, digest in sorted(keys - {(line.line_no, line.digest) for line in plan}):
        unclaimed.setdefault(digest, []).append(line_no)
    for line in plan:
        if (line.line_no, line.digest) not in keys and unclaimed.get(line.digest):
            journal.move(unclaimed[line.digest].pop(0), line.line_no, line.digest)
    for line in plan:
        row = journal.get(line.line_no, line.digest)
        if row is not None:
            line.prediction_id, line.state, line.status = row.prediction_id, row.state, row.status
            line.error, line.outputs = row.error, row.outputs
            if row.state == SUCCEEDED:
                line.action = "done"
            elif row.state == CREATED and row.prediction_id:
                line.action = "resume"
            elif row.state in FINISHED_BAD:
                line.action = "create" if retry_failed else "failed"
                line.code = ExitCode.PREDICTION
            elif row.state == CREATING:
                line.action = "create" if retry_unknown or line.line_no in retry_lines else "unknown"
                line.error = UNKNOWN_NOTE
                line.code = ExitCode.API
    return plan


def _validate(lines: list[tuple[int, dict[str, Any]]], model: str, path: Path) -> None:
    """Refuse the whole batch, before any request, when a line's input breaks the model's schema."""
    problems = []
    for line_no, value in lines:
        try:
            prepare_input(model, value)
        except InputValidationError as exc:
            problems.append(f"{path} line {line_no}: {describe_error(exc)}")
    if problems:
        shown = problems[:20]
        if len(problems) > 20:
            shown.append(f"… and {len(problems) - 20} more invalid lines")
        raise CliUsageError(
            f"{len(problems)} invalid input line(s); nothing was sent:\n  " + "\n  ".join(shown)
        )


def _fatal(exc: BaseException) -> bool:
    """Errors that every other line would hit too: a rejected key, or an API that cannot be reached."""
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        return True
    return isinstance(exc, APIConnectionError) and definitely_not_created(exc)


class BatchRunner:
    """Runs the planned lines on an AsyncClient with ``concurrency`` workers."""

    def __init__(
        self,
        client: AsyncClient,
        journal: Journal,
        model: str,
        *,
        out: Path,
        concurrency: int,
        timeout: float,
        wait: int,
        counters: Counters,
        refresh: Callable[[], None],
    ) -> None:
        self.client = client
        self.journal = journal
        self.model = model
        self.out = out
        self.concurrency = concurrency
        self.timeout = timeout
        self.wait = wait
        self.counters = counters
        self.refresh = refresh
        self.interrupted: list[BatchLine] = []  # lines running when Ctrl-C came, ids known
        self.interrupted_ids: list[str] = []
        self.fatal: BaseException | None = None  # an error every further line would hit too
        self.started = 0

    async def run(self, lines: list[BatchLine]) -> None:
        queue: asyncio.Queue[BatchLine] = asyncio.Queue()
        for line in lines:
            queue.put_nowait(line)
        workers = [asyncio.create_task(self._worker(queue)) for _ in range(min(self.concurrency, len(lines)))]
        try:
            await asyncio.gather(*workers)
        except asyncio.CancelledError:
            # Ctrl-C: workers let in-flight creates answer (so their ids are known), then stop.
            await asyncio.wait(workers)
            await self._cancel_active()
            raise

    async def _worker(self, queue: asyncio.Queue[BatchLine]) -> None:
        while self.fatal is None:
            try:
                line = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await self._process(line)

    async def _cancel_active(self) -> None:
        lines = list(self.interrupted)
        self.interrupted_ids = [str(line.prediction_id) for line in lines]
        quick = self.client.with_options(timeout=_CANCEL_TIMEOUT_S, max_retries=0)

        async def cancel(line: BatchLine) -> None:
            assert line.prediction_id is not None
            try:
                prediction = await asyncio.wait_for(
                    quick.predictions.cancel(line.prediction_id), _CANCEL_TIMEOUT_S
                )
            except Exception as exc:
                sys.stderr.write(f"could not cancel {line.prediction_id}: {describe_error(exc)}\n")
                return
            status = status_text(prediction)
            if status == "canceled":
                # The user stopped it: the next run creates the line again (the id stays in previous_ids).
                self.journal.mark_finished(
                    line.line_no, line.digest, INTERRUPTED, status=status, error="canceled on Ctrl-C"
                )
            else:
                # It finished first (or the cancel is pending): a re-run resumes it by id.
                self.journal.note(line.line_no, line.digest, status=status, error=None)

        await asyncio.gather(*(cancel(line) for line in lines))

    async def _create(self, line: BatchLine) -> None:
        """Send the create and commit its id; a Ctrl-C waits for the answer instead of losing it."""
        self.journal.mark_creating(line.line_no, line.digest, self.model)
        line.state = CREATING
        task = asyncio.ensure_future(
            self.client.predictions.create(self.model, line.value, wait=self.wait or None)
        )
        try:
            prediction = await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                try:
                    prediction = await asyncio.wait_for(asyncio.shield(task), _CANCEL_TIMEOUT_S)
                except BaseException:
                    raise asyncio.CancelledError from None
            elif task.cancelled() or task.exception() is not None:
                raise
            else:
                prediction = task.result()
            self._record_created(line, prediction)
            raise
        self._record_created(line, prediction)

    def _record_created(self, line: BatchLine, prediction: Any) -> None:
        line.prediction_id = str(prediction.id)
        line.status = status_text(prediction)
        line.state = CREATED
        self.journal.mark_created(line.line_no, line.digest, line.prediction_id, line.status)

    async def _process(self, line: BatchLine) -> None:
        self.started += 1
        self.counters.running += 1
        self.refresh()
        try:
            if line.action == "create":
                await self._create(line)
            assert line.prediction_id is not None

            def on_update(prediction: Any) -> None:
                line.status = status_text(prediction)

            outputs = await self.client.resume(line.prediction_id, timeout=self.timeout, on_update=on_update)
            self.out.mkdir(parents=True, exist_ok=True)
            # `<line>-<prediction id>-<name>`: sorted like the input, unique per prediction.
            paths = [
                str(await output.asave(self.out / f"line{line.line_no:05d}-{output.name}"))
                for output in outputs
            ]
            self.journal.mark_finished(
                line.line_no, line.digest, SUCCEEDED, status="succeeded", outputs=paths
            )
            line.state, line.status, line.outputs, line.error = SUCCEEDED, "succeeded", paths, None
            self.counters.done += 1
        except asyncio.CancelledError:
            if line.prediction_id:
                self.interrupted.append(line)
            raise
        except (PredictionFailed, PredictionCanceled, PredictionAborted, UnexpectedStatus) as exc:
            state = {PredictionCanceled: "canceled", PredictionAborted: "aborted"}.get(type(exc), "failed")
            detail = getattr(exc, "error", None)  # the provider's own words, for failed predictions
            line.state, line.status = state, exc.status
            line.error = (
                redact(" ".join(detail.split()))
                if isinstance(detail, str) and detail
                else describe_error(exc)
            )
            self.journal.mark_finished(line.line_no, line.digest, state, status=exc.status, error=line.error)
            line.code = ExitCode.PREDICTION
            self.counters.failed += 1
        except Exception as exc:
            line.error = describe_error(exc)
            line.code = ExitCode.TIMEOUT if isinstance(exc, PredictionTimeout) else ExitCode.API
            if line.prediction_id:
                self.journal.note(line.line_no, line.digest, error=line.error)  # resumed by id next time
            elif definitely_not_created(exc):
                line.state = NOT_CREATED
                line.code = ExitCode.USAGE if isinstance(exc, InputValidationError) else ExitCode.API
                self.journal.mark_not_created(line.line_no, line.digest, line.error)
            else:
                line.error = f"{UNKNOWN_NOTE} ({line.error})"
                self.journal.note(line.line_no, line.digest, error=line.error)
            if _fatal(exc) and self.fatal is None:
                self.fatal = exc  # no new line starts; the summary lists the lines left pending
            self.counters.failed += 1
        finally:
            self.counters.running -= 1
            self.refresh()


def _summary(plan: list[BatchLine], counters: Counters, journal_path: Path, console: Console) -> None:
    succeeded = sum(1 for line in plan if line.state == SUCCEEDED)
    console.print(
        f"{succeeded}/{len(plan)} lines succeeded ({counters.skipped} already done before this run); "
        f"journal: {journal_path}",
        markup=False,
    )
    problems = [line for line in plan if line.state != SUCCEEDED]
    if not problems:
        return
    table = Table(title="Lines that did not succeed")
    for column in ("line", "state", "prediction id", "error"):
        table.add_column(column, overflow="fold")
    for line in problems:
        state = _state_label(line)
        table.add_row(str(line.line_no), state, line.prediction_id or "", line.error or "")
    console.print(table)
    hints = []
    if any(line.state == CREATED for line in problems):
        hints.append("re-run the same command to resume the unfinished predictions by id")
    if any(line.state == CREATING for line in problems):
        hints.append(
            "--retry-unknown creates every unknown line again, --retry-unknown-line N just line N "
            "(each may pay twice: check first that its prediction does not exist)"
        )
    if any(line.state in FINISHED_BAD for line in problems):
        hints.append("--retry-failed creates new predictions for failed lines")
    for hint in hints:
        console.print(f"hint: {hint}", markup=False)


def _state_label(line: BatchLine) -> str:
    """The state shown to users: ``unknown`` for a create that never answered, ``pending`` if not run."""
    return "unknown" if line.state == CREATING else line.state or "pending"


def _exit_code(plan: list[BatchLine]) -> ExitCode:
    codes = {line.code for line in plan if line.state != SUCCEEDED}
    return next((code for code in _EXIT_ORDER if code in codes), ExitCode.OK)


@app.command("batch", epilog=EXIT_CODES_HELP)
def batch_command(
    file: Annotated[Path, typer.Argument(help="JSONL: one input object per line.")],
    model: Annotated[str, typer.Option("--model", "-m", help="The model every line runs on, owner/name.")],
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, max=64, help="Predictions at a time.")
    ] = 4,
    out: OutOption = Path("."),
    journal_path: Annotated[
        Path | None,
        typer.Option("--journal", help="SQLite journal (default: FILE.journal.sqlite next to FILE)."),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.001, help="Deadline of each prediction, in seconds.")
    ] = 300.0,
    wait: Annotated[
        int, typer.Option("--wait", min=0, max=60, help="Sync-mode seconds per create (0: off).")
    ] = 0,
    retry_unknown: Annotated[
        bool,
        typer.Option(
            "--retry-unknown",
            help="Create again the lines whose create was sent but never answered (they may be paid twice).",
        ),
    ] = False,
    retry_unknown_lines: Annotated[
        list[int] | None,
        typer.Option(
            "--retry-unknown-line",
            min=1,
            help="Create again this unknown line only, once you know its prediction does not exist "
            "(repeatable).",
        ),
    ] = None,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed", help="Create new predictions for lines that failed, were canceled or aborted."
        ),
    ] = False,
    as_json: JsonOption = False,
    base_url: BaseUrlOption = None,
) -> None:
    """Run one prediction per JSONL line; re-running the same command resumes after any crash.

    Finished lines are skipped, created-but-unfinished ones are resumed by id (never created again),
    the rest are created. A line whose create was sent but never answered is reported as unknown.
    """
    with cli_errors():
        lines = read_jsonl(file)
        _validate(lines, model, file)
        journal_file = journal_path or default_journal_path(file)
        with Journal(journal_file, file) as journal:
            plan = _plan(
                lines,
                model,
                journal,
                retry_unknown=retry_unknown,
                retry_failed=retry_failed,
                retry_lines=frozenset(retry_unknown_lines or ()),
            )
            counters = Counters(total=len(plan))
            counters.skipped = sum(1 for line in plan if line.action == "done")
            counters.done = counters.skipped
            counters.failed = sum(1 for line in plan if line.action in ("failed", "unknown"))
            todo = [line for line in plan if line.action in ("create", "resume")]
            resumed = sum(1 for line in todo if line.action == "resume")
            console = err_console()
            if counters.skipped or resumed or counters.failed:
                console.print(
                    f"journal {journal_file}: {counters.skipped} done, {resumed} to resume by id, "
                    f"{sum(1 for line in plan if line.action == 'unknown')} unknown, "
                    f"{len(todo) - resumed} to create",
                    markup=False,
                    soft_wrap=True,
                )
            if todo:
                with connection(base_url, False) as (url, key):
                    _run(todo, journal, model, url, key, out, concurrency, timeout, wait, counters, console)
            if as_json:
                print_json(
                    {
                        "journal": str(journal_file),
                        "lines": [
                            {
                                "line": line.line_no,
                                "state": _state_label(line),
                                "prediction_id": line.prediction_id,
                                "status": line.status,
                                "outputs": line.outputs,
                                "error": line.error,
                            }
                            for line in plan
                        ],
                    }
                )
            else:
                _summary(plan, counters, journal_file, out_console())
        code = _exit_code(plan)
    raise typer.Exit(code)


def _run(
    todo: list[BatchLine],
    journal: Journal,
    model: str,
    url: str | None,
    key: str,
    out: Path,
    concurrency: int,
    timeout: float,
    wait: int,
    counters: Counters,
    console: Console,
) -> None:
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
    task = progress.add_task(
        "batch",
        total=counters.total,
        completed=counters.done + counters.failed,
        done=counters.done,
        failed=counters.failed,
        running=0,
    )

    def refresh() -> None:
        progress.update(
            task,
            completed=counters.done + counters.failed,
            done=counters.done,
            failed=counters.failed,
            running=counters.running,
        )

    async def main() -> None:
        async with make_async_client(url, key) as client:
            runner = BatchRunner(
                client,
                journal,
                model,
                out=out,
                concurrency=concurrency,
                timeout=timeout,
                wait=wait,
                counters=counters,
                refresh=refresh,
            )
            holder.append(runner)
            await runner.run(todo)
            if runner.fatal is not None:
                pending = len(todo) - runner.started
                sys.stderr.write(
                    f"stopped early: {describe_error(runner.fatal)}; {pending} line(s) not started "
                    "(re-run the same command once this is fixed)\n"
                )

    holder: list[BatchRunner] = []
    try:
        with progress:
            asyncio.run(main())
    except KeyboardInterrupt:
        ids = holder[0].interrupted_ids if holder else []
        in_flight = [line for line in todo if line.state == CREATING]
        sys.stderr.write(
            "interrupted: "
            + (f"canceled running predictions {' '.join(ids)}; " if ids else "no prediction was running; ")
            + (f"{len(in_flight)} create(s) had no answer and are marked unknown; " if in_flight else "")
            + "re-run the same command to continue (canceled lines are created again)\n"
        )
        if ids:
            sys.stderr.write("prediction ids: " + " ".join(ids) + "\n")
        raise typer.Exit(ExitCode.INTERRUPTED) from None
