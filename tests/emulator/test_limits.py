"""Account-wide rate limits as Replicate documents them: creates and other requests apart, per minute."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from comet_replicate_emulator import EmulatorConfig, ManualClock
from comet_replicate_emulator._limits import SlidingWindow

SCHNELL = "/replicate/v1/models/black-forest-labs/flux-schnell/predictions"
REPLICATE_SCHNELL = "/v1/models/black-forest-labs/flux-schnell/predictions"
BODY = {"input": {"prompt": "x"}}


async def _create(api: httpx.AsyncClient, path: str = SCHNELL) -> httpx.Response:
    return await api.post(path, json=BODY)


def test_sliding_window_frees_a_slot_exactly_a_minute_after_the_oldest_admission() -> None:
    window = SlidingWindow(2)
    assert window.admit(0.0) is None
    assert window.admit(10.0) is None
    assert window.admit(30.0) == 30.0  # the first admission leaves at 60
    assert window.admit(59.9) == pytest.approx(0.1)
    assert window.admit(60.0) is None  # sliding, not a fixed minute: one slot freed
    assert window.admit(65.0) == 5.0  # the 10.0 admission still holds the other slot


async def test_creates_above_create_rpm_get_429_with_retry_after_and_problem_details(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    clock: ManualClock,
) -> None:
    api = make_client(make_config(create_rpm=2))
    assert [(await _create(api, REPLICATE_SCHNELL)).status_code for _ in range(2)] == [201, 201]
    clock.advance(20)
    refused = await _create(api, REPLICATE_SCHNELL)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "40"
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["detail"] == "Request was throttled. Expected available in 40 seconds."
    assert refused.json()["status"] == 429
    stats = api.emulator_app.stats()  # type: ignore[attr-defined]
    assert stats["predictions_created"] == 2
    assert stats["throttled"] == {"create": 1} and stats["throttled_total"] == 1
    assert stats["faults"]["total"] == 0  # a limit, not an injected fault
    clock.advance(40)
    assert (await _create(api, REPLICATE_SCHNELL)).status_code == 201


async def test_cometapi_prefix_words_the_429_in_its_envelope(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig]
) -> None:
    api = make_client(make_config(create_rpm=1))
    await _create(api)
    refused = await _create(api)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "60"
    assert refused.json()["error"]["type"] == "comet_api_error"


async def test_creates_and_other_requests_are_limited_separately(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig]
) -> None:
    api = make_client(make_config(create_rpm=1, rpm=3))
    pid = (await _create(api)).json()["id"]
    polls = [(await api.get(f"/replicate/v1/predictions/{pid}")).status_code for _ in range(4)]
    assert polls == [200, 200, 200, 429]  # three others a minute, whatever the creates did
    assert (await api.post(f"/replicate/v1/predictions/{pid}/cancel")).status_code == 429  # shares "others"
    assert (await _create(api)).status_code == 429  # its own window is full too
    stats = api.emulator_app.stats()  # type: ignore[attr-defined]
    assert stats["throttled"] == {"get": 1, "cancel": 1, "create": 1}
    assert stats["requests"]["get"] == {"200": 3, "429": 1}


async def test_a_refused_request_does_not_use_up_the_window(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    clock: ManualClock,
) -> None:
    api = make_client(make_config(create_rpm=1))
    await _create(api)
    for _ in range(5):
        clock.advance(10)
        assert (await _create(api)).status_code == 429
    clock.advance(10)  # 60 s after the only admitted create
    assert (await _create(api)).status_code == 201


async def test_unauthenticated_requests_do_not_count_against_the_account(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig]
) -> None:
    api = make_client(make_config(create_rpm=1))
    for _ in range(3):
        assert (
            await api.post(SCHNELL, json=BODY, headers={"Authorization": "Bearer wrong"})
        ).status_code == 401
    assert (await _create(api)).status_code == 201


async def test_retry_after_is_in_wall_seconds_on_a_fast_clock(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig]
) -> None:
    api = make_client(make_config(clock=None, speed=60.0, create_rpm=1))
    await _create(api)
    refused = await _create(api)
    assert refused.status_code == 429
    assert 0.9 < float(refused.headers["retry-after"]) <= 1.0  # 60 emulator seconds at speed 60


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="create_rpm must be at least 1"):
        EmulatorConfig(create_rpm=0)
    with pytest.raises(ValueError, match="rpm must be at least 1"):
        EmulatorConfig(rpm=-5)


async def test_reset_empties_the_rate_limit_windows(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig]
) -> None:
    """A benchmark warms a fresh emulator, resets it, and must start its run with empty windows."""
    api = make_client(make_config(create_rpm=1, rpm=1))
    pid = (await _create(api)).json()["id"]
    await api.get(f"/replicate/v1/predictions/{pid}")
    assert (await _create(api)).status_code == 429
    assert (await api.post("/_emulator/reset")).json() == {"reset": True}
    again = await _create(api)
    assert again.status_code == 201 and again.json()["id"] == pid  # reseeded too: the same run again
    assert (await api.get(f"/replicate/v1/predictions/{pid}")).status_code == 200  # a poll slot was free
    assert api.emulator_app.stats()["throttled"] == {}  # type: ignore[attr-defined]
