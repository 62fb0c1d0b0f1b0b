"""``batch FILE.jsonl --model M``: many predictions with bounded concurrency, resumable after a crash.

A thin front-end over the library's batch engine (``comet_replicate._batch``): parse the options,
prepare the batch (every input and journal error before any request), run it with a progress bar,
render the summary. The engine runs on its own event loop thread (``Batch``), so Ctrl-C reaches
this thread, which stops the run the library's way: in-flight creates answer, running predictions
are canceled, their ids printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from .. import AsyncClient
from .._batch import Batch, BatchInputError, BatchReport, JournalError, parse_jsonl
from .._inputs import InputValidation
from ._app import EXIT_CODES_HELP, app
from ._batch_view import (
    ProgressRelay,
    exit_code,
    json_report,
    plan_line,
    progress_bar,
    report_interrupt,
    report_stop,
    summary,
)
from ._client import (
    BaseUrlOption,
    EmulatorOption,
    JsonOption,
    ValidateOption,
    connection,
    make_async_client,
)
from ._console import err_console, out_console
from ._errors import CliUsageError, cli_errors, describe_error, interrupt_exit_code
from ._interrupt import interrupt_name, terminate_as_interrupt

__all__ = ["batch_command", "read_jsonl"]


def read_jsonl(path: Path) -> list[tuple[int, dict[str, object]]]:
    """The inputs of a JSONL file (the library's reader; its errors as usage errors, exit 2)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliUsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return parse_jsonl(data, str(path))
    except BatchInputError as exc:
        raise CliUsageError(str(exc)) from None


class _Endpoint:
    """The API the engine's client talks to, known once the connection (or emulator) is up."""

    url: str | None = None
    key: str = ""

    def __init__(self, input_validation: InputValidation) -> None:
        self.input_validation: InputValidation = input_validation

    def client(self) -> AsyncClient:
        return make_async_client(self.url, self.key, input_validation=self.input_validation)


@app.command("batch", epilog=EXIT_CODES_HELP)
def batch_command(
    file: Annotated[
        str,
        typer.Argument(help="JSONL: one input object per line; a path or a URL (s3://, gs://, https://)."),
    ],
    model: Annotated[str, typer.Option("--model", "-m", help="The model every line runs on, owner/name.")],
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, max=64, help="Predictions at a time.")
    ] = 4,
    out: Annotated[
        str,
        typer.Option(
            "--out", "-o", help="Folder for the outputs, or a URL prefix (s3://bucket/run/: one object each)."
        ),
    ] = ".",
    journal_path: Annotated[
        str | None,
        typer.Option(
            "--journal",
            help="SQLite journal (default: FILE.journal.sqlite next to FILE; "
            "FILE.shard-K-of-N.journal.sqlite with --shard), or a postgresql:// URL that any number of "
            "workers on any machines share.",
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.001, help="Deadline of each prediction, in seconds.")
    ] = 300.0,
    hold_creates: Annotated[
        Literal["auto", "on", "off"],
        typer.Option(
            "--hold-creates",
            metavar="auto|on|off",
            help="auto: hold each create open in sync mode (no polling) when the API's list route can "
            "find a create lost to a crash; on: always (a crash mid-hold then leaves lines unknown where "
            "it cannot); off: never (each id is journaled the moment its create answers).",
        ),
    ] = "auto",
    wait: Annotated[
        int,
        typer.Option("--wait", min=0, max=60, help="Sync-mode seconds per held create (0: the default 60)."),
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
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            help="Run shard K of N (e.g. 2/4): the lines whose content hashes to it, with a journal of "
            "its own. Run every K from 1 to N, on any machines, for the whole file.",
        ),
    ] = None,
    worker_id: Annotated[
        str | None,
        typer.Option("--worker-id", help="This worker's name in the journal (default: host:pid)."),
    ] = None,
    as_json: JsonOption = False,
    base_url: BaseUrlOption = None,
    emulator: EmulatorOption = False,
    validate: ValidateOption = "warn",
) -> None:
    """Run one prediction per JSONL line; re-running the same command resumes after any crash.

    Finished lines are skipped, created-but-unfinished ones are resumed by id (never created again),
    the rest are created. A line whose create was sent but never answered is reported as unknown.
    """
    with cli_errors(), terminate_as_interrupt():
        endpoint, relay = _Endpoint(validate), ProgressRelay()
        try:
            batch = Batch(
                file,
                client=endpoint.client,
                model=model,
                journal=journal_path,
                out=out,
                concurrency=concurrency,
                timeout=timeout,
                hold_creates="auto" if hold_creates == "auto" else hold_creates == "on",
                wait=wait or None,
                retry_failed=retry_failed,
                retry_unknown=retry_unknown,
                retry_lines=retry_unknown_lines or (),
                shard=shard,
                worker_id=worker_id,
                describe_error=describe_error,
                on_progress=relay,
                input_validation=validate,
            )
            batch.prepare()
        except (JournalError, ValueError) as exc:  # options, inputs, journal: all before any request
            raise CliUsageError(str(exc)) from None
        try:
            report = _execute(batch, endpoint, relay, base_url, emulator)
        finally:
            batch.close()
        report_stop(report)
        if as_json:
            json_report(report)
        else:
            summary(report, out_console())
        code = exit_code(report)
    raise typer.Exit(code)


def _execute(
    batch: Batch, endpoint: _Endpoint, relay: ProgressRelay, base_url: str | None, emulator: bool
) -> BatchReport:
    """Run what the plan needs (nothing at all when every line is settled) and return the report.
    Unknown lines alone still make a run: it looks for their lost creates through the list route
    first (a crash during held creates leaves several), and resumes the ones it finds."""
    plan = batch.prepare()
    console = err_console()
    journal = batch.journal.location if batch.journal else ""
    line = plan_line(journal, plan)
    if line:
        console.print(line, markup=False, soft_wrap=True)
    if not plan.todo and not plan.unknown:
        return batch.status()
    with connection(base_url, emulator) as (url, key):
        endpoint.url, endpoint.key = url, key
        with progress_bar(console, plan) as bar:
            relay.bar = bar
            try:
                return batch.run()
            except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (how schedulers stop jobs)
                bar.stop()
                report_interrupt(batch.report, interrupt_name(exc))
                raise typer.Exit(interrupt_exit_code(exc)) from None
