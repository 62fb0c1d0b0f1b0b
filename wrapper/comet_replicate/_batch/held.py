"""What a batch asks of its AsyncClient beyond the public API: ``run``'s own create (held in sync
mode in one of the client's held-create slots while one is free), a probe of the list route, and the
output files of a prediction already in hand. Kept here, in one place, because they reach into the
client's state and driver (this package's own internals, never a dependency's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.reconcile import list_route_answers
from ..core.wait import deadline_for
from ..core.wait import held_create as held_create_flow

if TYPE_CHECKING:
    from comet_replicate_api.models import Prediction

    from .._client import AsyncClient
    from .._files import FileOutput

__all__ = ["can_reconcile", "held_create", "prediction_files"]


async def held_create(
    client: AsyncClient, model: str, input: object, wait: int, timeout: float | None
) -> Prediction:
    """Create in sync mode for at most ``wait`` s (never past ``timeout``) in a held-create slot, or
    without waiting when none is free: the prediction as the create answered."""
    st = client._state
    return await client._driver.run(
        held_create_flow(st, model, input, wait=wait, deadline=deadline_for(st, timeout))
    )


async def can_reconcile(client: AsyncClient) -> bool:
    """Whether a lost create could be found again: the client reconciles and the list route answers."""
    if not client.reconcile_unknown_creates:
        return False
    return await client._driver.run(list_route_answers(client._state))


def prediction_files(client: AsyncClient, prediction: Prediction) -> list[FileOutput]:
    """The output files of a succeeded prediction, downloadable through the client."""
    return client._files(prediction)
