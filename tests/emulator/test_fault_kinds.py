"""The fault kinds real servers answer with: 402 credit, 524 Cloudflare pages, bare text error bodies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from comet_replicate_emulator import EmulatorConfig, Faults

SCHNELL = "/replicate/v1/models/black-forest-labs/flux-schnell/predictions"
REPLICATE_SCHNELL = "/v1/models/black-forest-labs/flux-schnell/predictions"
BODY = {"input": {"prompt": "x"}}


def stats(api: httpx.AsyncClient) -> dict[str, Any]:
    return api.emulator_app.stats()  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize("path", [SCHNELL, REPLICATE_SCHNELL])
async def test_402_is_replicates_insufficient_credit_problem_and_never_creates(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig], path: str
) -> None:
    api = make_client(make_config(faults=Faults(error_402=1.0, after_create=1.0)))
    response = await api.post(path, json=BODY)
    assert response.status_code == 402
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["title"] == "Insufficient credit" and problem["status"] == 402
    assert problem["detail"].startswith("You have insufficient credit to run this model.")
    recorded = stats(api)
    assert recorded["predictions_created"] == 0
    assert recorded["faults"]["by_timing"] == {"create_before": 1}
    assert recorded["faults"]["by_kind"] == {"error_402": 1}


@pytest.mark.parametrize(
    ("share", "created", "timing"), [(0.0, 0, "create_before"), (1.0, 1, "create_after")]
)
async def test_524_on_create_is_a_cloudflare_page_before_or_after_the_prediction_exists(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    share: float,
    created: int,
    timing: str,
) -> None:
    api = make_client(make_config(faults=Faults(error_524=1.0, after_create=share)))
    response = await api.post(SCHNELL, json=BODY)
    assert response.status_code == 524
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>524: A timeout occurred</title>" in response.text and "Error code 524" in response.text
    recorded = stats(api)
    assert recorded["predictions_created"] == created
    assert recorded["faults"]["by_timing"] == {timing: 1}
    event = recorded["faults"]["events"][0]
    assert event["prediction_id"] == (recorded["prediction_ids"][0] if created else None)


async def test_524_on_get_strikes_before_and_the_next_poll_succeeds(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig]
) -> None:
    api = make_client(make_config(faults=Faults(error_524=0.5, operations=frozenset({"get"}))))
    pid = (await api.post(SCHNELL, json=BODY)).json()["id"]
    statuses = [(await api.get(f"/replicate/v1/predictions/{pid}")).status_code for _ in range(12)]
    assert set(statuses) == {200, 524}
    recorded = stats(api)
    assert recorded["faults"]["by_timing"] == {"get_before": statuses.count(524)}
    assert recorded["requests"]["get"] == {"200": statuses.count(200), "524": statuses.count(524)}


@pytest.mark.parametrize(("kind", "field"), [("error_text", "error"), ("message_text", "message")])
@pytest.mark.parametrize("status", [500, 503])
async def test_bare_text_bodies_carry_only_their_one_field(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    kind: str,
    field: str,
    status: int,
) -> None:
    faults = Faults(**{kind: 1.0}, text_error_status=status, operations=frozenset({"cancel"}))
    api = make_client(make_config(faults=faults))
    pid = (await api.post(SCHNELL, json=BODY)).json()["id"]
    response = await api.post(f"/v1/predictions/{pid}/cancel")
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == [field] and isinstance(body[field], str) and body[field]
    assert stats(api)["faults"]["by_kind"] == {kind: 1}


def test_text_error_status_must_be_one_the_spec_allows_for_every_operation() -> None:
    with pytest.raises(ValueError, match="text_error_status"):
        Faults(error_text=0.1, text_error_status=418)


async def test_new_kinds_off_keep_a_seeds_fault_sequence(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig]
) -> None:
    """New kinds come last in the dice order, so old seeds inject the same faults as before."""
    runs = []
    for extra in ({}, {"error_402": 0.0, "error_524": 0.0, "error_text": 0.0}):
        faults = Faults(error_500=0.3, error_503=0.2, operations=frozenset({"create"}), **extra)
        api = make_client(make_config(faults=faults))
        runs.append([(await api.post(SCHNELL, json=BODY)).status_code for _ in range(20)])
    assert runs[0] == runs[1] and {201, 500, 503} <= set(runs[0])


@pytest.mark.parametrize("kind", ["error_402", "error_524", "error_text", "message_text"])
@pytest.mark.parametrize("operation", ["create", "get", "cancel"])
async def test_every_new_kind_on_every_operation_is_declared_by_the_spec(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    kind: str,
    operation: str,
    checked: Any,
) -> None:
    api = make_client(make_config(faults=Faults(**{kind: 1.0}, operations=frozenset({operation}))))
    pid = "doesnotexist"
    if operation != "create":
        pid = (await api.post(SCHNELL, json=BODY)).json()["id"]
    requests = {
        "create": lambda: api.post(REPLICATE_SCHNELL, json=BODY),
        "get": lambda: api.get(f"/v1/predictions/{pid}"),
        "cancel": lambda: api.post(f"/v1/predictions/{pid}/cancel"),
    }
    response = await requests[operation]()
    expected = {"error_402": 402, "error_524": 524, "error_text": 500, "message_text": 500}
    assert response.status_code == expected[kind]
    assert stats(api)["faults"]["by_kind"] == {kind: 1}
    assert stats(api)["response_violations"] == []  # the emulator's self-check held
    assert checked.count >= 1  # and schemathesis's check of the response ran


async def test_create_without_output_leaves_the_key_out_of_create_answers_only(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig], clock: Any
) -> None:
    api = make_client(make_config(create_without_output=True))
    created = await api.post(SCHNELL, json=BODY)
    assert created.status_code == 201
    assert "output" not in created.json() and created.json()["status"] == "starting"

    async def finish_soon() -> None:
        await asyncio.sleep(0.05)
        clock.advance(10)

    waited, _ = await asyncio.gather(
        api.post(REPLICATE_SCHNELL, json=BODY, headers={"Prefer": "wait=60"}), finish_soon()
    )
    assert waited.status_code == 201 and waited.json()["status"] == "succeeded"
    assert "output" not in waited.json()  # even a finished create answer leaves it out
    clock.advance(60)
    polled = await api.get(f"/replicate/v1/predictions/{created.json()['id']}")
    assert polled.json()["status"] == "succeeded" and len(polled.json()["output"]) == 1
