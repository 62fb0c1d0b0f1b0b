"""``models`` and ``models MODEL``: the contract's FLUX models and each input field's rules."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from ._app import EXIT_CODES_HELP, app
from ._client import JsonOption
from ._console import out_console, print_json
from ._errors import CliUsageError, cli_errors
from ._schema import known_models, model_info

__all__ = ["models_command"]


@app.command("models", epilog=EXIT_CODES_HELP)
def models_command(
    model: Annotated[
        str | None, typer.Argument(help="owner/name of a model to describe (omit to list all).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List the known FLUX models, or show MODEL's input fields: type, default, allowed values, range."""
    with cli_errors():
        if model is None:
            _list_models(as_json)
        else:
            _describe_model(model, as_json)


def _list_models(as_json: bool) -> None:
    models = known_models()
    if as_json:
        print_json(
            [
                {"model": m.name, "input_schema": m.input_schema_name, "output": m.output_schema_name}
                for m in models.values()
            ]
        )
        return
    table = Table(title="Known FLUX models (from openapi.yaml x-models)")
    table.add_column("model", no_wrap=True)
    table.add_column("input schema")
    table.add_column("output")
    for m in models.values():
        table.add_row(m.name, m.input_schema_name, m.output_text)
    console = out_console()
    console.print(table)
    console.print("Show a model's input fields with: comet-replicate models MODEL")


def _describe_model(model: str, as_json: bool) -> None:
    info = model_info(model)
    if info is None:
        known = ", ".join(known_models())
        raise CliUsageError(f"unknown model {model!r}; known models: {known}")
    if as_json:
        fields: list[dict[str, Any]] = [
            {"name": f.name, "required": f.required, **f.schema} for f in info.fields
        ]
        print_json({"model": info.name, "input_schema": info.input_schema_name, "fields": fields})
        return
    table = Table(title=f"{info.name} input ({info.input_schema_name}); output: {info.output_text}")
    for column in ("field", "type", "required", "default", "allowed values", "range", "description"):
        table.add_column(column, overflow="fold")
    for f in info.fields:
        table.add_row(
            f.name,
            f.type_text,
            "yes" if f.required else "",
            f.default_text,
            f.allowed_text,
            f.range_text,
            f.description,
        )
    console = out_console()
    console.print(table)
    if info.description:
        console.print(info.description)
