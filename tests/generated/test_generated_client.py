"""The generated client, used directly: its requests obey the spec and it parses the seed's answers."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx
from comet_replicate_api import AuthenticatedClient
from comet_replicate_api.api.predictions import cancel_prediction, create_prediction, get_prediction
from comet_replicate_api.models import (
    FluxSchnellInput,
    FluxSchnellInputAspectRatio,
    FluxSchnellInputOutputFormat,
    Prediction,
    PredictionRequest,
    PredictionRequestInput,
    PredictionStatus,
)

from tests._spec_helpers import request_errors, resolve, spec

BASE = "https://api.cometapi.com/replicate/v1"
SEED_ID = "q4chw5rey9rmt0cww76t4h3ma4"


def example(name: str) -> dict[str, Any]:
    value: dict[str, Any] = resolve({"$ref": f"#/components/examples/{name}"})["value"]
    return value


def seed_request_input() -> dict[str, Any]:
    body = spec()["paths"]["/models/{model_owner}/{model_name}/predictions"]["post"]["requestBody"]
    value: dict[str, Any] = body["content"]["application/json"]["examples"]["seed"]["value"]["input"]
    return value


@pytest.fixture
def client() -> AuthenticatedClient:
    return AuthenticatedClient(base_url=BASE, token="sk-test", timeout=httpx.Timeout(5.0))


def test_create_sends_two_real_path_segments_and_a_spec_valid_request(client: AuthenticatedClient) -> None:
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post("/models/black-forest-labs/flux-schnell/predictions").respond(
            201, json=example("PredictionStarting")
        )
        body = PredictionRequest(input_=PredictionRequestInput.from_dict(seed_request_input()))
        response = create_prediction.sync_detailed(
            "black-forest-labs", "flux-schnell", client=client, body=body, prefer="wait=5", cancel_after="5m"
        )
    sent = route.calls.last.request
    assert sent.url.raw_path == b"/replicate/v1/models/black-forest-labs/flux-schnell/predictions"
    assert b"%2F" not in sent.url.raw_path
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.headers["prefer"] == "wait=5" and sent.headers["cancel-after"] == "5m"
    assert json.loads(sent.content) == {"input": seed_request_input()}
    assert request_errors(sent) == []
    assert response.status_code == 201
    assert isinstance(response.parsed, Prediction)
    assert response.parsed.id == SEED_ID
    assert response.parsed.status == PredictionStatus.STARTING


def test_a_slash_inside_one_segment_would_be_encoded_and_rejected_by_the_spec(
    client: AuthenticatedClient,
) -> None:
    """Why the path has two segments: one `{models}` value holding a slash becomes `%2F`."""
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        route = router.route(method="POST").respond(201, json=example("PredictionStarting"))
        body = PredictionRequest(input_=PredictionRequestInput.from_dict({"prompt": "p"}))
        create_prediction.sync_detailed("black-forest-labs/flux", "schnell", client=client, body=body)
    sent = route.calls.last.request
    assert b"%2F" in sent.url.raw_path
    assert request_errors(sent) != []


def test_get_parses_the_seed_response_and_keeps_unknown_fields(client: AuthenticatedClient) -> None:
    payload = {**example("PredictionStarting"), "brand_new_field": {"x": 1}}
    with respx.mock(base_url=BASE) as router:
        route = router.get(f"/predictions/{SEED_ID}").respond(200, json=payload)
        prediction = get_prediction.sync(SEED_ID, client=client)
    assert request_errors(route.calls.last.request) == []
    assert isinstance(prediction, Prediction)
    assert prediction.model == "black-forest-labs/flux-schnell"
    assert prediction.additional_properties["brand_new_field"] == {"x": 1}
    assert prediction.urls is not None and prediction.urls.get.startswith("https://api.replicate.com/")


def test_an_unknown_status_parses_as_a_plain_string(client: AuthenticatedClient) -> None:
    with respx.mock(base_url=BASE) as router:
        router.get(f"/predictions/{SEED_ID}").respond(
            200, json={**example("PredictionStarting"), "status": "queued"}
        )
        prediction = get_prediction.sync(SEED_ID, client=client)
    assert prediction is not None and prediction.status == "queued"
    assert not isinstance(prediction.status, PredictionStatus)


@pytest.mark.parametrize(
    ("name", "shape"),
    [("PredictionSucceededList", list), ("PredictionSucceededString", str), ("PredictionFailed", type(None))],
)
def test_outputs_parse_in_the_shape_each_model_returns(
    client: AuthenticatedClient, name: str, shape: type
) -> None:
    payload = example(name)
    with respx.mock(base_url=BASE) as router:
        router.get(f"/predictions/{payload['id']}").respond(200, json=payload)
        prediction = get_prediction.sync(payload["id"], client=client)
    assert prediction is not None
    assert isinstance(prediction.output, shape)
    assert prediction.to_dict()["output"] == payload["output"]


def test_cancel_request_obeys_the_spec(client: AuthenticatedClient) -> None:
    with respx.mock(base_url=BASE) as router:
        route = router.post(f"/predictions/{SEED_ID}/cancel").respond(200, json=example("PredictionCanceled"))
        prediction = cancel_prediction.sync(SEED_ID, client=client)
    assert request_errors(route.calls.last.request) == []
    assert prediction is not None and prediction.status == PredictionStatus.CANCELED


def test_typed_input_classes_serialise_to_what_the_model_schema_accepts() -> None:
    typed = FluxSchnellInput(
        prompt="A paper boat floating on calm water at sunrise.",
        aspect_ratio=FluxSchnellInputAspectRatio.VALUE_0,
        output_format=FluxSchnellInputOutputFormat.WEBP,
        output_quality=80,
    )
    as_dict = typed.to_dict()
    assert as_dict["aspect_ratio"] == "1:1" and as_dict["output_format"] == "webp"
    from tests._spec_helpers import validator

    assert list(validator("#/components/schemas/FluxSchnellInput").iter_errors(as_dict)) == []
