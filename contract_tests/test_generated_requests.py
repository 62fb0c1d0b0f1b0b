"""Requests built by the generated client conform to openapi.yaml, for every operation and model.

hypothesis draws path parameters, headers and bodies from the spec's own schemas (hypothesis-jsonschema);
the generated client sends them through respx; each captured request is validated as a whole
(method, RAW path, Authorization, Content-Type, Prefer, Cancel-After, body) with openapi-core, and a
model's `input` against its `x-models` input schema.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from typing import Any

import httpx
import pytest
import respx
from comet_replicate_api import AuthenticatedClient
from comet_replicate_api.api.predictions import (
    cancel_prediction,
    create_prediction,
    get_prediction,
    list_predictions,
)
from comet_replicate_api.models import ListPredictionsSource, Prediction, PredictionPage, PredictionRequest
from comet_replicate_api.types import UNSET
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from contract_tests._spec import (
    API_KEY,
    BASE_URL,
    SPEC,
    cancel_after_values,
    from_schema_strategy,
    models,
    per_model_examples,
    request_errors,
)

EXAMPLES = {k: v["value"] for k, v in SPEC["components"]["examples"].items()}
PREFIX = httpx.URL(BASE_URL).raw_path.decode().rstrip("/")


@functools.cache
def param(name: str) -> st.SearchStrategy[Any]:
    """Values of a component parameter, drawn from its schema in the spec."""
    return from_schema(SPEC["components"]["parameters"][name]["schema"])


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(UNSET), strategy)


@functools.cache
def client() -> AuthenticatedClient:
    """One client for the module (respx patches the transport underneath it); building an SSL
    context per example would dominate the run time."""
    return AuthenticatedClient(base_url=BASE_URL, token=API_KEY, timeout=httpx.Timeout(5.0))


def check(request: httpx.Request, expected_raw_path: str) -> None:
    assert request.url.raw_path == expected_raw_path.encode("ascii"), request.url.raw_path
    assert b"%2F" not in request.url.raw_path.upper()
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    problems = request_errors(request)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("model", sorted(models()))
@settings(max_examples=per_model_examples())
@given(data=st.data())
def test_create_request_for_every_model_input_conforms(model: str, data: st.DataObject) -> None:
    """A valid input of every x-models schema goes out as a request openapi.yaml accepts."""
    input_schema, _ = models()[model]
    model_input = data.draw(from_schema_strategy(input_schema), label="input")
    prefer = data.draw(optional(param("Prefer")), label="Prefer")
    cancel_after = data.draw(optional(cancel_after_values()), label="Cancel-After")
    owner, name = model.split("/")
    body = {"input": model_input}
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as router:
        route = router.post(f"/models/{owner}/{name}/predictions").respond(
            201, json=EXAMPLES["PredictionStarting"]
        )
        resp = create_prediction.sync_detailed(
            owner,
            name,
            client=client(),
            body=PredictionRequest.from_dict(body),
            prefer=prefer,
            cancel_after=cancel_after,
        )
    assert resp.status_code == 201 and isinstance(resp.parsed, Prediction)
    sent = route.calls.last.request
    check(sent, f"{PREFIX}/models/{owner}/{name}/predictions")
    assert json.loads(sent.content) == body
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers.get("Prefer") == (None if prefer is UNSET else prefer)
    assert sent.headers.get("Cancel-After") == (None if cancel_after is UNSET else cancel_after)


@given(
    owner=param("ModelOwner"),
    name=param("ModelName"),
    body=from_schema_strategy("PredictionRequest"),
)
def test_create_request_for_any_model_and_open_body_conforms(owner: str, name: str, body: Any) -> None:
    """Any owner/name the path patterns allow, with any PredictionRequest (webhook fields too)."""
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as router:
        route = router.post(path__regex=r"/predictions$").respond(201, json=EXAMPLES["PredictionStarting"])
        create_prediction.sync_detailed(owner, name, client=client(), body=PredictionRequest.from_dict(body))
    sent = route.calls.last.request
    # Only model-agnostic rules here: a drawn `owner/name` can coincide with an x-models entry.
    problems = request_errors(sent, model_inputs=False)
    assert not problems, "\n".join(problems)
    assert json.loads(sent.content) == body
    assert sent.headers["Authorization"] == f"Bearer {API_KEY}"


@pytest.mark.parametrize(
    ("module", "method", "suffix"),
    [(get_prediction, "GET", ""), (cancel_prediction, "POST", "/cancel")],
    ids=["getPrediction", "cancelPrediction"],
)
@given(prediction_id=param("PredictionId"))
def test_get_and_cancel_requests_conform(module: Any, method: str, suffix: str, prediction_id: str) -> None:
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as router:
        route = router.route(method=method, path__regex=r"/predictions/").respond(
            200, json=EXAMPLES["PredictionProcessing"]
        )
        resp = module.sync_detailed(prediction_id, client=client())
    assert isinstance(resp.parsed, Prediction)
    sent = route.calls.last.request
    check(sent, f"{PREFIX}/predictions/{prediction_id}{suffix}")
    assert not sent.content


@given(
    created_after=optional(st.datetimes(timezones=st.just(dt.UTC))),
    created_before=optional(st.datetimes(timezones=st.just(dt.UTC))),
    source=optional(param("ListSource").map(ListPredictionsSource)),
    cursor=optional(param("Cursor")),
)
def test_list_requests_conform(created_after: Any, created_before: Any, source: Any, cursor: Any) -> None:
    """listPredictions (Replicate's route; CometAPI may not serve it): every query the spec allows."""
    page = SPEC["components"]["examples"]["PredictionPageExample"]["value"]
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as router:
        route = router.get("/predictions").respond(200, json=page)
        resp = list_predictions.sync_detailed(
            client=client(),
            created_after=created_after,
            created_before=created_before,
            source=source,
            cursor=cursor,
        )
    assert isinstance(resp.parsed, PredictionPage)
    assert [p.id for p in resp.parsed.results] == [r["id"] for r in page["results"]]
    sent = route.calls.last.request
    assert sent.url.raw_path.split(b"?")[0] == f"{PREFIX}/predictions".encode("ascii")
    assert sent.headers["Authorization"] == f"Bearer {API_KEY}"
    problems = request_errors(sent)
    assert not problems, "\n".join(problems)
    assert not sent.content
    assert sent.url.params.get("cursor") == (None if cursor is UNSET else cursor)


def test_every_operation_is_covered_by_a_request_test() -> None:
    """A new operation in openapi.yaml must get a request test here."""
    from contract_tests._spec import operations

    assert {op for _, _, op in operations()} == {
        "createPrediction",
        "getPrediction",
        "cancelPrediction",
        "listPredictions",
    }


def test_validator_rejects_a_percent_encoded_slash_in_the_create_path() -> None:
    """The check above is able to fail: `owner%2Fname` in one segment is not the spec's path."""
    request = httpx.Request(
        "POST",
        f"{BASE_URL}/models/black-forest-labs%2Fflux-schnell/predictions",
        headers={"Authorization": f"Bearer {API_KEY}"},
        json={"input": {"prompt": "boat"}},
    )
    assert request.url.path.endswith("/black-forest-labs/flux-schnell/predictions")  # decoded: hidden
    assert request_errors(request), "openapi-core must not match %2F against two segments"
