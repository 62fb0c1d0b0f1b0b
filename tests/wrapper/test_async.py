"""AsyncClient has the same surface and makes the same decisions as Client (one shared core)."""

from __future__ import annotations

import asyncio
import inspect
import json
from typing import Any

import httpx
import pytest
import respx
from comet_replicate import AsyncClient, Client, PredictionAborted, PredictionTimeout, UnexpectedStatus

from .conftest import CREATE_PATH, FakeTime, prediction

MODEL = "black-forest-labs/flux-schnell"
OUT = ["https://replicate.delivery/x/out-0.webp"]


def test_sync_and_async_surfaces_match() -> None:
    for sync_obj, async_obj in (
        (Client, AsyncClient),
        (Client(api_key="k").predictions, AsyncClient(api_key="k").predictions),
    ):
        sync_names = {n for n in dir(sync_obj) if not n.startswith("_")}
        async_names = {n for n in dir(async_obj) if not n.startswith("_")}
        assert sync_names == async_names
        for name in sync_names:
            s, a = getattr(sync_obj, name), getattr(async_obj, name)
            if callable(s) and not isinstance(s, type):
                assert inspect.signature(s).parameters.keys() == inspect.signature(a).parameters.keys(), name


def _scenario(api: respx.MockRouter) -> None:
    api.post(CREATE_PATH).respond(201, json=prediction("starting"))
    api.get("/predictions/p1").mock(
        side_effect=[
            httpx.Response(503, text="busy"),
            httpx.Response(200, json=prediction("processing")),
            httpx.Response(429, headers={"Retry-After": "2"}, json={"detail": "slow"}),
            httpx.Response(200, json=prediction("processing", logs="50%")),
            httpx.Response(200, json=prediction("succeeded", output=OUT)),
        ]
    )


def _trace(api: respx.MockRouter) -> list[tuple[str, str, str]]:
    return [(c.request.method, str(c.request.url), c.request.headers.get("prefer", "")) for c in api.calls]


async def test_sync_and_async_make_the_same_requests_and_sleeps(ft: FakeTime, aclient: AsyncClient) -> None:
    sync_time = FakeTime()
    with respx.mock(base_url="https://api.cometapi.com/replicate/v1") as api:
        _scenario(api)
        c = Client(api_key="k")
        from .conftest import _fake

        _fake(c, sync_time)
        c._driver.sleep = sync_time.sleep
        updates: list[str] = []
        files = await asyncio.to_thread(
            c.run, MODEL, {"prompt": "b"}, on_update=lambda p: updates.append(str(p.status))
        )
        sync_trace = _trace(api)
    with respx.mock(base_url="https://api.cometapi.com/replicate/v1") as api:
        _scenario(api)
        aupdates: list[str] = []

        async def on_update(p: Any) -> None:
            aupdates.append(str(p.status))

        afiles = await aclient.run(MODEL, {"prompt": "b"}, on_update=on_update)
        async_trace = _trace(api)
    assert files == afiles
    assert sync_trace == async_trace
    assert sync_time.sleeps == ft.sleeps
    assert updates == aupdates == ["processing", "processing", "succeeded"]


async def test_async_create_get_cancel_wait(aclient: AsyncClient, api: respx.MockRouter) -> None:
    api.post(CREATE_PATH).respond(201, json=prediction("starting"))
    api.get("/predictions/p1").mock(
        side_effect=[
            httpx.Response(200, json=prediction("processing")),
            httpx.Response(200, json=prediction("aborted")),
        ]
    )
    api.post("/predictions/p1/cancel").respond(200, json=prediction("canceled"))
    p = await aclient.predictions.create(MODEL, {"prompt": "b"}, wait=5)
    assert json.loads(api.calls.last.request.content) == {"input": {"prompt": "b"}}
    assert (await aclient.predictions.get("p1")).status == "processing"
    with pytest.raises(PredictionAborted) as info:
        await aclient.predictions.wait(p)
    assert info.value.prediction_id == "p1"
    assert (await aclient.predictions.cancel("p1")).status == "canceled"


async def test_async_unknown_status_and_deadline(aclient: AsyncClient, api: respx.MockRouter) -> None:
    api.get("/predictions/p1").respond(200, json=prediction("mystery"))
    with pytest.raises(UnexpectedStatus):
        await aclient.predictions.wait("p1")
    api.get("/predictions/p2").respond(200, json=prediction("processing", id="p2"))
    with pytest.raises(PredictionTimeout) as info:
        await aclient.predictions.wait("p2", timeout=3)
    assert info.value.prediction_id == "p2"


async def test_async_resume_and_with_options(aclient: AsyncClient, api: respx.MockRouter) -> None:
    api.get("/predictions/p1").respond(200, json=prediction("succeeded", output=OUT))
    files = await aclient.with_options(max_retries=0).resume("p1")
    assert [f.url for f in files] == OUT


async def test_many_concurrent_runs_on_one_client_queue_instead_of_failing(
    aclient: AsyncClient, api: respx.MockRouter
) -> None:
    counter = iter(range(10_000))

    def create(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json=prediction("succeeded", id=f"p{next(counter)}", output=OUT))

    api.post(CREATE_PATH).mock(side_effect=create)
    results = await asyncio.gather(*(aclient.run(MODEL, {"prompt": "b"}) for _ in range(200)))
    assert len(results) == 200 and all(r[0].url == OUT[0] for r in results)
    assert aclient.timeout.pool is None


async def test_async_raw_responses(aclient: AsyncClient, api: respx.MockRouter) -> None:
    api.post("/predictions/p1/cancel").respond(
        200, json=prediction("canceled"), headers={"x-request-id": "r-2"}
    )
    raw = await aclient.predictions.with_raw_response.cancel("p1")
    assert raw.headers["x-request-id"] == "r-2" and raw.parsed is not None and raw.parsed.status == "canceled"
