"""The Typer app every command module registers on, its global options and the process runner."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import typer

from .._version import __version__

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 a prediction failed, was canceled or aborted; 2 usage or input error; "
    "3 API or connection error; 4 timeout; 130 interrupted (Ctrl-C: running predictions are canceled "
    "and their ids printed); 143 the same after SIGTERM (run, wait, batch)."
)


@dataclass
class Settings:
    """Options of the top-level command, shared by every subcommand of one invocation."""

    debug: bool = False


settings = Settings()

app = typer.Typer(
    name="comet-replicate",
    help=(
        "Run CometAPI's Replicate-format FLUX predictions from a terminal: create, wait with a "
        "deadline, download the outputs; batches that resume after a crash without paying twice. "
        "The API key is read from COMETAPI_KEY; the base URL from COMETAPI_BASE_URL or --base-url."
    ),
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"comet-replicate {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks on errors (the API key is always redacted).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Set the options shared by every command (a fresh value on each invocation)."""
    settings.debug = debug


def run_app(application: typer.Typer, argv: Sequence[str] | None) -> int:
    """Run ``application`` like a console script would and return its exit code instead of exiting."""
    settings.debug = False
    try:
        application(args=None if argv is None else list(argv), prog_name="comet-replicate")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code)
        return 1
    return 0
