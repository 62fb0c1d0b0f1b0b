"""``models`` and ``models MODEL``: the contract's FLUX models and each input field's rules."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from ._app import EXIT_CODES_HELP, app
from ._client import JsonOption
from ._console import out_console, print_json
from ._errors import CliUsageError, cli_errors
from ._schema import FieldInfo, ModelInfo, known_models, model_info

__all__ = ["WIDE_TABLE_COLUMNS", "models_command"]

#: From this console width on, ``models MODEL`` shows one line per field in seven columns; below it,
#: each field's details share one column (field names never wrap in either layout).
WIDE_TABLE_COLUMNS = 120


@app.command("models", epilog=EXIT_CODES_HELP)
def models_command(
    model: Annotated[
        str | None,
        typer.Argument(metavar="MODEL", help="owner/name of a model to describe (omit to list all)."),
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
    console = out_console()
    title = f"{info.name} input ({info.input_schema_name}); output: {info.output_text}"
    table = _wide_table(title, info) if console.width >= WIDE_TABLE_COLUMNS else _narrow_table(title, info)
    console.print(table)
    if info.description:
        console.print(info.description)


def _wide_table(title: str, info: ModelInfo) -> Table:
    """One row per field, one column per fact (wide terminals and pipes)."""
    table = Table(title=title)
    table.add_column("field", no_wrap=True)
    for column in ("type", "required", "default", "allowed values", "range", "description"):
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
    return table


def _narrow_table(title: str, info: ModelInfo) -> Table:
    """The field name, then everything else about it in one column that wraps at word boundaries."""
    table = Table(title=title, box=box.SIMPLE_HEAD, show_lines=True)
    table.add_column("field", no_wrap=True, style="bold")
    table.add_column("type, default, rules and description", overflow="fold", ratio=1)
    for f in info.fields:
        table.add_row(f.name, _details(f))
    return table


def _details(field: FieldInfo) -> Text:
    """``type · required · default X``, then the allowed values, the range and the description."""
    head = Text(field.type_text, style="cyan")
    if field.required:
        head.append(" · required", style="bold")
    if field.default_text:
        head.append(f" · default {field.default_text}")
    lines = [head]
    if field.allowed_text:
        lines.append(Text(f"one of: {field.allowed_text}"))
    if field.range_text:
        lines.append(Text(f"range: {field.range_text}"))
    if field.description:
        lines.append(Text(field.description, style="dim"))
    return Text("\n").join(lines)
