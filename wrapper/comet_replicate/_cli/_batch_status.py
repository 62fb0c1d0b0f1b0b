"""``batch-status --journal J``: done / running / failed / unknown / pending per worker and overall.

Reads the journal alone (a SQLite file or a ``postgresql://`` URL), during a run or after it, and
changes nothing in it; see :mod:`comet_replicate._batch.status` for what each column counts.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from .._batch.status import CATEGORIES, batch_status
from ._app import EXIT_CODES_HELP, app
from ._client import JsonOption
from ._console import out_console, print_json
from ._errors import cli_errors

__all__ = ["batch_status_command"]


@app.command("batch-status", epilog=EXIT_CODES_HELP)
def batch_status_command(
    journal: Annotated[
        str,
        typer.Option(
            "--journal",
            help="The batch's journal: a SQLite file, or the postgresql:// URL its workers share.",
        ),
    ],
    batch: Annotated[
        str | None,
        typer.Option("--batch", help="Only this batch (the input file's name); default: every batch in it."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show how far a batch is, per worker and in total, from its journal alone (during or after a run)."""
    with cli_errors():
        statuses = batch_status(journal, batch=batch)
        if as_json:
            print_json({"batches": [status.as_dict() for status in statuses]})
            return
        console = out_console()
        if not statuses:
            console.print(
                "the journal holds no lines" + (f" of batch {batch}" if batch else ""), markup=False
            )
            return
        for status in statuses:
            table = Table(title=f"batch {status.batch}")
            table.add_column("worker", overflow="fold")
            for name in (*CATEGORIES, "total"):
                table.add_column(name, justify="right")
            table.add_column("last write (UTC)")
            for worker in status.workers:
                counts = worker.counts.as_dict()
                table.add_row(
                    worker.worker or "(not claimed yet)",
                    *(str(counts[name]) for name in (*CATEGORIES, "total")),
                    worker.last_seen or "",
                )
            totals = status.total.as_dict()
            table.add_row(
                "all workers", *(str(totals[name]) for name in (*CATEGORIES, "total")), "", style="bold"
            )
            console.print(table)
