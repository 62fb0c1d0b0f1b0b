"""schemathesis against the emulator: every default check, negative data, auth, and stateful links."""

from __future__ import annotations

import hypothesis
import pytest

schemathesis = pytest.importorskip("schemathesis")

from comet_replicate_emulator import EmulatorConfig, create_app  # noqa: E402
from schemathesis.config._checks import PositiveDataAcceptanceConfig  # noqa: E402

TOKEN = "sk-schemathesis"
APP = create_app(EmulatorConfig(token=TOKEN, speed=1000.0, seed=1, validate_responses=True))

schema = schemathesis.openapi.from_asgi("/openapi.yaml", APP)
schema.config.update(headers={"Authorization": f"Bearer {TOKEN}"})
schema.config.generation.update(max_examples=25)
# The create body's `input` is an open object in the spec; each known model's own input schema
# (x-models) is stricter, so a body that is "positive" for PredictionRequest can still earn a 422.
schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
    expected_statuses=["2xx", "401", "403", "404", "422"]
)


@schema.parametrize()
@hypothesis.settings(max_examples=25, deadline=None)
def test_every_operation_passes_all_default_checks(case: schemathesis.Case) -> None:
    case.call_and_validate()


EmulatorStateMachine = schema.as_state_machine()
EmulatorStateMachine.TestCase.settings = hypothesis.settings(
    max_examples=15, stateful_step_count=5, deadline=None
)


class TestStatefulCreateGetCancel(EmulatorStateMachine.TestCase):  # type: ignore[name-defined,misc]
    """Create → get → cancel through the spec's links, with every check on each response."""
