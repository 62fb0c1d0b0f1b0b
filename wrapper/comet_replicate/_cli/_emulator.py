"""``emulator``: serve the local emulator in the foreground (flags pass through to its own CLI)."""

from __future__ import annotations

import typer

from ._app import app
from ._embedded import import_emulator
from ._errors import cli_errors

__all__ = ["emulator_command"]


@app.command(
    "emulator",
    add_help_option=False,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def emulator_command(ctx: typer.Context) -> None:
    """Serve the local emulator: [--host H] [--port P] [--token T] [fault flags]; --help lists them all.

    Every flag is passed through to ``python -m comet_replicate_emulator``.
    """
    with cli_errors():
        emulator = import_emulator()
        code = emulator.main(list(ctx.args), prog="comet-replicate emulator")
    raise typer.Exit(int(code or 0))
