"""schemathesis against the emulator: every default check, negative data, auth, and stateful links.

Both route families are exercised: CometAPI's `/replicate/v1` (the spec's first server, served by the
emulator's own /openapi.yaml) and Replicate's `/v1` (the same document with that server).
"""

from __future__ import annotations

import copy

import hypothesis
import schemathesis
from comet_replicate_emulator import EmulatorConfig, create_app
from schemathesis.config._checks import PositiveDataAcceptanceConfig

from tests._spec_helpers import spec

TOKEN = "sk-schemathesis"
APP = create_app(EmulatorConfig(token=TOKEN, speed=1000.0, seed=1, validate_responses=True))


def configure(schema: schemathesis.BaseSchema) -> schemathesis.BaseSchema:
    schema.config.update(headers={"Authorization": f"Bearer {TOKEN}"})
    # The create body's `input` is an open object in the spec; each known model's own input schema
    # (x-models) is stricter, so a body that is "positive" for PredictionRequest can still earn a 422.
    schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=["2xx", "401", "403", "404", "422"]
    )
    return schema


schema = configure(schemathesis.openapi.from_asgi("/openapi.yaml", APP))

_document = copy.deepcopy(spec())
_document["servers"] = [{"url": "/v1"}]
replicate_schema = configure(schemathesis.openapi.from_dict(_document))
replicate_schema.app = APP


@schema.parametrize()
@hypothesis.settings(max_examples=25, deadline=None)
def test_every_operation_passes_all_default_checks(case: schemathesis.Case) -> None:
    case.call_and_validate()


@replicate_schema.parametrize()
@hypothesis.settings(max_examples=10, deadline=None)
def test_replicate_routes_pass_all_default_checks(case: schemathesis.Case) -> None:
    response = case.call_and_validate()
    assert response.request.url.split("/", 3)[3].startswith("v1/")  # not /replicate/v1


EmulatorStateMachine = schema.as_state_machine()
EmulatorStateMachine.TestCase.settings = hypothesis.settings(
    max_examples=15, stateful_step_count=5, deadline=None
)


class TestStatefulCreateGetCancel(EmulatorStateMachine.TestCase):  # type: ignore[name-defined,misc]
    """Create → get → cancel through the spec's links, with every check on each response."""
