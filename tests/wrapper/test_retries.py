"""One retry policy: a create is never repeated once the server may have it; GETs ride out blips."""

from __future__ import annotations

import httpx
import pytest
import respx
from comet_replicate import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    Client,
    ContractViolation,
    CreateOutcomeUnknown,
    InternalServerError,
    RateLimitError,
)

from .conftest import CREATE_PATH, FakeTime, prediction

MODEL = "black-forest-labs/flux-schnell"
HTML_502 = "<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_create_is_not_retried_after_a_5xx(client: Client, api: respx.MockRouter, status: int) -> None:
    route = api.post(CREATE_PATH).respond(status, json={"detail": "boom"})
    with pytest.raises(CreateOutcomeUnknown) as info:  # issue 12.6: the create may have been made
        client.predictions.create(MODEL, {"prompt": "b"})
    assert isinstance(info.value.__cause__, InternalServerError) and info.value.status == status
    assert route.call_count == 1


def test_create_is_not_retried_after_a_read_timeout(client: Client, api: respx.MockRouter) -> None:
    route = api.post(CREATE_PATH).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(CreateOutcomeUnknown) as info:  # issue 12.6: the create may have been made
        client.predictions.create(MODEL, {"prompt": "b"})
    assert isinstance(info.value.__cause__, APITimeoutError)
    assert route.call_count == 1


def test_create_is_not_retried_after_a_dropped_connection(client: Client, api: respx.MockRouter) -> None:
    route = api.post(CREATE_PATH).mock(side_effect=httpx.RemoteProtocolError("server disconnected"))
    with pytest.raises(CreateOutcomeUnknown) as info:  # issue 12.6: the create may have been made
        client.predictions.create(MODEL, {"prompt": "b"})
    assert isinstance(info.value.__cause__, APIConnectionError)
    assert route.call_count == 1


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("full")]
)
def test_create_is_retried_when_it_never_reached_the_server(
    client: Client, api: respx.MockRouter, exc: Exception
) -> None:
    route = api.post(CREATE_PATH).mock(side_effect=[exc, httpx.Response(201, json=prediction())])
    assert client.predictions.create(MODEL, {"prompt": "b"}).id == "p1"
    assert route.call_count == 2


def test_create_429_is_retried_after_retry_after(client: Client, api: respx.MockRouter, ft: FakeTime) -> None:
    route = api.post(CREATE_PATH).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}, json={"detail": "throttled", "status": 429}),
            httpx.Response(201, json=prediction()),
        ]
    )
    client.predictions.create(MODEL, {"prompt": "b"})
    assert route.call_count == 2
    assert ft.sleeps == [7.0]


def test_429_body_retry_after_is_honoured_when_no_header(
    client: Client, api: respx.MockRouter, ft: FakeTime
) -> None:
    api.get("/predictions/p1").mock(
        side_effect=[
            httpx.Response(429, json={"detail": "Request was throttled.", "status": 429, "retry_after": 4}),
            httpx.Response(200, json=prediction()),
        ]
    )
    client.predictions.get("p1")
    assert ft.sleeps == [4.0]


def test_retry_after_http_date_is_honoured(client: Client, api: respx.MockRouter, ft: FakeTime) -> None:
    api.get("/predictions/p1").mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": "Thu, 12 Mar 2026 11:27:21 GMT"}, text="busy"),
            httpx.Response(200, json=prediction()),
        ]
    )
    client.predictions.get("p1")
    assert ft.sleeps == [pytest.approx(2.742, abs=0.01)]


def test_retry_after_beyond_the_cap_raises_with_the_hint(client: Client, api: respx.MockRouter) -> None:
    route = api.get("/predictions/p1").respond(429, headers={"Retry-After": "3600"}, json={"detail": "later"})
    with pytest.raises(RateLimitError) as info:
        client.predictions.get("p1")
    assert info.value.retry_after == 3600
    assert route.call_count == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503, text="busy"),
        httpx.Response(502, text=HTML_502, headers={"content-type": "text/html"}),
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("dropped"),
    ],
)
def test_get_is_retried_on_transient_failures(client: Client, api: respx.MockRouter, failure: object) -> None:
    route = api.get("/predictions/p1").mock(side_effect=[failure, httpx.Response(200, json=prediction())])
    assert client.predictions.get("p1").id == "p1"
    assert route.call_count == 2


def test_retries_are_bounded_by_max_retries_and_per_call_override(
    client: Client, api: respx.MockRouter
) -> None:
    route = api.get("/predictions/p1").respond(503, text="busy")
    with pytest.raises(InternalServerError):
        client.predictions.get("p1")
    assert route.call_count == 3
    route.reset()
    with pytest.raises(InternalServerError):
        client.predictions.get("p1", max_retries=0)
    assert route.call_count == 1
    route.reset()
    with pytest.raises(InternalServerError):
        client.with_options(max_retries=1).predictions.get("p1")
    assert route.call_count == 2


def test_cancel_is_retried_like_a_get(client: Client, api: respx.MockRouter) -> None:
    route = api.post("/predictions/p1/cancel").mock(
        side_effect=[httpx.Response(504, text="gw"), httpx.Response(200, json=prediction("canceled"))]
    )
    assert str(client.predictions.cancel("p1").status) == "canceled"
    assert route.call_count == 2


def test_comet_invalid_request_500_is_not_retried(client: Client, api: respx.MockRouter) -> None:
    route = api.get("/predictions/p1").respond(
        500,
        json={
            "error": {"message": "bad (request id: 1)", "type": "comet_api_error", "code": "invalid_request"}
        },
    )
    with pytest.raises(InternalServerError) as info:
        client.predictions.get("p1")
    assert info.value.code == "invalid_request" and info.value.request_id == "1"
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [(400, HTML_502), (502, HTML_502), (404, "<html>nope</html>"), (500, '{"error": {"mess'), (503, "")],
)
def test_non_json_error_bodies_never_reach_the_generated_parser(
    client: Client, api: respx.MockRouter, status: int, body: str
) -> None:
    api.get("/predictions/p1").respond(status, text=body, headers={"content-type": "text/html"})
    with pytest.raises(APIStatusError) as info:
        client.with_options(max_retries=0).predictions.get("p1")
    assert info.value.status == status
    assert info.value.text == body
    assert info.value.prediction_id == "p1"


def test_2xx_with_a_broken_body_is_a_contract_violation(client: Client, api: respx.MockRouter) -> None:
    api.get("/predictions/p1").respond(200, text="<html>ok</html>")
    with pytest.raises(ContractViolation) as info:
        client.predictions.get("p1")
    assert info.value.prediction_id == "p1"
    api.get("/predictions/p2").respond(200, json={"id": "p2"})
    with pytest.raises(ContractViolation, match="KeyError: 'model'") as info:
        client.predictions.get("p2")
    assert info.value.rule == "required"


def test_a_get_answer_cut_short_is_fetched_again(client: Client, api: respx.MockRouter) -> None:
    full = httpx.Response(200, json=prediction("processing"))
    route = api.get("/predictions/p1").mock(
        side_effect=[httpx.Response(200, content=full.content[:40]), full]
    )
    assert client.predictions.get("p1").id == "p1"
    assert route.call_count == 2


def test_a_create_answer_cut_short_is_not_retried_and_says_so(client: Client, api: respx.MockRouter) -> None:
    full = httpx.Response(201, json=prediction("starting"))
    route = api.post(CREATE_PATH).respond(201, content=full.content[:40])
    with pytest.raises(CreateOutcomeUnknown, match="cut short") as info:
        client.predictions.create(MODEL, {"prompt": "b"})
    assert info.value.model == MODEL and "may have reached the server" in str(info.value)
    assert route.call_count == 1


def test_connection_errors_are_one_line(client: Client, api: respx.MockRouter) -> None:
    api.get("/predictions/p1").mock(side_effect=httpx.ConnectError("line one\nline two"))
    with pytest.raises(APIConnectionError) as info:
        client.with_options(max_retries=0).predictions.get("p1")
    assert "\n" not in str(info.value) and "line two" in str(info.value)
    assert info.value.prediction_id == "p1"
