"""A create that reached the server but whose answer was lost ends in CreateOutcomeUnknown (issue 12 item 6).

Against the emulator on a real socket: a 524 page or a dropped connection strikes *after* the prediction
was created, so the server holds a paid prediction the client never heard of. The client must not
create again, and must say so with the model, the input's hash and when it sent the request.
Reconciliation through the list route is off here (tests/wrapper/test_reconcile_emulator.py covers it).
"""

from __future__ import annotations

import pytest
from comet_replicate import Client, CreateOutcomeUnknown
from comet_replicate._inputs import input_sha256, prepare_input
from comet_replicate_emulator import EmulatorConfig, Faults, serve

SCHNELL = "black-forest-labs/flux-schnell"
TOKEN = "r8_test_unknown_create"


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Faults(error_524=1.0, operations=frozenset({"create"}), after_create=1.0), "524"),
        (Faults(drop=1.0, operations=frozenset({"create"}), after_create=1.0), "drop"),
    ],
    ids=["524-html", "dropped-connection"],
)
def test_a_create_lost_after_the_server_acted_is_an_unknown_outcome_never_a_second_create(
    fault: Faults, kind: str
) -> None:
    config = EmulatorConfig(token=TOKEN, speed=50.0, seed=1, faults=fault, validate_responses=True)
    with (
        serve(config) as server,
        Client(
            TOKEN, base_url=server.cometapi_base_url, max_retries=3, reconcile_unknown_creates=False
        ) as client,
    ):
        with pytest.raises(CreateOutcomeUnknown) as caught:
            client.run(SCHNELL, {"prompt": "a lighthouse"}, timeout=30)
        stats = server.stats()
    error = caught.value
    assert len(stats["prediction_ids"]) == 1  # the server made (and would bill) exactly one prediction
    assert sum(stats["requests"]["create"].values()) == 1  # and the client never sent a second create
    assert error.model == SCHNELL
    assert error.input_sha256 == input_sha256(prepare_input(SCHNELL, {"prompt": "a lighthouse"}))
    assert error.sent_at > 0
    assert "never blindly retry" in str(error) or "before creating again" in str(error)
