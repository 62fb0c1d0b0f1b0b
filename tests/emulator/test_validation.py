"""Auth, parameter, body and per-model input validation answer as CometAPI and Replicate do."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from comet_replicate_emulator import EmulatorConfig

SCHNELL = "/replicate/v1/models/black-forest-labs/flux-schnell/predictions"
KONTEXT = "/replicate/v1/models/black-forest-labs/flux-kontext-pro/predictions"


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer ", "Bearer wrong", "Basic sk-test-emulator", "sk-test-emulator"]
)
async def test_missing_or_wrong_token_is_401_in_the_cometapi_envelope(
    api: httpx.AsyncClient, header: str | None
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    client_headers = dict(api.headers)
    client_headers.pop("authorization", None)
    client_headers.update(headers)
    response = await api.post(
        SCHNELL, json={"input": {"prompt": "x"}}, headers=client_headers if header else {"Authorization": ""}
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "comet_api_error" and error["param"] == "" and error["code"] == ""
    assert "request id" in error["message"]
    assert api.emulator_app.stats()["predictions_created"] == 0  # type: ignore[attr-defined]


async def test_replicate_prefix_answers_401_with_problem_details(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/predictions/abc", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json() == {
        "title": "Unauthenticated",
        "detail": "You did not pass a valid authentication token",
        "status": 401,
    }


async def test_without_a_configured_token_any_non_empty_token_is_accepted(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig]
) -> None:
    api = make_client(make_config(token=None), token="anything-at-all")
    assert (await api.post(SCHNELL, json={"input": {"prompt": "x"}})).status_code == 201
    empty = await api.post(SCHNELL, json={"input": {"prompt": "x"}}, headers={"Authorization": "Bearer "})
    assert empty.status_code == 401


async def test_invalid_enum_is_422_with_replicate_invalid_fields(api: httpx.AsyncClient) -> None:
    response = await api.post(KONTEXT, json={"input": {"prompt": "x", "output_format": "webp"}})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json() == {
        "title": "Input validation failed",
        "detail": '- input.output_format: output_format must be one of the following: "jpg", "png"\n',
        "status": 422,
        "invalid_fields": [
            {
                "type": "enum",
                "field": "input.output_format",
                "description": 'output_format must be one of the following: "jpg", "png"',
            }
        ],
    }


@pytest.mark.parametrize(
    ("inp", "kind", "field"),
    [
        ({}, "required", "input.prompt"),
        ({"prompt": "x", "num_outputs": 5}, "number_lte", "input.num_outputs"),
        ({"prompt": "x", "num_outputs": 0}, "number_gte", "input.num_outputs"),
        ({"prompt": "x", "seed": "one"}, "invalid_type", "input.seed"),
        ({"prompt": "x", "megapixels": "2"}, "enum", "input.megapixels"),
    ],
)
async def test_each_broken_rule_is_named_in_invalid_fields(
    api: httpx.AsyncClient, inp: dict[str, object], kind: str, field: str
) -> None:
    response = await api.post(SCHNELL, json={"input": inp})
    assert response.status_code == 422
    fields = response.json()["invalid_fields"]
    assert {"type": kind, "field": field} == {k: fields[0][k] for k in ("type", "field")}
    assert response.json()["detail"].startswith(f"- {field}: ")


async def test_request_body_rules_come_from_prediction_request(api: httpx.AsyncClient) -> None:
    missing_input = await api.post(SCHNELL, json={"prompt": "x"})
    assert missing_input.status_code == 422
    assert {f["type"] for f in missing_input.json()["invalid_fields"]} == {
        "required",
        "additional_property_not_allowed",
    }
    bad_webhook = await api.post(SCHNELL, json={"input": {"prompt": "x"}, "webhook": "not a url"})
    assert bad_webhook.status_code == 422
    assert bad_webhook.json()["invalid_fields"][0]["type"] == "format"


@pytest.mark.parametrize("body", [b"", b"{", b"not json", b'{"input": '])
async def test_malformed_json_is_400(api: httpx.AsyncClient, body: bytes) -> None:
    response = await api.post(SCHNELL, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


async def test_unknown_model_is_404_unless_unknown_models_are_accepted(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig]
) -> None:
    strict = make_client(make_config())
    path = "/replicate/v1/models/someone/some-model/predictions"
    response = await strict.post(path, json={"input": {"anything": [1, 2]}})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    replicate = await strict.post("/v1/models/someone/some-model/predictions", json={"input": {}})
    assert replicate.status_code == 404 and replicate.json()["status"] == 404

    lenient = make_client(make_config(accept_unknown_models=True))
    created = await lenient.post(path, json={"input": {"anything": [1, 2]}})
    assert created.status_code == 201 and created.json()["model"] == "someone/some-model"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Prefer", "wait=0"),
        ("Prefer", "wait=100"),
        ("Prefer", "respond-async"),
    ],
)
async def test_headers_that_break_the_spec_pattern_are_400(
    api: httpx.AsyncClient, name: str, value: str
) -> None:
    response = await api.post(SCHNELL, json={"input": {"prompt": "x"}}, headers={name: value})
    assert response.status_code == 400
    assert name in response.json()["error"]["message"]


async def test_path_parameters_that_break_the_spec_pattern_are_404(api: httpx.AsyncClient) -> None:
    assert (await api.get("/replicate/v1/predictions/-abc")).status_code == 404
    assert (await api.post("/replicate/v1/models/-x/flux/predictions", json={"input": {}})).status_code == 404
    assert (await api.get("/replicate/v1/predictions/doesnotexist")).status_code == 404


async def test_unsupported_methods_are_405_with_allow(api: httpx.AsyncClient) -> None:
    response = await api.delete("/replicate/v1/predictions/abc")
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "HEAD"}


async def test_service_routes_describe_the_emulator(api: httpx.AsyncClient) -> None:
    index = await api.get("/")
    assert index.json()["cometapi_base_url"] == "http://emulator.test/replicate/v1"
    assert "black-forest-labs/flux-schnell" in index.json()["models"]
    spec = await api.get("/openapi.yaml")
    assert spec.text.startswith("openapi: 3.1.0")


async def test_every_missing_field_is_listed_once_and_unknown_fields_are_not_errors(
    api: httpx.AsyncClient,
) -> None:
    # The model schemas leave unknown fields open (Replicate ignores inputs a model does not declare).
    response = await api.post(SCHNELL, json={"input": {"C": None, "": None, "width": 5}})
    assert response.status_code == 422
    fields = response.json()["invalid_fields"]
    assert [f for f in fields if f["type"] == "additional_property_not_allowed"] == []
    assert [f for f in fields if f["type"] == "required"] == [
        {"type": "required", "field": "input.prompt", "description": "prompt is required"}
    ]


async def test_unknown_input_fields_are_accepted_and_echoed(api: httpx.AsyncClient) -> None:
    inp = {"prompt": "x", "width": 512, "prompt_upsampling": False}
    response = await api.post(SCHNELL, json={"input": inp})
    assert response.status_code == 201
    assert response.json()["input"] == inp


async def test_an_unknown_top_level_body_field_is_still_422(api: httpx.AsyncClient) -> None:
    response = await api.post(SCHNELL, json={"input": {"prompt": "x"}, "inputs": {}})
    assert response.status_code == 422
    assert response.json()["invalid_fields"] == [
        {
            "type": "additional_property_not_allowed",
            "field": "(root)",
            "description": "Additional property inputs is not allowed",
        }
    ]


@pytest.mark.parametrize(
    ("value", "seconds"), [("90", 90.0), ("90s", 90.0), ("5m", 300.0), ("1h30m45s", 5445.0), ("7.5", 7.5)]
)
async def test_cancel_after_in_replicates_documented_forms_sets_the_deadline(
    api: httpx.AsyncClient, value: str, seconds: float
) -> None:
    from datetime import datetime

    response = await api.post(SCHNELL, json={"input": {"prompt": "x"}}, headers={"Cancel-After": value})
    assert response.status_code == 201
    body = response.json()

    def ts(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    assert ts(body["deadline"]) - ts(body["created_at"]) == seconds


@pytest.mark.parametrize("value", ["5 minutes", "-5", "m", "1d", "5m3h", "!1@j"])
@pytest.mark.parametrize("prefix", ["/replicate/v1", "/v1"])
async def test_an_unreadable_cancel_after_is_422_naming_the_header_and_creates_nothing(
    api: httpx.AsyncClient, value: str, prefix: str
) -> None:
    # The spec gives Cancel-After no pattern (Replicate documents none), so any non-empty value is
    # schema-valid: the emulator refuses what it cannot read as a 422, never as a 400.
    path = prefix + "/models/black-forest-labs/flux-schnell/predictions"
    response = await api.post(path, json={"input": {"prompt": "x"}}, headers={"Cancel-After": value})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    [problem] = response.json()["invalid_fields"]
    assert problem["field"] == "Cancel-After" and "5m" in problem["description"]
    assert api.emulator_app.stats()["predictions_created"] == 0  # type: ignore[attr-defined]
