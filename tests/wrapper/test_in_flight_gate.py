"""AsyncClient queues requests beyond MAX_IN_FLIGHT in the client, not inside httpcore's pool.

httpcore rescans every waiting request against every connection on each acquire and release; 1,000
concurrent run()s queued there burn tens of seconds of CPU (benchmarks, section 3). The gate keeps
at most MAX_IN_FLIGHT requests in httpx; the rest wait on a per-event-loop semaphore, bounded by the
request's pool timeout exactly as httpx would bound them. Creates `run` holds open in sync mode have
slots of their own (`max_held_creates`, at most a quarter of the file-descriptor limit), skip the
queue and go through small pools of their own; beyond them, runs create without waiting and poll.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest
import respx
from comet_replicate import APITimeoutError, AsyncClient
from comet_replicate._constants import DEFAULT_LIMITS, HELD_POOL_SIZE, MAX_IN_FLIGHT, POOL_SPARE
from comet_replicate._exchange import HeldPools
from comet_replicate._http import held_create_limit, held_pool_limits, pool_limits

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


def test_held_creates_skip_the_in_flight_queue_up_to_max_held_creates_and_the_rest_poll() -> None:
    n = 3 * MAX_IN_FLIGHT
    held = 2 * MAX_IN_FLIGHT
    counter = InFlight()

    async def main() -> int:
        hold = asyncio.Event()
        prefers = _held_run_api(api, hold, counter)
        async with AsyncClient(api_key=KEY, base_url=BASE, rate_limits=None, max_held_creates=held) as client:
            runs = [
                asyncio.ensure_future(client.run("black-forest-labs/flux-schnell", {"prompt": "a"}))
                for _ in range(n)
            ]
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


def _recording_pools(count: int) -> tuple[HeldPools, list[httpx.AsyncClient]]:
    """Held pools whose factory records each pool it opens, in order."""
    made: list[httpx.AsyncClient] = []

    def factory() -> httpx.AsyncClient:
        made.append(httpx.AsyncClient())
        return made[-1]

    return HeldPools(factory, count), made


def test_concurrent_held_creates_spread_over_small_pools_opened_on_first_use_and_all_closed() -> None:
    pools, made = _recording_pools(3)

    async def main() -> None:
        assert made == []
        with contextlib.ExitStack() as held:
            taken = [held.enter_context(pools.take()) for _ in range(7)]
            assert len(made) == 3
            assert taken == [made[0], made[1], made[2], made[0], made[1], made[2], made[0]]
        await pools.aclose()
        assert all(pool.is_closed for pool in made)

    asyncio.run(main())


def test_held_creates_one_after_another_keep_using_the_first_pool_so_its_connection_is_reused() -> None:
    pools, made = _recording_pools(3)

    async def main() -> None:
        for _ in range(5):
            with pools.take() as pool:
                assert pool is made[0]
        assert len(made) == 1  # a rotation would have opened all three, each connection left to expire
        with pools.take() as first, pools.take() as second:
            assert (first, second) == (made[0], made[1])
        with pools.take() as again:  # the busy count went back down when each block ended
            assert again is made[0]
        with pytest.raises(RuntimeError), pools.take():
            raise RuntimeError("a create that failed")
        with pools.take() as a, pools.take() as b:  # ... also when a block ended with an error
            assert (a, b) == (made[0], made[1])
        await pools.aclose()

    asyncio.run(main())


def test_an_async_client_with_its_own_pool_holds_creates_in_pools_of_held_pool_size() -> None:
    async def main() -> None:
        async with AsyncClient(api_key=KEY, base_url=BASE, max_held_creates=2 * HELD_POOL_SIZE + 1) as client:
            pools = client._driver.held_pools
            assert pools is not None and pools.count == 3
        async with AsyncClient(api_key=KEY, base_url=BASE, max_held_creates=0) as client:
            assert client._driver.held_pools is None
        async with (
            httpx.AsyncClient() as mine,
            AsyncClient(api_key=KEY, base_url=BASE, http_client=mine) as client,
        ):
            assert client._driver.held_pools is None  # a caller's client carries everything

    asyncio.run(main())


def test_every_api_pool_gives_idle_connections_up_before_common_servers_close_them() -> None:
    # uvicorn and Node.js close an idle connection after 5 s: a create written on one as it closes
    # would be a lost create, so the client must drop it first (KEEPALIVE_EXPIRY's docstring).
    for limits in (DEFAULT_LIMITS, pool_limits(10), held_pool_limits(10), held_pool_limits(HELD_POOL_SIZE)):
        assert limits.keepalive_expiry is not None and 0 < limits.keepalive_expiry < 5.0
