"""Lines left ``creating`` by an earlier run (killed between sending a create and reading its
answer), looked for through the API's list route before the run plans them.

Each is matched as the client matches a lost create (model and prepared input exactly, created
since shortly before the journal's ``sent_at``): exactly one match becomes ``created`` with its id
and is resumed by id; several or none leave the line unknown with the lookup's words in its error.
Only a journal of this worker alone is reconciled: on a shared journal a ``creating`` row may belong
to a live worker whose create has not answered yet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._errors import CometReplicateError
from .errors import JournalError
from .held import STOPPED, lookup_verdict, lost_create
from .items import BatchItem
from .journal import Journal, JournalRow, LineState
from .line import status_text
from .results import UNKNOWN_NOTE

if TYPE_CHECKING:  # types only: the clients may import this package
    from .._client import AsyncClient

__all__ = ["reconcile_creating"]

_log = logging.getLogger("comet_replicate.batch")


async def _lookup(client: AsyncClient, item: BatchItem, row: JournalRow) -> Any:
    """The matched prediction, or the error saying why there is none."""
    try:
        return await client.predictions.reconcile(lost_create(item, row.sent_at or 0.0, row.error or STOPPED))
    except CometReplicateError as exc:
        return exc


def _record(journal: Journal, row: JournalRow, found: Any) -> bool:
    """Write one lookup's outcome; True when the line became ``created``."""
    if isinstance(found, CometReplicateError):
        journal.note(
            row.line_no, row.digest, error=f"{UNKNOWN_NOTE} (reconciliation: {lookup_verdict(found)})"
        )
        return False
    journal.mark_created(row.line_no, row.digest, str(found.id), status_text(found))
    _log.warning("line %s: its lost create was found by listing predictions: %s", row.line_no, found.id)
    return True


async def reconcile_creating(client: AsyncClient, journal: Journal, items: Sequence[BatchItem]) -> int:
    """Look up every ``creating`` line of this batch; how many became ``created`` (to be resumed)."""
    if journal.lease_seconds is not None or not client.reconcile_unknown_creates:
        return 0
    by_key = {(item.line, item.digest): item for item in items}
    rows = [
        row
        for row in journal.rows()
        if row.state == LineState.CREATING and row.sent_at is not None and (row.line_no, row.digest) in by_key
    ]
    if not rows:
        return 0
    found = await asyncio.gather(*(_lookup(client, by_key[(row.line_no, row.digest)], row) for row in rows))
    resolved = 0
    for row, outcome in zip(rows, found, strict=True):
        try:
            resolved += _record(journal, row, outcome)
        except JournalError as exc:
            if not isinstance(outcome, CometReplicateError):  # the id must reach the caller
                exc.add_note(f"line {row.line_no}: its lost create was found as prediction {outcome.id}")
            raise
    return resolved
