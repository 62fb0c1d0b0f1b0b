"""predictions.create: what goes on the wire, and input refused before any request."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
import respx
from comet_replicate import BadRequestError, Client, InputValidationError
from comet_replicate_api.models import FluxSchnellInput

from .conftest import CREATE_PATH, KEY, prediction

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def _body(api: respx.MockRouter) -> dict[str, object]:
    return json.loads(api.calls.last.request.content)


def test_create_sends_input_auth_and_returns_the_generated_model(
    client: Client, api: respx.MockRouter
) -> None:
    route = api.post(CREATE_PATH).respond(201, json=prediction())
    p = client.predictions.create("black-forest-labs/flux-schnell", {"prompt": "boat", "num_outputs": 2})
    assert type(p).__name__ == "Prediction" and type(p).__module__.startswith("comet_replicate_api")
    assert p.id == "p1"
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert json.loads(request.content) == {"input": {"prompt": "boat", "num_outputs": 2}}
    assert "prefer" not in request.headers and "cancel-after" not in request.headers


def test_typed_generated_input_is_accepted(client: Client, api: respx.MockRouter) -> None:
    api.post(CREATE_PATH).respond(201, json=prediction())
    client.predictions.create("black-forest-labs/flux-schnell", FluxSchnellInput(prompt="boat", seed=3))
    sent = _body(api)["input"]
    assert isinstance(sent, dict)
    assert sent["prompt"] == "boat" and sent["seed"] == 3  # plus the generated model's defaults


def test_sync_mode_sends_prefer_and_reads_longer_than_the_hold(client: Client, api: respx.MockRouter) -> None:
    api.post(CREATE_PATH).respond(201, json=prediction())
    client.predictions.create("black-forest-labs/flux-schnell", {"prompt": "b"}, wait=60)
    request = api.calls.last.request
    assert request.headers["prefer"] == "wait=60"
    timeout = request.extensions["timeout"]
    assert timeout["read"] >= 65 and timeout["connect"] is not None


def test_every_request_has_connect_and_read_timeouts(client: Client, api: respx.MockRouter) -> None:
    api.post(CREATE_PATH).respond(201, json=prediction())
    api.get("/predictions/p1").respond(200, json=prediction())
    client.predictions.create("black-forest-labs/flux-schnell", {"prompt": "b"})
    client.predictions.get("p1")
    for call in api.calls:
        timeout = call.request.extensions["timeout"]
        assert timeout["connect"] and timeout["read"]


def test_cancel_after_webhook_and_filter_go_on_the_wire(client: Client, api: respx.MockRouter) -> None:
    api.post(CREATE_PATH).respond(201, json=prediction())
    client.predictions.create(
        "black-forest-labs/flux-schnell",
        {"prompt": "b"},
        cancel_after="5m",
        webhook="https://example.com/hook",
        webhook_events_filter=["completed"],
    )
    assert api.calls.last.request.headers["cancel-after"] == "5m"
    assert _body(api) == {
        "input": {"prompt": "b"},
        "webhook": "https://example.com/hook",
        "webhook_events_filter": ["completed"],
    }
    client.predictions.create("black-forest-labs/flux-schnell", {"prompt": "b"}, cancel_after=90)
    assert api.calls.last.request.headers["cancel-after"] == "90s"


@pytest.mark.parametrize(
    ("model", "input", "field", "fragment"),
    [
        ("black-forest-labs/flux-schnell", {"prompt": "b", "num_outputs": 9}, "num_outputs", "1 to 4"),
        (
            "black-forest-labs/flux-schnell",
            {"prompt": "b", "output_format": "gif"},
            "output_format",
            "'webp'",
        ),
        ("black-forest-labs/flux-schnell", {"num_outputs": 1}, "prompt", "required"),
        ("black-forest-labs/flux-schnell", {"prompt": 7}, "prompt", "string"),
        ("black-forest-labs/flux-kontext-dev", {"prompt": "b"}, "input_image", "required"),
        (
            "black-forest-labs/flux-2-pro",
            {"prompt": "b", "input_images": ["https://x/i.png"] * 9},
            "input_images",
            "at most 8",
        ),
    ],
)
def test_invalid_input_is_refused_before_any_request(
    client: Client, api: respx.MockRouter, model: str, input: dict[str, object], field: str, fragment: str
) -> None:
    with pytest.raises(InputValidationError) as info:
        client.predictions.create(model, input)
    assert info.value.field == field
    assert fragment in str(info.value)
    assert model in str(info.value)
    assert not api.calls


@pytest.mark.parametrize("model", ["flux-schnell", "a/b/c", "/x", "owner/", "own er/name", "../x/y"])
def test_malformed_model_reference_is_refused(client: Client, api: respx.MockRouter, model: str) -> None:
    with pytest.raises(InputValidationError, match="owner/name"):
        client.predictions.create(model, {"prompt": "b"})
    assert not api.calls


def test_wait_outside_1_to_60_and_bad_cancel_after_are_refused(client: Client, api: respx.MockRouter) -> None:
    with pytest.raises(InputValidationError, match="wait"):
        client.predictions.create("black-forest-labs/flux-schnell", {"prompt": "b"}, wait=61)
    with pytest.raises(InputValidationError, match="cancel_after"):
        client.predictions.create("black-forest-labs/flux-schnell", {"prompt": "b"}, cancel_after="soon")
    with pytest.raises(InputValidationError, match="webhook_events_filter"):
        client.predictions.create(
            "black-forest-labs/flux-schnell", {"prompt": "b"}, webhook_events_filter=["done"]
        )
    assert not api.calls


def test_unknown_models_pass_through_unvalidated(client: Client, api: respx.MockRouter) -> None:
    api.post("/models/someone/some-model/predictions").respond(201, json=prediction())
    client.predictions.create("someone/some-model", {"anything": [1, 2], "image": PNG})
    body = _body(api)["input"]
    assert isinstance(body, dict) and body["anything"] == [1, 2]
    assert str(body["image"]).startswith("data:image/png;base64,")


def test_local_images_become_data_urls_with_sniffed_types(
    client: Client, api: respx.MockRouter, tmp_path: Path
) -> None:
    api.post("/models/black-forest-labs/flux-kontext-pro/predictions").respond(201, json=prediction())
    jpg = tmp_path / "photo.bin"
    jpg.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 32)
    client.predictions.create(
        "black-forest-labs/flux-kontext-pro",
        {
            "prompt": "b",
            "input_image": str(jpg),
            "input_image_2": jpg,
            "input_image_3": io.BytesIO(b"RIFF\0\0\0\0WEBPVP8 "),
            "input_image_4": "https://example.com/x.png",
            "input_images": [PNG, b"GIF89a" + b"\0" * 8],
        },
    )
    body = _body(api)["input"]
    assert isinstance(body, dict)
    assert body["input_image"].startswith("data:image/jpeg;base64,")
    assert body["input_image_2"] == body["input_image"]
    assert body["input_image_3"].startswith("data:image/webp;base64,")
    assert body["input_image_4"] == "https://example.com/x.png"
    assert [u.split(";")[0] for u in body["input_images"]] == ["data:image/png", "data:image/gif"]


def test_files_above_the_limit_are_refused_with_a_clear_error(api: respx.MockRouter, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(PNG + b"\0" * 300_000)
    c = Client(api_key=KEY, base_url="https://api.cometapi.com/replicate/v1")
    with pytest.raises(InputValidationError, match="limit") as info:
        c.predictions.create("black-forest-labs/flux-dev", {"prompt": "b", "image": big})
    assert info.value.field == "image"
    small_limit = Client(api_key=KEY, max_data_url_bytes=10)
    with pytest.raises(InputValidationError, match="10-byte limit"):
        small_limit.predictions.create("black-forest-labs/flux-dev", {"prompt": "b", "image": PNG})
    assert not api.calls


def test_missing_local_file_and_unknown_bytes_are_refused(client: Client, api: respx.MockRouter) -> None:
    with pytest.raises(InputValidationError, match="neither an http"):
        client.predictions.create("black-forest-labs/flux-dev", {"prompt": "b", "image": "no/such/file.png"})
    with pytest.raises(InputValidationError, match="cannot tell the type"):
        client.predictions.create("black-forest-labs/flux-dev", {"prompt": "b", "image": b"plain text"})
    assert not api.calls


def test_input_must_be_a_mapping(client: Client) -> None:
    with pytest.raises(InputValidationError, match="dict"):
        client.predictions.create("black-forest-labs/flux-schnell", ["prompt"])


def test_raw_responses_expose_status_and_headers(client: Client, api: respx.MockRouter) -> None:
    api.post(CREATE_PATH).respond(
        202, json=prediction("processing"), headers={"x-request-id": "r-1", "ratelimit-remaining": "599"}
    )
    api.get("/predictions/p1").respond(200, json=prediction("processing"))
    raw = client.predictions.with_raw_response.create(
        "black-forest-labs/flux-schnell", {"prompt": "b"}, wait=1
    )
    assert raw.status_code == 202
    assert raw.headers["ratelimit-remaining"] == "599" and raw.headers["x-request-id"] == "r-1"
    assert raw.parsed is not None and raw.parsed.id == "p1"
    assert client.predictions.with_raw_response.get("p1").status_code == 200


def test_a_400_for_the_optional_headers_retries_once_without_them(
    client: Client, api: respx.MockRouter
) -> None:
    route = api.post(CREATE_PATH).mock(
        side_effect=[
            httpx.Response(
                400, json={"error": {"message": "unsupported header Prefer", "type": "comet_api_error"}}
            ),
            httpx.Response(201, json=prediction("starting")),
            httpx.Response(201, json=prediction("starting")),
        ]
    )
    client.predictions.create("black-forest-labs/flux-schnell", {"prompt": "b"}, wait=5, cancel_after=60)
    first, second = route.calls[0].request, route.calls[1].request
    assert first.headers["prefer"] == "wait=5" and first.headers["cancel-after"] == "60s"
    assert "prefer" not in second.headers and "cancel-after" not in second.headers
    client.predictions.create("black-forest-labs/flux-schnell", {"prompt": "b"}, wait=5)
    assert "prefer" not in route.calls[2].request.headers  # remembered for this client


def test_a_400_without_optional_headers_is_not_retried(client: Client, api: respx.MockRouter) -> None:
    route = api.post(CREATE_PATH).respond(400, json={"error": {"message": "bad", "type": "comet_api_error"}})
    with pytest.raises(BadRequestError):
        client.predictions.create("black-forest-labs/flux-schnell", {"prompt": "b"})
    assert route.call_count == 1
