"""A server that echoes the client's own key (issue 13 item 9, the library's part).

The key comes back in an error body, in error headers, in a 200 body (a prediction's logs and
error), in `Location` and in `X-Request-Id`; it must reach none of: the typed error (str, repr, body,
text, headers, every attribute), the DEBUG and INFO log of `comet_replicate`, a `Recorder`'s files.
A failed construction leaves no plain key in the traceback's frame locals, and a half-built client
has a repr.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import respx
from comet_replicate import (
    AsyncClient,
    Client,
    CometReplicateError,
    InternalServerError,
    PredictionFailed,
    UnprocessableEntityError,
)
from comet_replicate.contract import Recorder

from .conftest import BASE, CREATE_PATH, FakeTime, _fake, prediction

CANARY = "sk-ECHO-canary-0123456789abcdef"
MODEL = "black-forest-labs/flux-schnell"


def _echo_headers() -> dict[str, str]:
    return {
        "X-Request-Id": f"req-{CANARY}",
        "Location": f"{BASE}/predictions/p1?key={CANARY}",
        "X-Debug": f"Bearer {CANARY}",
    }


def _echoing_routes(api: respx.MockRouter) -> None:
    """A retryable 503 and then a 422, both quoting the key in body and headers."""
    api.get("/predictions/p1").mock(
        side_effect=[
            httpx.Response(503, text=f"<html>upstream saw Authorization: Bearer {CANARY}</html>"),
            httpx.Response(
                422,
                headers=_echo_headers(),
                json={
                    "title": "Invalid input",
                    "detail": f"key {CANARY} may not do this (request id: {CANARY})",
                    "invalid_fields": [{"field": "prompt", "message": f"seen {CANARY}"}],
                },
            ),
        ]
    )


def _everything_about(exc: BaseException) -> str:
    shown = [str(exc), repr(exc), repr(exc.args), "".join(traceback.format_exception(exc))]
    shown += [f"{name}={value!r}" for name, value in vars(exc).items()]
    return "\n".join(shown)


def _sync_client(ft: FakeTime, api_key: str | Callable[[], str], **options: object) -> Client:
    client = Client(api_key=api_key, base_url=BASE, **options)  # type: ignore[arg-type]
    _fake(client, ft)
    client._driver.sleep = ft.sleep
    return client


@pytest.mark.parametrize("callable_key", [False, True], ids=["key string", "key callable"])
def test_an_echoed_key_is_in_no_error_and_no_log_line(
    api: respx.MockRouter, ft: FakeTime, caplog: pytest.LogCaptureFixture, callable_key: bool
) -> None:
    _echoing_routes(api)
    client = _sync_client(ft, (lambda: CANARY) if callable_key else CANARY)
    with (
        caplog.at_level(logging.DEBUG, logger="comet_replicate"),
        pytest.raises(UnprocessableEntityError) as info,
    ):
        client.predictions.get("p1")
    client.close()
    exc = info.value
    assert "retrying" in caplog.text and "<redacted>" in caplog.text  # the retry was logged, redacted
    assert CANARY not in caplog.text
    assert CANARY not in _everything_about(exc)
    assert CANARY not in json.dumps(exc.body) and CANARY not in exc.text
    assert exc.request_id == "req-<redacted>" and exc.status == 422


async def test_an_echoed_key_is_in_no_async_error(api: respx.MockRouter, ft: FakeTime) -> None:
    _echoing_routes(api)
    client = AsyncClient(api_key=CANARY, base_url=BASE)
    _fake(client, ft)
    client._driver.sleep = ft.asleep
    with pytest.raises(UnprocessableEntityError) as info:
        await client.predictions.get("p1")
    await client.close()
    assert CANARY not in _everything_about(info.value)


def test_an_echoed_key_in_a_200_body_and_its_headers_is_in_no_error_and_no_recording(
    api: respx.MockRouter, ft: FakeTime, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    echoed = {"logs": f"auth was Bearer {CANARY}", "error": f"upstream rejected {CANARY}"}
    api.post(CREATE_PATH).respond(201, headers=_echo_headers(), json=prediction("starting", **echoed))
    api.get("/predictions/p1").respond(200, headers=_echo_headers(), json=prediction("failed", **echoed))
    api.post("/predictions/p1/cancel").respond(500, headers=_echo_headers(), json={"error": CANARY})
    recorder = Recorder(tmp_path, BASE, api_key=None)  # no key given: the one each request carried
    http = httpx.Client(event_hooks={"response": [recorder.hook]})
    client = _sync_client(ft, CANARY, http_client=http)
    with caplog.at_level(logging.DEBUG, logger="comet_replicate"):
        with pytest.raises(PredictionFailed) as failed:
            client.run(MODEL, {"prompt": "boat"}, wait=False)
        with pytest.raises(InternalServerError) as server_error:
            client.with_options(max_retries=0).predictions.cancel("p1")
    client.close()
    http.close()
    assert CANARY not in _everything_about(failed.value)
    assert CANARY not in repr(failed.value.prediction) and CANARY not in str(failed.value.logs)
    assert CANARY not in _everything_about(server_error.value)
    assert CANARY not in caplog.text
    written = [path.read_text(encoding="utf-8") for path in recorder.paths]
    assert len(written) >= 3 and any("<redacted>" in text for text in written)
    assert all(CANARY not in text for text in written)
    assert any('"Location"' in text for text in written)  # the header is kept, redacted


@pytest.fixture
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("COMETAPI_KEY", raising=False)
    monkeypatch.delenv("COMETAPI_BASE_URL", raising=False)
    yield


@pytest.mark.usefixtures("no_env_key")
@pytest.mark.parametrize("cls", [Client, AsyncClient])
@pytest.mark.parametrize(
    "api_key",
    [CANARY, lambda: CANARY, f"{CANARY}\n"],
    ids=["key string", "key callable", "key with a line break"],
)
def test_a_failed_construction_leaves_no_key_in_captured_locals(
    cls: type[Client] | type[AsyncClient], api_key: str | Callable[[], str]
) -> None:
    with pytest.raises(CometReplicateError) as info:
        cls(api_key=api_key, base_url="http://evil.example")
    exc = info.value
    assert exc.__traceback__ is not None
    library_frames = exc.__traceback__.tb_next  # from Client.__init__ on (this test holds the key itself)
    captured = traceback.TracebackException(type(exc), exc, library_frames, capture_locals=True)
    rendered = "".join(captured.format())
    assert "evil.example" in rendered or "line break" in rendered
    assert CANARY not in rendered


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_a_half_built_client_has_a_repr(cls: type[Client] | type[AsyncClient]) -> None:
    half = object.__new__(cls)
    assert "api_key=<redacted>" in repr(half) and type(half).__name__ in repr(half)


def test_an_echoed_key_in_a_malformed_answer_is_in_no_connection_error() -> None:
    """h11 quotes an illegal header line in its error, and httpx keeps that text (and its cause)."""
    from tests.reliability._support import RawServer

    async def garbage(request, writer) -> None:  # type: ignore[no-untyped-def]
        writer.write(f"HTTP/1.1 200 OK\r\nX-Echo {CANARY}\r\n\r\n".encode())

    with RawServer({"*": garbage}) as server:
        client = Client(api_key=CANARY, base_url=server.base_url, max_retries=0)
        with pytest.raises(CometReplicateError) as info:
            client.predictions.get("p1")
        client.close()
    assert "<redacted>" in str(info.value)  # the server's text is shown, without the key
    assert CANARY not in _everything_about(info.value)
