"""The API key never shows up in reprs, logs or error text."""

from __future__ import annotations

import logging
import traceback

import httpx
import pytest
import respx
from comet_replicate import AsyncClient, AuthenticationError, Client, PredictionTimeout

from .conftest import CREATE_PATH, KEY, prediction


def test_key_absent_from_client_reprs(client: Client, aclient: AsyncClient) -> None:
    for obj in (client, aclient, client.with_options(max_retries=0), client.predictions, client._state):
        assert KEY not in repr(obj)
        assert KEY not in str(obj)
    assert "redacted" in repr(client)


def test_key_absent_from_debug_logs(
    client: Client, api: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    api.post(CREATE_PATH).respond(201, json=prediction("starting"))
    api.get("/predictions/p1").mock(
        side_effect=[
            httpx.Response(503, text="busy"),
            httpx.Response(200, json=prediction("succeeded", output=["https://x/y.png"])),
        ]
    )
    with caplog.at_level(logging.DEBUG):
        client.run("black-forest-labs/flux-schnell", {"prompt": "b"})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Authorization" in text or "authorization" in text  # the header is logged, redacted
    assert "<redacted>" in text
    assert KEY not in text


def test_key_absent_from_errors_and_tracebacks(client: Client, api: respx.MockRouter) -> None:
    api.get("/predictions/p1").respond(
        401, json={"error": {"message": f"Invalid token {KEY[:6]}", "type": "comet_api_error"}}
    )
    with pytest.raises(AuthenticationError) as info:
        client.predictions.get("p1")
    rendered = "".join(traceback.format_exception(info.value))
    assert KEY not in rendered and KEY not in repr(info.value) and KEY not in str(vars(info.value))


def test_key_absent_from_timeout_errors(client: Client, api: respx.MockRouter) -> None:
    api.get("/predictions/p1").respond(200, json=prediction("processing"))
    with pytest.raises(PredictionTimeout) as info:
        client.predictions.wait("p1", timeout=1)
    assert KEY not in "".join(traceback.format_exception(info.value))


def test_key_is_not_a_default_header_of_the_http_client(client: Client) -> None:
    assert "authorization" not in client._http.headers


def test_log_switch_prints_redacted_requests(monkeypatch: pytest.MonkeyPatch, api: respx.MockRouter) -> None:
    import io

    from comet_replicate._http import log

    monkeypatch.setenv("COMET_REPLICATE_LOG", "debug")
    monkeypatch.setattr(log, "handlers", [])
    monkeypatch.setattr(log, "level", logging.NOTSET)
    api.get("/predictions/p1").respond(200, json=prediction())
    c = Client(api_key=KEY)
    assert log.handlers and log.level == logging.DEBUG
    stream = io.StringIO()
    log.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    c.predictions.get("p1")
    text = stream.getvalue()
    assert "GET https://api.cometapi.com/replicate/v1/predictions/p1" in text
    assert KEY not in text and "<redacted>" in text
