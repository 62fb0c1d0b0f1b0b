"""Held creates in a batch: ``run``'s own create (held in sync mode in one of the client's
held-create slots while one is free), the probe of the list route that decides whether a batch may
hold, the lookup of a create still held when the run stops (or left ``creating`` by a killed run),
and the output files of a prediction already in hand. The client calls are kept here, in one place,
because they reach into the client's state and driver (this package's own internals, never a
dependency's).
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

from .._errors import CometReplicateError, CreateOutcomeUnknown
from .._inputs import input_sha256, prepare_input
from ..core.reconcile import list_route_answers
from ..core.wait import deadline_for
from ..core.wait import held_create as held_create_flow
from .items import BatchItem

if TYPE_CHECKING:
    from comet_replicate_api.models import Prediction

    from .._client import AsyncClient
    from .._files import FileOutput

__all__ = [
    "STOPPED",
    "can_reconcile",
    "find_held",
    "held_create",
    "lookup_verdict",
    "lost_create",
    "prediction_files",
]

_log = logging.getLogger("comet_replicate.batch")
STOPPED = "the run stopped before the create answered"


async def held_create(
    client: AsyncClient, model: str, input: object, wait: int, timeout: float | None
) -> Prediction:
    """Create in sync mode for at most ``wait`` s (never past ``timeout``) in a held-create slot, or
    without waiting when none is free: the prediction as the create answered. Run it in a task of
    its own that is never cancelled (``guarded``: the driver adds no task and shield of its own);
    the caller shields it and decides how long a stop waits for the answer (``line.LineWork``)."""
    st = client._state
    flow = held_create_flow(st, model, input, wait=wait, deadline=deadline_for(st, timeout))
    return await client._driver.run(flow, guarded=True)


async def can_reconcile(client: AsyncClient) -> bool:
    """Whether a lost create could be found again: the client reconciles and the list route answers."""
    if not client.reconcile_unknown_creates:
        return False
    return await client._driver.run(list_route_answers(client._state))


def prediction_files(client: AsyncClient, prediction: Prediction) -> list[FileOutput]:
    """The output files of a succeeded prediction, downloadable through the client."""
    return client._files(prediction)


def lookup_verdict(error: CometReplicateError) -> str:
    """What the lookup concluded, in a few words (the candidates named)."""
    if not isinstance(error, CreateOutcomeUnknown) or error.reconciliation is None:
        return str(error)
    named = f"; candidates: {', '.join(error.candidate_ids)}" if error.candidate_ids else ""
    return f"{error.reconciliation}{named}"


def lost_create(item: BatchItem, sent_at: float, reason: str) -> CreateOutcomeUnknown:
    """The error the create would have raised: its hash is of the input as the create prepared it
    (the data-URL cap is not re-applied: a create past the client's cap was never sent)."""
    prepared = prepare_input(item.model, dict(item.input), validation="off", max_data_url_bytes=sys.maxsize)
    digest = input_sha256(prepared)
    return CreateOutcomeUnknown(item.model, input_sha256=digest, sent_at=sent_at, reason=reason)


async def find_held(client: AsyncClient, item: BatchItem, sent_at: float) -> Any | None:
    """The prediction of a create still held open when the run stops, found through the list route
    (so it can be canceled and journaled now), or None when it is not (yet) listed or not alone."""
    try:
        return await client.predictions.reconcile(lost_create(item, sent_at, STOPPED))
    except CometReplicateError as exc:
        _log.info("line %s: its held create is not found by listing yet: %s", item.line, lookup_verdict(exc))
        return None
