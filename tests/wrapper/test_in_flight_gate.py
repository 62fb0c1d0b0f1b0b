"""AsyncClient queues requests beyond MAX_IN_FLIGHT in the client, not inside httpcore's pool.

httpcore rescans every waiting request against every connection on each acquire and release; 1,000
concurrent run()s queued there burn tens of seconds of CPU (benchmarks, section 3). The gate keeps
at most MAX_IN_FLIGHT requests in httpx; the rest wait on a per-event-loop semaphore, bounded by the
request's pool timeout exactly as httpx would bound them. Creates `run` holds open in sync mode have
slots of their own (`max_held_creates`, at most a quarter of the file-descriptor limit), skip the
queue and go through one transport of their own, which never has more connections in use than that,
keeps idle ones for the next burst and closes all of them on exit; beyond them, runs create without
waiting and poll.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import httpx
import pytest
import respx
from comet_replicate import APITimeoutError, AsyncClient
from comet_replicate._constants import DEFAULT_LIMITS, MAX_IN_FLIGHT, POOL_SPARE
from comet_replicate._http import AsyncApiClient, held_create_limit, held_limits, pool_limits
from comet_replicate._transport import HeldTransport

from tests._wire import QuietHandler, WireServer, serving

from .conftest import BASE, KEY, prediction


class InFlight:
    """Counts requests inside the (mocked) transport at the same time."""

    def __init__(self, hold: asyncio.Event | None = None) -> None:
        self.now = 0
        self.peak = 0
        self.hold = hold

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            if self.hold is not None:
                await self.hold.wait()
            else:
                for _ in range(3):
                    await asyncio.sleep(0)
        finally:
            self.now -= 1
        pid = request.url.path.rsplit("/", 1)[-1]
        return httpx.Response(200, json=prediction("processing", id=pid))


def test_no_more_than_max_in_flight_requests_reach_httpx_and_all_complete() -> None:
    counter = InFlight()

    async def main() -> list[str]:
        async with AsyncClient(api_key=KEY, base_url=BASE) as client:
            preds = await asyncio.gather(*(client.predictions.get(f"p{i}") for i in range(3 * MAX_IN_FLIGHT)))
        return [p.id for p in preds]

    with respx.mock(base_url=BASE, assert_all_called=False) as api:
        api.get(path__regex=r"/predictions/p\d+").mock(side_effect=counter)
        ids = asyncio.run(main())
    assert ids == [f"p{i}" for i in range(3 * MAX_IN_FLIGHT)]
    assert counter.peak == MAX_IN_FLIGHT
    assert counter.now == 0


def test_a_client_reused_across_event_loops_keeps_working() -> None:
    counter = InFlight()
    client = AsyncClient(api_key=KEY, base_url=BASE)

    async def batch() -> int:
        preds = await asyncio.gather(*(client.predictions.get(f"p{i}") for i in range(MAX_IN_FLIGHT + 5)))
        return len(preds)

    with respx.mock(base_url=BASE, assert_all_called=False) as api:
        api.get(path__regex=r"/predictions/p\d+").mock(side_effect=counter)
        assert asyncio.run(batch()) == MAX_IN_FLIGHT + 5
        assert asyncio.run(batch()) == MAX_IN_FLIGHT + 5
    assert counter.peak == MAX_IN_FLIGHT


def test_waiting_for_a_slot_is_bounded_by_the_pool_timeout_and_not_sent() -> None:
    async def main() -> tuple[list[object], int]:
        hold = asyncio.Event()
        counter = InFlight(hold)
        with respx.mock(base_url=BASE, assert_all_called=False) as api:
            api.get(path__regex=r"/predictions/p\d+").mock(side_effect=counter)
            client = AsyncClient(api_key=KEY, base_url=BASE, max_retries=0).with_options(
                timeout=httpx.Timeout(30.0, pool=0.05)
            )
            busy = [asyncio.ensure_future(client.predictions.get(f"p{i}")) for i in range(MAX_IN_FLIGHT)]
            while counter.now < MAX_IN_FLIGHT:
                await asyncio.sleep(0)
            with pytest.raises(APITimeoutError) as excinfo:
                await client.predictions.get("p999")
            hold.set()
            done = await asyncio.gather(*busy)
        return [excinfo.value, *done], counter.peak

    results, peak = asyncio.run(main())
    error = results[0]
    assert "PoolTimeout" in str(error)
    assert error.prediction_id == "p999"  # type: ignore[attr-defined]
    assert len(results) == MAX_IN_FLIGHT + 1
    assert peak == MAX_IN_FLIGHT


def test_a_caller_supplied_http_client_is_not_gated() -> None:
    counter = InFlight()

    async def main() -> None:
        async with httpx.AsyncClient() as http:
            client = AsyncClient(api_key=KEY, base_url=BASE, http_client=http)
            await asyncio.gather(*(client.predictions.get(f"p{i}") for i in range(MAX_IN_FLIGHT + 20)))

    with respx.mock(base_url=BASE, assert_all_called=False) as api:
        api.get(path__regex=r"/predictions/p\d+").mock(side_effect=counter)
        asyncio.run(main())
    assert counter.peak == MAX_IN_FLIGHT + 20


def _held_run_api(api: respx.MockRouter, hold: asyncio.Event, counter: InFlight) -> list[str | None]:
    """Creates that hold until `hold` is set (sync mode) or answer at once (no wait); polls succeed."""
    prefers: list[str | None] = []

    async def create(request: httpx.Request) -> httpx.Response:
        prefer = request.headers.get("prefer")
        prefers.append(prefer)
        if prefer is None:
            return httpx.Response(201, json=prediction("starting", id=f"n{len(prefers)}"))
        counter.now += 1
        counter.peak = max(counter.peak, counter.now)
        try:
            await hold.wait()
        finally:
            counter.now -= 1
        return httpx.Response(
            201, json=prediction("succeeded", id=f"h{len(prefers)}", output=["https://x.test/a.png"])
        )

    api.post(path__regex=r"/models/.+/predictions").mock(side_effect=create)
    api.get(path__regex=r"/predictions/.+").mock(
        side_effect=lambda request: httpx.Response(
            200,
            json=prediction(
                "succeeded", id=request.url.path.rsplit("/", 1)[-1], output=["https://x.test/a.png"]
            ),
        )
    )
    return prefers


def _runs(client: AsyncClient, n: int) -> list[asyncio.Future[Any]]:
    """`n` concurrent runs of one model on `client`, started now."""
    return [
        asyncio.ensure_future(client.run("black-forest-labs/flux-schnell", {"prompt": "a"})) for _ in range(n)
    ]


def test_held_creates_skip_the_in_flight_queue_up_to_max_held_creates_and_the_rest_poll() -> None:
    n = 3 * MAX_IN_FLIGHT
    held = 2 * MAX_IN_FLIGHT
    counter = InFlight()

    async def main() -> int:
        hold = asyncio.Event()
        prefers = _held_run_api(api, hold, counter)
        async with AsyncClient(api_key=KEY, base_url=BASE, rate_limits=None, max_held_creates=held) as client:
            runs = _runs(client, n)
            while len(prefers) < n:
                await asyncio.sleep(0.01)
            peak = counter.peak  # every held create is open at once, past the queue of MAX_IN_FLIGHT
            hold.set()
            await asyncio.gather(*runs)
        assert prefers.count("wait=60") == held and prefers.count(None) == n - held
        return peak

    with respx.mock(base_url=BASE, assert_all_called=False) as api:
        assert asyncio.run(main()) == held


@pytest.mark.parametrize("value", [-1, 1.5, True, "600"])
def test_max_held_creates_that_makes_no_sense_is_refused_by_name(value: object) -> None:
    with pytest.raises(ValueError, match="max_held_creates"):
        AsyncClient(api_key=KEY, base_url=BASE, max_held_creates=value)  # type: ignore[arg-type]


def test_held_creates_never_take_more_than_a_quarter_of_the_file_descriptor_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda which: (1024, 4096))
    assert held_create_limit(600) == 256
    assert held_create_limit(100) == 100
    assert held_create_limit(0) == 0
    assert pool_limits(256).max_connections == MAX_IN_FLIGHT + 256 + POOL_SPARE


class _HeldServer(WireServer):
    """Answers creates with a finished prediction, each held until `release` is set; records the
    client port of each create (one port per connection the client opened)."""

    def __init__(self) -> None:
        super().__init__(_HeldHandler)
        self.ports: list[int] = []
        self.release = threading.Event()


class _HeldHandler(QuietHandler):
    server: _HeldServer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.server.ports.append(self.client_address[1])
        self.server.release.wait(10.0)
        body = prediction("succeeded", id=f"h{len(self.server.ports)}", output=["https://x.test/a.png"])
        self.answer(201, {"content-type": "application/json"}, json.dumps(body).encode())


def test_an_async_client_with_its_own_pool_holds_creates_on_one_transport_sized_by_max_held_creates() -> None:
    held = 2 * MAX_IN_FLIGHT + 1
    limits = held_limits(held)
    # at most max_held_creates connections in use, and as many kept idle for the next burst
    assert (limits.max_connections, limits.max_keepalive_connections) == (held, held)

    async def main() -> None:
        async with AsyncClient(api_key=KEY, base_url=BASE, max_held_creates=held) as client:
            held_http = client._driver.held_http
            assert isinstance(held_http, AsyncApiClient) and isinstance(held_http.direct, HeldTransport)
            assert held_http is not client._driver.http  # never queued behind short requests
        assert held_http.is_closed
        async with AsyncClient(api_key=KEY, base_url=BASE, max_held_creates=0) as client:
            assert client._driver.held_http is None
        async with (
            httpx.AsyncClient() as mine,
            AsyncClient(api_key=KEY, base_url=BASE, http_client=mine) as client,
        ):
            assert client._driver.held_http is None  # a caller's client carries everything

    asyncio.run(main())


def test_short_requests_are_not_starved_while_every_held_create_is_open() -> None:
    held = 2 * MAX_IN_FLIGHT
    counter = InFlight()

    async def main() -> list[str]:
        hold = asyncio.Event()
        prefers = _held_run_api(api, hold, counter)
        async with AsyncClient(api_key=KEY, base_url=BASE, rate_limits=None, max_held_creates=held) as client:
            runs = _runs(client, held)
            while counter.now < held:
                await asyncio.sleep(0.01)
            gets = await asyncio.gather(*(client.predictions.get(f"g{i}") for i in range(2 * MAX_IN_FLIGHT)))
            assert counter.now == held  # every held create was still open while the gets went through
            hold.set()
            await asyncio.gather(*runs)
        assert prefers.count("wait=60") == held
        return [str(p.id) for p in gets]

    with respx.mock(base_url=BASE, assert_all_called=False) as api:
        assert asyncio.run(main()) == [f"g{i}" for i in range(2 * MAX_IN_FLIGHT)]
    assert counter.peak == held


def test_held_creates_reuse_idle_connections_burst_after_burst_and_close_them_on_exit() -> None:
    async def main(server: _HeldServer) -> tuple[int, int]:
        client = AsyncClient(api_key=KEY, base_url=server.base_url, rate_limits=None, max_held_creates=3)
        held_http = client._driver.held_http
        assert held_http is not None and isinstance(held_http.direct, HeldTransport)
        transport = held_http.direct
        async with client:
            server.release.set()
            for _ in range(4):  # one after another: one connection, kept alive and reused
                await client.run("black-forest-labs/flux-schnell", {"prompt": "a"})
            assert len(set(server.ports)) == 1
            server.release.clear()
            seen = len(server.ports)
            for _burst in range(2):  # three at once, twice: three connections, all kept for the next burst
                runs = _runs(client, 3)
                while len(server.ports) < seen + 3:
                    await asyncio.sleep(0.01)
                seen += 3
                assert transport.connections == (3, 0)  # never more open than held creates at once
                server.release.set()
                await asyncio.gather(*runs)
                server.release.clear()
                assert transport.connections == (3, 3)
            opened = len(set(server.ports))
        return opened, transport.connections[0]

    with serving(_HeldServer()) as server:
        opened, left_open = asyncio.run(main(server))
    assert len(server.ports) == 10
    assert opened == 3
    assert left_open == 0


def test_every_api_pool_gives_idle_connections_up_before_common_servers_close_them() -> None:
    # uvicorn and Node.js close an idle connection after 5 s: a create written on one as it closes
    # would be a lost create, so the client must drop it first (KEEPALIVE_EXPIRY's docstring).
    for limits in (DEFAULT_LIMITS, pool_limits(10), held_limits(10), held_limits(1)):
        assert limits.keepalive_expiry is not None and 0 < limits.keepalive_expiry < 5.0
