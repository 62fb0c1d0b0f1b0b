"""The ``comet-replicate`` command line (installed with the ``cli`` extra: Typer + Rich).

Nothing here is imported by ``import comet_replicate``: the console script calls :func:`main`, which
loads Typer, Rich and the command modules on first use and says what to install when they are missing.

Adding a command from another module (how ``contract-check`` and ``record`` plug in):

1. write ``comet_replicate/_cli/_<name>.py`` that does ``from ._app import app`` and decorates a
   function with ``@app.command("<name>")``; report errors with ``._errors.cli_errors()`` (one line on
   stderr, the documented exit codes) and import heavy dependencies inside the function;
2. add ``"_<name>"`` to :data:`COMMAND_MODULES` below.

Each command lives in its own module so that helpers can add commands without touching each other's
files; the order of :data:`COMMAND_MODULES` is the order of ``--help``.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

__all__ = ["COMMAND_MODULES", "build_app", "main"]

#: Modules (relative to this package) whose import registers commands on ``_app.app``.
COMMAND_MODULES: tuple[str, ...] = (
    "_run",
    "_predictions",
    "_batch",
    "_batch_status",
    "_models",
    "_emulator",
    "_contract",
)

_MISSING_EXTRA = (
    "comet-replicate: the command line needs the 'cli' extra (Typer and Rich), which is not installed "
    "({missing}).\nInstall it with:  pip install 'comet-replicate[cli]'   "
    "(or, from a source checkout:  pip install '.[cli,emulator]')"
)


def build_app() -> typer.Typer:
    """Import every command module and return the Typer app they registered on."""
    from . import _app

    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}")
    return _app.app


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the process exit code (see ``comet-replicate --help``)."""
    try:
        import rich  # noqa: F401
        import typer  # noqa: F401
    except ImportError as exc:
        print(_MISSING_EXTRA.format(missing=exc.name or exc), file=sys.stderr)
        return 2
    app = build_app()
    from ._app import run_app

    return run_app(app, argv)
