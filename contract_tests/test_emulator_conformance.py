"""The emulator conforms to openapi.yaml: schemathesis in process (ASGI) and its CLI on a real socket.

All default checks run (negative data, ignored auth, missing auth header, unsupported methods, status
and content-type conformance, response schemas), stateful create → get → cancel through the spec's
links, plus one stricter check of our own: the emulator is ours, so every prediction `status` it
emits must be one the spec lists (the spec lets unknown values parse, and the wrapper fails closed
on them with UnexpectedStatus).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from comet_replicate_emulator import EmulatorConfig, create_app, serve
from schemathesis.config._checks import PositiveDataAcceptanceConfig

from contract_tests import schemathesis_hooks
from contract_tests._spec import (
    ROOT,
    SPEC,
    SPEC_PATH,
    cancel_after_values,
    documented_cancel_after,
    response_errors,
)

TOKEN = "sk-contract-emulator"
DOCUMENTED_STATUSES = frozenset(SPEC["components"]["schemas"]["PredictionStatus"]["enum"])
# The create body's `input` is open in PredictionRequest; a model's x-models schema is stricter, so a
# body that is "positive" for the operation can still earn a 422 (and an unknown model a 404).
POSITIVE_STATUSES = ["2xx", "401", "403", "404", "422"]
APP = create_app(EmulatorConfig(token=TOKEN, speed=1000.0, seed=4))

schema = schemathesis.openapi.from_asgi("/openapi.yaml", APP)
schema.config.update(headers={"Authorization": f"Bearer {TOKEN}"})
schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
    expected_statuses=POSITIVE_STATUSES
)


def documented_status(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    """A 2xx prediction from our own emulator carries a status the spec lists."""
    if not 200 <= response.status_code < 300:
        return None
    body = response.json()
    if isinstance(body, dict) and "status" in body:
        assert body["status"] in DOCUMENTED_STATUSES, (
            f"status {body['status']!r} is not in PredictionStatus {sorted(DOCUMENTED_STATUSES)}"
        )
    return None


@schema.parametrize()
@hypothesis.settings(max_examples=20, deadline=None)
def test_emulator_passes_every_default_check_for_every_operation(case: schemathesis.Case) -> None:
    case.call_and_validate(additional_checks=[documented_status])


EmulatorStateMachine = schema.as_state_machine()


class EmulatorLinks(EmulatorStateMachine):  # type: ignore[misc,valid-type]
    def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
        case.validate_response(response, additional_checks=[documented_status])


TestEmulatorStatefulThroughLinks = EmulatorLinks.TestCase
TestEmulatorStatefulThroughLinks.settings = hypothesis.settings(
    max_examples=12, stateful_step_count=5, deadline=None, derandomize=True
)


def test_documented_status_check_rejects_an_undocumented_status() -> None:
    """The extra check can fail (a renamed status would otherwise pass the open `anyOf`)."""
    import httpx

    op = schema["/models/{model_owner}/{model_name}/predictions"]["POST"]
    case = op.Case(path_parameters={"model_owner": "a", "model_name": "b"}, body={"input": {}})
    example = dict(SPEC["components"]["examples"]["PredictionStarting"]["value"], status="queued")
    request = httpx.Request("POST", "http://emulator.test/replicate/v1/models/a/b/predictions")
    raw = httpx.Response(201, json=example, request=request)
    raw.elapsed = timedelta(0)  # a hand-made response has no timing; schemathesis reads it
    response = schemathesis.Response.from_any(raw)
    with pytest.raises(AssertionError, match="queued"):
        documented_status(None, response, case)


def _schemathesis_cli() -> list[str]:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    assert exe, "the schemathesis CLI is not installed in this environment"
    return [exe]


@pytest.mark.slow
def test_schemathesis_cli_against_the_emulator_on_a_real_socket(tmp_path: Path) -> None:
    """`schemathesis run openapi.yaml --url …/replicate/v1` exits 0 against `serve(...)` (bounded)."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f"[checks.positive_data_acceptance]\nexpected-statuses = {POSITIVE_STATUSES!r}\n".replace("'", '"'),
        encoding="utf-8",
    )
    # The same hooks as in process (Cancel-After in its documented form), imported from the repo.
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": schemathesis_hooks.__name__,
        "PYTHONPATH": pythonpath,
        "NO_COLOR": "1",
    }
    # Bounded by `-n` (examples per operation) and the subprocess timeout. `--max-time` is not used:
    # it makes the fuzzing and stateful phases repeat until the budget is spent (slower, and no
    # longer deterministic under `--generation-deterministic`).
    with serve(EmulatorConfig(token=TOKEN, speed=1000.0, seed=5), port=0) as server:
        proc = subprocess.run(
            [
                *_schemathesis_cli(),
                "--config-file",
                str(config),
                "run",
                str(SPEC_PATH),
                "--url",
                server.cometapi_base_url,
                "-H",
                f"Authorization: Bearer {TOKEN}",
                "-n",
                "10",
                "--seed",
                "1",
                "--generation-deterministic",
                "--request-timeout",
                "10",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        stats = server.stats()
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert "Stateful" in output and "API Links" in output, output[-3000:]
    # It really talked to the emulator over the socket, through every operation.
    assert stats["predictions_created"] > 0, stats


async def test_emulator_answers_a_huge_cancel_after_without_a_server_error() -> None:
    """`Cancel-After: 2087638038333003207432055m3s` matches the spec's pattern; the answer must be
    a documented, non-5xx status. Found by the schemathesis CLI run above (the emulator answered 500
    from an overflow in datetime.fromtimestamp); kept as a regression test."""
    import httpx

    transport = httpx.ASGITransport(app=APP)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator.test") as http:
        response = await http.post(
            "/replicate/v1/models/black-forest-labs/flux-schnell/predictions",
            headers={"Authorization": f"Bearer {TOKEN}", "Cancel-After": "2087638038333003207432055m3s"},
            json={"input": {"prompt": "A paper boat"}},
        )
    assert response.status_code < 500, response.text[:300]
    assert not response_errors(response.request, response)


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("5m", "5m"), ("90", "90"), ("1h30m45s", "1h30m45s"), ("!1@j", "5m"), ("3s", "5m"), ("", "")],
)
def test_the_cancel_after_hook_keeps_the_documented_form_and_leaves_invalid_cases_alone(
    sent: str, kept: str
) -> None:
    """Positive cases get a documented value; the empty string (the schema's own negative case) stays."""
    headers = schemathesis_hooks.map_headers(None, {"Cancel-After": sent, "Prefer": "wait"})
    assert headers == {"Cancel-After": kept, "Prefer": "wait"}


@hypothesis.given(value=cancel_after_values())
def test_the_suites_cancel_after_values_are_all_in_the_documented_form(value: str) -> None:
    assert documented_cancel_after(value)
