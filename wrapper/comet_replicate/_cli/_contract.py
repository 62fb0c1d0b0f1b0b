"""``contract-check`` and ``record``: the contract suite's live mode and recorder, for users' CI.

``contract-check`` probes an endpoint (one flux-schnell prediction at most) and exits 3 when any
response breaks openapi.yaml; ``record`` runs one prediction and writes every exchange as a recording
(key redacted) in the format of ``contract_tests/recordings/``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ._app import app
from ._client import BaseUrlOption, EmulatorOption, JsonOption, connection
from ._errors import ExitCode, cli_errors, redact

__all__ = ["contract_check_command", "record_command"]


@app.command("contract-check")
def contract_check_command(
    base_url: BaseUrlOption = None,
    emulator: EmulatorOption = False,
    model: Annotated[str, typer.Option("--model", help="The model of the one prediction created.")] = (
        "black-forest-labs/flux-schnell"
    ),
    no_create: Annotated[
        bool, typer.Option("--no-create", help="Only the free probes: no prediction is created.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1.0, help="Seconds to wait for the prediction to finish.")
    ] = 180.0,
    as_json: JsonOption = False,
) -> None:
    """Check a live endpoint against openapi.yaml; exit 3 and list the violations if any response breaks it.

    Probes: a poll of an unknown id, a poll with an invalid key, and (unless --no-create) one
    prediction created with `Prefer: wait=5` and polled to the end. Every response is validated:
    documented status and content type, body schema, listed status values, model output shape.
    """
    with cli_errors():
        from .._inputs import split_model
        from ..contract import DEFAULT_CHECK_INPUT, DEFAULT_CHECK_MODEL, contract_check

        split_model(model)  # a malformed model is a usage error (exit 2), found before any request
        # The default input is flux-schnell's cheapest; any other model gets just a prompt.
        check_input = (
            dict(DEFAULT_CHECK_INPUT)
            if model == DEFAULT_CHECK_MODEL
            else {"prompt": DEFAULT_CHECK_INPUT["prompt"]}
        )
        with connection(base_url, emulator) as (url, key):
            report = contract_check(
                url, key, model=model, input=check_input, timeout=timeout, create=not no_create
            )
        if as_json:
            typer.echo(redact(json.dumps(report.to_dict(), indent=2)))
        else:
            typer.echo(f"contract-check against {report.base_url}")
            for line in report.exchanges:
                typer.echo(f"  {line}")
            for note in report.notes:
                typer.echo(redact(f"  note: {note}"))
            if report.violations:
                typer.echo(f"{len(report.violations)} violation(s) of openapi.yaml:")
                for violation in report.violations:
                    typer.echo(redact(f"  - {violation}"))
            else:
                typer.echo(f"ok: {len(report.exchanges)} responses, no violation of openapi.yaml")
    if not report.exchanges:
        sys.stderr.write("contract-check: no response was received\n")
        raise typer.Exit(ExitCode.API)
    if report.violations:
        raise typer.Exit(ExitCode.API)


@app.command("record")
def record_command(
    model: Annotated[str, typer.Argument(help="The model, owner/name.")],
    prompt: Annotated[str | None, typer.Option("--prompt", "-p", help="Sets input.prompt.")] = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option("--input", "-i", help="An input field, key=value (typed by the model's schema)."),
    ] = None,
    input_file: Annotated[
        Path | None,
        typer.Option("--input-file", help="A JSON object of inputs; --prompt and -i override it."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the recordings.")] = Path(
        "recordings"
    ),
    prefix: Annotated[str, typer.Option("--prefix", help="Prefix of the recording file names.")] = "",
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.001, help="Total deadline in seconds.")
    ] = 300.0,
    base_url: BaseUrlOption = None,
    emulator: EmulatorOption = False,
) -> None:
    """Run one prediction and write every API exchange as a recording (the key is redacted).

    This is how recordings are refreshed when the API changes: record, compare with
    contract_tests/recordings/, update openapi.yaml, regenerate, run the contract suite.
    """
    with cli_errors():
        from .. import Client
        from .._http import api_client, resolve_base_url
        from ..contract import Recorder
        from ._inputs import build_input

        model_input = build_input(model, prompt=prompt, assignments=inputs or (), input_file=input_file)
        with connection(base_url, emulator) as (url, key):
            resolved = resolve_base_url(url)
            recorder = Recorder(out, resolved, key, prefix=prefix)
            http = api_client(event_hooks={"response": [recorder.hook]}, agent="record")
            try:
                with http, Client(key, base_url=resolved, http_client=http) as client:
                    outputs = client.run(model, model_input, timeout=timeout)
            finally:
                for path in recorder.paths:
                    typer.echo(str(path))
        typer.echo(f"{len(recorder.paths)} recordings written to {out} ({len(outputs)} output file(s))")
