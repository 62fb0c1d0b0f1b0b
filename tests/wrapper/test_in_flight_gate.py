"""AsyncClient queues requests beyond MAX_IN_FLIGHT in the client, not inside httpcore's pool.

httpcore rescans every waiting request against every connection on each acquire and release; 1,000
concurrent run()s queued there burn tens of seconds of CPU (benchmarks, section 3). The gate keeps
at most MAX_IN_FLIGHT requests in httpx; the rest wait on a per-event-loop semaphore, bounded by the
request's pool timeout exactly as httpx would bound them.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
import respx
from comet_replicate import APITimeoutError, AsyncClient
from comet_replicate._constants import MAX_IN_FLIGHT

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
