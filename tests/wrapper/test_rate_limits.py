"""`rate_limits=` and `client.rate_limits`: one pacer per client family, visible and configurable."""

from __future__ import annotations

import httpx
import pytest
import respx
from comet_replicate import AsyncClient, Client, RateLimit, RateLimits, RateLimitState

from .conftest import BASE, CREATE_PATH, KEY, FakeTime, prediction

MODEL = "black-forest-labs/flux-schnell"


def test_the_defaults_are_replicates_documented_limits(client: Client) -> None:
    state = client.rate_limits
    assert isinstance(state, RateLimitState)
    assert (state.create.limit, state.create.per) == (600, 60.0)
    assert (state.other.limit, state.other.per) == (3000, 60.0)
    assert state.create.allowed == 600 and state.create.queued == 0


def test_with_options_copies_share_one_pacer(client: Client, api: respx.MockRouter) -> None:
    api.post(CREATE_PATH).respond(201, json=prediction())
    api.get("/predictions/p1").respond(200, json=prediction())
    other = client.with_options(timeout=5, max_retries=0)
    other.predictions.create(MODEL, {"prompt": "a"})
    client.predictions.get("p1")
    for view in (client.rate_limits, other.rate_limits):
        assert view is not None
        assert (view.create.granted, view.other.granted) == (1, 1)


def test_a_throttled_copy_slows_the_whole_family(client: Client, api: respx.MockRouter, ft: FakeTime) -> None:
    api.get("/predictions/p1").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "2"}, json={"detail": "slow down", "status": 429}),
            httpx.Response(200, json=prediction()),
        ]
    )
    client.with_options(max_retries=1).predictions.get("p1")
    state = client.rate_limits
    assert state is not None
    assert state.other.throttled == 1 and state.other.allowed < 3000
    assert ft.sleeps == [2.0]


def test_configured_limits_pace_the_client(ft: FakeTime) -> None:
    limits = RateLimits(create=RateLimit(1, per=10.0))
    with Client(api_key=KEY, base_url=BASE, rate_limits=limits) as client, respx.mock(base_url=BASE) as api:
        shared = client._state.shared
        shared.clock, shared.wall_clock = ft.clock, ft.wall
        client._driver.sleep = ft.sleep
        api.post(CREATE_PATH).respond(201, json=prediction())
        client.predictions.create(MODEL, {"prompt": "a"})
        client.predictions.create(MODEL, {"prompt": "b"})
        assert ft.sleeps == [pytest.approx(10.25)]
        state = client.rate_limits
        assert state is not None and state.create.limit == 1


async def test_rate_limits_none_turns_pacing_off() -> None:
    async with AsyncClient(api_key=KEY, base_url=BASE, rate_limits=None) as client:
        assert client.rate_limits is None
        assert client.with_options(timeout=3).rate_limits is None


@pytest.mark.parametrize("value", [600, {"create": 600}, RateLimit(600)])
def test_rate_limits_of_the_wrong_type_are_refused_by_name(value: object) -> None:
    with pytest.raises(ValueError, match="rate_limits must be a RateLimits"):
        Client(api_key=KEY, base_url=BASE, rate_limits=value)  # type: ignore[arg-type]
