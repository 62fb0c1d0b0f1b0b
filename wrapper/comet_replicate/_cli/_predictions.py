"""``get ID``, ``wait ID`` and ``cancel ID``: one existing prediction, by its id."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ._app import EXIT_CODES_HELP, app
from ._client import BaseUrlOption, JsonOption, OutOption, connection, make_client
from ._console import err_console, out_console, print_json
from ._errors import cli_errors, describe_error, exit_code_for, interrupt_exit_code, redact, report_error
from ._interrupt import terminate_as_interrupt
from ._progress import PredictionProgress, last_log_line, status_text
from ._shared import (
    cancel_on_interrupt,
    cancel_outcome,
    check_out_dir,
    interrupt_document,
    outputs_document,
    prediction_document,
    save_after_success,
)

__all__ = ["cancel_command", "get_command", "wait_command"]

IdArgument = Annotated[
    str, typer.Argument(metavar="ID", help="The prediction id (printed by `run`, stored by `batch`).")
]


def _summary(prediction: Any) -> Table:
    """The prediction as a two-column grid; every value is server text, so the key is redacted."""
    rows = [("id", str(prediction.id)), ("model", str(prediction.model)), ("status", status_text(prediction))]
    for name in ("created_at", "started_at", "completed_at"):
        value = getattr(prediction, name, None)
        if value:
            rows.append((name, str(value)))
    error = getattr(prediction, "error", None)
    if isinstance(error, str) and error:
        rows.append(("error", error))
    output = prediction.output
    urls = output if isinstance(output, list) else [output] if isinstance(output, str) else []
    rows.extend(("output", str(url)) for url in urls)
    log = last_log_line(prediction)
    if log:
        rows.append(("last log", log))
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in rows:
        table.add_row(name, redact(value))
    return table


@app.command("get", epilog=EXIT_CODES_HELP)
def get_command(
    prediction_id: IdArgument, as_json: JsonOption = False, base_url: BaseUrlOption = None
) -> None:
    """Show a prediction's current state (exit 0 whatever its status: the query worked)."""
    with cli_errors(), connection(base_url, False) as (url, key), make_client(url, key) as client:
        prediction = client.predictions.get(prediction_id)
        if as_json:
            print_json(prediction_document(prediction))
        else:
            out_console().print(_summary(prediction))


@app.command("cancel", epilog=EXIT_CODES_HELP)
def cancel_command(
    prediction_id: IdArgument, as_json: JsonOption = False, base_url: BaseUrlOption = None
) -> None:
    """Ask the server to cancel a prediction and show the state it answers with."""
    with cli_errors(), connection(base_url, False) as (url, key), make_client(url, key) as client:
        prediction = client.predictions.cancel(prediction_id)
        if as_json:
            print_json(prediction_document(prediction))
        else:
            outcome = cancel_outcome(str(prediction.id), status_text(prediction))
            out_console().print(redact(outcome), markup=False)


@app.command("wait", epilog=EXIT_CODES_HELP)
def wait_command(
    prediction_id: IdArgument,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=0.001,
            metavar="SECONDS",
            help="Total deadline in seconds; then exit 4 (the prediction runs on).",
        ),
    ] = 300.0,
    out: OutOption = Path("."),
    as_json: JsonOption = False,
    base_url: BaseUrlOption = None,
) -> None:
    """Wait for an existing prediction with a live display, then download its outputs.

    Exit 1 if it failed, was canceled or aborted; 4 when the deadline passes (it keeps running).
    Ctrl-C or SIGTERM cancels it, prints its id and exits 130 or 143.
    """
    progress = PredictionProgress(None, prediction_id=prediction_id)
    with (
        cli_errors(),
        terminate_as_interrupt(),
        connection(base_url, False) as (url, key),
    ):
        check_out_dir(out)
        with make_client(url, key, on_poll=progress.on_poll) as client:
            try:
                with progress.live(err_console()):
                    try:
                        outputs = client.resume(prediction_id, timeout=timeout, on_update=progress.on_update)
                    except BaseException as exc:
                        last = getattr(exc, "prediction", None)
                        if last is not None:
                            progress.status = status_text(last)
                        progress.finish("interrupted" if isinstance(exc, KeyboardInterrupt) else "")
                        raise
            except KeyboardInterrupt as exc:
                status = cancel_on_interrupt(client, prediction_id, progress.status, exc)
                if as_json:
                    base = {"id": prediction_id, "status": progress.status}
                    print_json(interrupt_document(base, status, exc))
                raise typer.Exit(interrupt_exit_code(exc)) from None
            except Exception as exc:
                if as_json:
                    print_json(
                        {
                            "id": prediction_id,
                            "status": progress.status,
                            "error": describe_error(exc),
                            "exit_code": int(exit_code_for(exc)),
                        }
                    )
                report_error(exc)
                raise typer.Exit(exit_code_for(exc)) from None
            document: dict[str, Any] = {
                "id": prediction_id,
                "status": progress.status,
                "polls": progress.polls,
            }
            paths = save_after_success(outputs, out, document=document, as_json=as_json)
        if as_json:
            print_json({**document, "outputs": outputs_document(outputs, paths)})
        else:
            console = out_console()
            for path in paths:
                console.print(str(path), markup=False)
