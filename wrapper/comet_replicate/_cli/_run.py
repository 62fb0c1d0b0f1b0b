"""``run``: create one prediction, wait with a live display, download the outputs, print their paths."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from .._inputs import DEFAULT_MAX_DATA_URL_BYTES, prepare_input, split_model
from ._app import EXIT_CODES_HELP, app
from ._client import (
    BaseUrlOption,
    EmulatorOption,
    JsonOption,
    MaxDataUrlOption,
    OutOption,
    connection,
    make_client,
)
from ._console import err_console, out_console, print_json
from ._errors import cli_errors, describe_error, exit_code_for, interrupt_exit_code, report_error
from ._inputs import build_input
from ._interrupt import create_guard, terminate_as_interrupt
from ._progress import PredictionProgress, status_text
from ._shared import (
    FINISHED,
    cancel_on_interrupt,
    check_out_dir,
    definitely_not_created,
    interrupt_document,
    outputs_document,
    save_after_success,
)

__all__ = ["CLI_SYNC_WAIT", "WAIT_HELP", "run_command"]

#: ``run --wait`` default: seconds the server may hold the create open (the library's default is 60).
CLI_SYNC_WAIT = 5

WAIT_HELP = (
    "Seconds the server may hold the create open for the result (sync mode; 0: poll from the "
    "start). 5 here, 60 in the library: the id and live progress show sooner, and a Ctrl-C during "
    "the create (which waits for the id, to cancel the prediction) stops within 5 s."
)


@app.command("run", epilog=EXIT_CODES_HELP)
def run_command(
    model: Annotated[
        str, typer.Argument(metavar="MODEL", help="The model, owner/name (see `comet-replicate models`).")
    ],
    prompt: Annotated[
        str | None, typer.Option("--prompt", "-p", metavar="TEXT", help="Sets input.prompt.")
    ] = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            "-i",
            metavar="KEY=VALUE",
            help="An input field, key=value, typed by the model's schema (numbers, booleans, JSON arrays); "
            "repeat for more fields.",
        ),
    ] = None,
    input_file: Annotated[
        Path | None,
        typer.Option(
            "--input-file", metavar="FILE", help="A JSON object of inputs; --prompt and -i override it."
        ),
    ] = None,
    wait: Annotated[
        int,
        typer.Option("--wait", min=0, max=60, metavar="SECONDS", help=WAIT_HELP),
    ] = CLI_SYNC_WAIT,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=0.001,
            metavar="SECONDS",
            help="Total deadline in seconds; then the prediction is canceled and the command exits 4 "
            "with its id.",
        ),
    ] = 300.0,
    out: OutOption = Path("."),
    as_json: JsonOption = False,
    base_url: BaseUrlOption = None,
    emulator: EmulatorOption = False,
    max_data_url_bytes: MaxDataUrlOption = DEFAULT_MAX_DATA_URL_BYTES,
) -> None:
    """Create a prediction, wait for it with a live display, download its outputs and print their paths.

    Ctrl-C or SIGTERM cancels the prediction (unless it already finished), prints its id and exits
    130 or 143; during the create it first waits for the create's answer, so that the prediction can
    be named (a second one stops at once).
    """
    with cli_errors(), terminate_as_interrupt():
        value = build_input(model, prompt=prompt, assignments=inputs or [], input_file=input_file)
        split_model(model)
        prepare_input(
            model, value, max_data_url_bytes=max_data_url_bytes
        )  # bad input: one line naming the field, before any display or request
        check_out_dir(out)  # an --out that cannot hold the outputs is refused before anything is paid for
        progress = PredictionProgress(model)
        with (
            connection(base_url, emulator) as (url, key),
            make_client(url, key, on_poll=progress.on_poll, max_data_url_bytes=max_data_url_bytes) as client,
        ):
            started = time.monotonic()

            def on_created(prediction: Any) -> None:
                progress.on_created(prediction)
                # An interrupt deferred during the create is raised here, id known (or after the
                # call, when the answer is already final and there is nothing left to cancel).
                guard.created(finished=progress.status in FINISHED)

            try:
                with progress.live(err_console()), create_guard() as guard:
                    try:
                        outputs = client.run(
                            model,
                            value,
                            timeout=timeout,
                            wait=wait or None,
                            on_created=on_created,
                            on_update=progress.on_update,
                        )
                        if guard.pending is not None:
                            raise guard.interrupt()
                    except KeyboardInterrupt:
                        progress.finish("interrupted")
                        raise
                    except Exception as exc:
                        if guard.pending is not None:
                            progress.finish("interrupted")
                            raise guard.interrupt() from exc
                        last = getattr(exc, "prediction", None)
                        if last is not None:
                            progress.status = status_text(last)
                        progress.finish()
                        raise
            except KeyboardInterrupt as exc:
                status = cancel_on_interrupt(client, progress.prediction_id, progress.status, exc)
                if as_json:
                    base = {"id": progress.prediction_id, "model": model, "status": progress.status}
                    print_json(interrupt_document(base, status, exc))
                raise typer.Exit(interrupt_exit_code(exc)) from None
            except Exception as exc:
                if as_json:
                    _print_failure_json(model, progress, exc)
                report_error(exc)
                known_id = progress.prediction_id or getattr(exc, "prediction_id", None)
                if known_id is None and not definitely_not_created(exc):
                    sys.stderr.write(
                        "warning: the create request may have reached the server before the failure; "
                        "a prediction may exist without its id being known (check before running again)\n"
                    )
                raise typer.Exit(exit_code_for(exc)) from None
            document: dict[str, Any] = {
                "id": progress.prediction_id,
                "model": model,
                "status": progress.status,
                "elapsed_s": round(time.monotonic() - started, 3),
                "polls": progress.polls,
            }
            paths = save_after_success(outputs, out, document=document, as_json=as_json)
        if as_json:
            print_json({**document, "outputs": outputs_document(outputs, paths)})
        else:
            console = out_console()
            for path in paths:
                console.print(str(path), markup=False)


def _print_failure_json(model: str, progress: PredictionProgress, exc: BaseException) -> None:
    document: dict[str, Any] = {
        "id": progress.prediction_id,
        "model": model,
        "status": progress.status,
        "error": describe_error(exc),
        "exit_code": int(exit_code_for(exc)),
    }
    print_json(document)
