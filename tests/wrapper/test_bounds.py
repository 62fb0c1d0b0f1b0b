"""Every request and download is bounded by what is left of the caller's deadline, every body by a
cap, in both drivers (issue 13 items 2, 3, 14). The servers here drip or flood through httpx mock
transports; each would complete (or fill memory) if the bound did not hold."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from comet_replicate import (
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    Client,
    CometReplicateError,
    CreateOutcomeUnknown,
    FileOutput,
    PredictionTimeout,
)
from comet_replicate._files import Downloader

from .conftest import KEY, prediction

BASE = "http://127.0.0.1:9/replicate/v1"
MODEL = "black-forest-labs/flux-schnell"
DRIP = 0.05
DRIPS = 200  # 10 s: far past every deadline below, and then a valid answer


def _done() -> bytes:
    return json.dumps(prediction("succeeded", output=["https://delivery.test/p1/out-0.webp"])).encode()


class SyncDrip(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        for _ in range(DRIPS):
            yield b" "
            time.sleep(DRIP)
        yield _done()


class AsyncDrip(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(DRIPS):
            yield b" "
            await asyncio.sleep(DRIP)
        yield _done()


class SyncFlood(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        while True:
            yield b" " * 65536


def _dripping(path_part: str, is_async: bool) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        if path_part in request.url.path:
            return httpx.Response(
                200,
                headers={"content-type": "application/json"},
                stream=AsyncDrip() if is_async else SyncDrip(),
            )
        return httpx.Response(201, json=prediction("starting"))

    if not is_async:
        return httpx.MockTransport(answer)

    async def async_answer(request: httpx.Request) -> httpx.Response:
        return answer(request)

    return httpx.MockTransport(async_answer)


def test_a_dripping_poll_cannot_hold_a_sync_wait_past_its_deadline() -> None:
    with httpx.Client(transport=_dripping("/predictions/", False)) as http:
        client = Client(api_key=KEY, base_url=BASE, http_client=http)
        with pytest.raises(PredictionTimeout):
            client.predictions.wait("p1", timeout=1)


async def test_a_dripping_poll_cannot_hold_an_async_wait_past_its_deadline() -> None:
    async with httpx.AsyncClient(transport=_dripping("/predictions/", True)) as http:
        client = AsyncClient(api_key=KEY, base_url=BASE, http_client=http)
        with pytest.raises(PredictionTimeout):
            await client.predictions.wait("p1", timeout=1)


def test_a_dripping_create_ends_run_by_its_deadline_as_an_unknown_outcome() -> None:
    with httpx.Client(transport=_dripping("/models/", False)) as http:
        client = Client(api_key=KEY, base_url=BASE, http_client=http)
        with pytest.raises(CreateOutcomeUnknown):
            client.run(MODEL, {"prompt": "b"}, timeout=1, wait=None)


async def test_a_dripping_create_ends_an_async_run_by_its_deadline_as_an_unknown_outcome() -> None:
    async with httpx.AsyncClient(transport=_dripping("/models/", True)) as http:
        client = AsyncClient(api_key=KEY, base_url=BASE, http_client=http)
        with pytest.raises(CreateOutcomeUnknown):
            await client.run(MODEL, {"prompt": "b"}, timeout=1, wait=None)


def test_an_endless_api_body_is_cut_at_the_cap_with_an_error_naming_it() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, stream=SyncFlood()))
    with httpx.Client(transport=transport) as http:
        client = Client(
            api_key=KEY, base_url=BASE, http_client=http, max_response_bytes=1_000_000, max_retries=0
        )
        with pytest.raises(APIConnectionError, match=r"1,000,000-byte cap \(max_response_bytes\)"):
            client.predictions.get("p1")


def test_an_announced_oversize_api_body_is_refused_unread() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-length": "999999999"}, stream=SyncFlood())

    with httpx.Client(transport=httpx.MockTransport(answer)) as http:
        client = Client(api_key=KEY, base_url=BASE, http_client=http, max_retries=0)
        with pytest.raises(APIConnectionError, match="max_response_bytes"):
            client.predictions.get("p1")


def test_a_dripping_download_ends_by_the_callers_timeout() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "image/png"}, stream=SyncDrip())

    output = FileOutput(
        "https://delivery.test/p1/out-0.png", Downloader(transport=httpx.MockTransport(answer))
    )
    with pytest.raises(APITimeoutError):
        output.read(timeout=0.5)


def test_a_redirect_to_a_metadata_address_is_refused_before_it_is_followed() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.host == "delivery.test":
            return httpx.Response(302, headers={"location": "http://169.254.169.254/latest/meta-data/"})
        return httpx.Response(200, content=b"secret")

    output = FileOutput(
        "https://delivery.test/p1/out-0.png", Downloader(transport=httpx.MockTransport(answer))
    )
    with pytest.raises(CometReplicateError, match="link-local"):
        output.read()
    assert seen == ["https://delivery.test/p1/out-0.png"]
    allowed = Downloader(transport=httpx.MockTransport(answer), allow_link_local=True)
    assert FileOutput("https://delivery.test/p1/out-0.png", allowed).read() == b"secret"


def test_clients_refuse_link_local_outputs_unless_told() -> None:
    with Client(api_key=KEY, base_url=BASE) as client:
        assert client._downloader.allow_link_local is False
    with Client(api_key=KEY, base_url=BASE, allow_link_local_downloads=True) as client:
        assert client._downloader.allow_link_local is True
