"""Both drivers honour the bounds an effect carries; `with_options` copies share what they learn.

The cancel on exit is bounded as a property of its effect (`CANCEL_ON_EXIT_TOTAL`), so it holds in
the sync driver as in the async one: a cancel endpoint that answers one byte at a time (each read
well inside the read timeout) is abandoned, and the error says the cancel was not confirmed. If the
bound did not hold, the dripped answer would complete as a valid `canceled` prediction.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from comet_replicate import AsyncClient, Client, PredictionTimeout
from comet_replicate._constants import CANCEL_ON_EXIT_TOTAL
from comet_replicate._drivers import AsyncDriver
from comet_replicate.core.effects import Http

from .conftest import CREATE_PATH, KEY, prediction

BASE = "http://127.0.0.1:9/replicate/v1"
DRIP_SECONDS = 0.25
CHUNKS = int(4 * CANCEL_ON_EXIT_TOTAL / DRIP_SECONDS)  # the whole answer takes 4x the bound


def _canceled_body() -> bytes:
    return json.dumps(prediction("canceled")).encode()


class SyncDrip(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        for _ in range(CHUNKS):
            yield b" "
            time.sleep(DRIP_SECONDS)
        yield _canceled_body()


class AsyncDrip(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(CHUNKS):
            yield b" "
            await asyncio.sleep(DRIP_SECONDS)
        yield _canceled_body()


def _answer(request: httpx.Request, drip: httpx.SyncByteStream | httpx.AsyncByteStream) -> httpx.Response:
    if request.url.path.endswith("/cancel"):
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=drip)
    return httpx.Response(200, json=prediction("processing"))


def test_the_sync_driver_bounds_the_cancel_on_exit() -> None:
    http = httpx.Client(transport=httpx.MockTransport(lambda r: _answer(r, SyncDrip())))
    client = Client(api_key=KEY, base_url=BASE, http_client=http)
    with http, client, pytest.raises(PredictionTimeout) as info:
        client.predictions.wait("p1", timeout=0.5, cancel_on_exit=True)
    assert info.value.cancel_requested is False


async def test_the_async_driver_bounds_the_cancel_on_exit() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return _answer(request, AsyncDrip())

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = AsyncClient(api_key=KEY, base_url=BASE, http_client=http)
    async with http, client:
        with pytest.raises(PredictionTimeout) as info:
            await client.predictions.wait("p1", timeout=0.5, cancel_on_exit=True)
    assert info.value.cancel_requested is False


def _refusing_optional_headers(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "prefer" in request.headers or "cancel-after" in request.headers:
            return httpx.Response(
                400, json={"error": {"message": "unknown header", "type": "comet_api_error"}}
            )
        return httpx.Response(201, json=prediction("starting"))

    return httpx.MockTransport(handler)


@pytest.mark.parametrize("learner", ["original", "copy"])
def test_a_refusal_of_the_optional_headers_learned_by_one_copy_holds_for_all(learner: str) -> None:
    seen: list[httpx.Request] = []
    http = httpx.Client(transport=_refusing_optional_headers(seen))
    with http, Client(api_key=KEY, base_url=BASE, http_client=http) as client:
        copy = client.with_options(timeout=5, max_retries=0)
        first, other = (client, copy) if learner == "original" else (copy, client)
        first.predictions.create("black-forest-labs/flux-schnell", {"prompt": "b"}, wait=5)
        assert [("prefer" in r.headers) for r in seen] == [True, False]  # refused once, then learned
        other.predictions.create("black-forest-labs/flux-schnell", {"prompt": "b"}, wait=5, cancel_after=30)
        third = client.with_options(max_retries=1)
        third.predictions.create("black-forest-labs/flux-schnell", {"prompt": "b"}, wait=5)
    assert len(seen) == 4
    assert all("prefer" not in r.headers and "cancel-after" not in r.headers for r in seen[1:])
    assert all(r.url.path.endswith(CREATE_PATH) for r in seen)


def test_copies_share_learned_durations_and_connections() -> None:
    with Client(api_key=KEY, base_url=BASE) as client:
        copy = client.with_options(max_retries=0)
        copy.estimator.observe("m", 1.5)
        assert client.estimator.samples("m") == [1.5]
        assert copy._http is client._http
        copy.close()
        assert not client._http.is_closed


def _one_shielded_request() -> Any:
    reply = yield Http("POST", "http://api.test/v1/x", {}, {}, httpx.Timeout(5.0), shield=True)
    return reply


async def _run_and_cancel(guarded: bool) -> tuple[bool, bool, bool]:
    """A shielded request whose answer waits for `answer`, its run cancelled once the request is in:
    (sent in the caller's task, answered, the run ended with CancelledError)."""
    started, answer = asyncio.Event(), asyncio.Event()
    seen: list[asyncio.Task[Any] | None] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(asyncio.current_task())
        started.set()
        await answer.wait()
        return httpx.Response(201, json=prediction("starting"))

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        driver = AsyncDriver(http, owns_http=False)
        run = asyncio.ensure_future(driver.run(_one_shielded_request(), guarded=guarded))
        await started.wait()
        run.cancel()
        await asyncio.sleep(0.01)
        answered = not run.done()  # still waiting for the answer: the cancel is held
        answer.set()
        with pytest.raises(asyncio.CancelledError):
            await run
    return seen == [run], answered, run.cancelled()


async def test_an_unguarded_run_holds_a_cancel_until_a_shielded_request_is_answered() -> None:
    in_callers_task, held, cancelled = await _run_and_cancel(guarded=False)
    assert not in_callers_task  # the exchange runs in a task of its own, shielded
    assert held and cancelled


async def test_a_guarded_run_sends_a_shielded_request_in_the_callers_own_task() -> None:
    # the caller (a batch line) keeps its task from being cancelled: no task and shield of its own
    in_callers_task, held, cancelled = await _run_and_cancel(guarded=True)
    assert in_callers_task
    assert not held and cancelled
