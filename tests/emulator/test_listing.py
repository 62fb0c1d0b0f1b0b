"""`GET .../predictions`: newest first, cursor pages, time and source filters, only the caller's own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from comet_replicate_emulator import EmulatorConfig, ManualClock

SCHNELL = "/replicate/v1/models/black-forest-labs/flux-schnell/predictions"
BODY = {"input": {"prompt": "x"}}


async def _create(api: httpx.AsyncClient, n: int, clock: ManualClock | None = None) -> list[str]:
    ids = []
    for _ in range(n):
        ids.append((await api.post(SCHNELL, json=BODY)).json()["id"])
        if clock is not None:
            clock.advance(1.0)
    return ids


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _relative(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def _page(api: httpx.AsyncClient, path: str, **params: str) -> dict[str, Any]:
    response = await api.get(path, params=params or None)  # an empty dict would drop the cursor
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("prefix", ["/replicate/v1", "/v1"])
async def test_lists_newest_first_on_both_prefixes(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    clock: ManualClock,
    prefix: str,
) -> None:
    api = make_client(make_config())
    ids = await _create(api, 3, clock)
    page = await _page(api, f"{prefix}/predictions")
    assert [p["id"] for p in page["results"]] == ids[::-1]
    assert page["next"] is None and page["previous"] is None
    first = page["results"][0]
    assert first["model"] == "black-forest-labs/flux-schnell" and first["input"] == {"prompt": "x"}
    assert first["source"] == "api" and "created_at" in first
    assert api.emulator_app.stats()["requests"]["list"] == {"200": 1}  # type: ignore[attr-defined]


async def test_pages_of_a_hundred_linked_by_next_and_previous(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig]
) -> None:
    api = make_client(make_config())
    ids = (await _create(api, 230))[::-1]  # newest first; one clock instant, creation order decides
    first = await _page(api, "/v1/predictions")
    assert [p["id"] for p in first["results"]] == ids[:100] and first["previous"] is None
    assert first["next"].startswith("http://emulator.test/v1/predictions?cursor=")
    second = await _page(api, _relative(first["next"]))
    assert [p["id"] for p in second["results"]] == ids[100:200]
    third = await _page(api, _relative(second["next"]))
    assert [p["id"] for p in third["results"]] == ids[200:] and third["next"] is None
    back = await _page(api, _relative(third["previous"]))
    assert [p["id"] for p in back["results"]] == ids[100:200]
    top = await _page(api, _relative(back["previous"]))
    assert [p["id"] for p in top["results"]] == ids[:100] and top["previous"] is None


async def test_pages_stay_put_while_new_predictions_arrive(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig]
) -> None:
    api = make_client(make_config(list_page_size=2))
    ids = (await _create(api, 4))[::-1]
    first = await _page(api, "/replicate/v1/predictions")
    newer = await _create(api, 3)
    second = await _page(api, _relative(first["next"]))
    assert [p["id"] for p in second["results"]] == ids[2:4] and second["next"] is None
    back = await _page(api, _relative(second["previous"]))
    assert [p["id"] for p in back["results"]] == ids[:2]
    assert back["previous"] is not None  # the three newer ones are now above it
    above = await _page(api, _relative(back["previous"]))
    assert [p["id"] for p in above["results"]] == newer[::-1][1:]


async def test_created_after_is_inclusive_and_created_before_exclusive(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    clock: ManualClock,
) -> None:
    api = make_client(make_config())
    start = clock.now()
    ids = await _create(api, 5, clock)  # created at start, start+1, ..., start+4
    page = await _page(api, "/v1/predictions", created_after=_iso(start + 1), created_before=_iso(start + 3))
    assert [p["id"] for p in page["results"]] == [ids[2], ids[1]]
    offset = datetime.fromtimestamp(start + 4, UTC).astimezone().isoformat()  # any offset works
    assert [p["id"] for p in (await _page(api, "/v1/predictions", created_after=offset))["results"]] == [
        ids[4]
    ]


async def test_filters_travel_with_the_cursor(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    clock: ManualClock,
) -> None:
    api = make_client(make_config(list_page_size=2))
    start = clock.now()
    ids = await _create(api, 6, clock)
    first = await _page(api, "/v1/predictions", created_before=_iso(start + 4))
    assert parse_qs(urlsplit(first["next"]).query)["created_before"] == [_iso(start + 4)]
    second = await _page(api, _relative(first["next"]))
    assert [p["id"] for p in first["results"] + second["results"]] == ids[3::-1]
    assert second["next"] is None


async def test_source_web_lists_nothing_since_every_prediction_came_from_the_api(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig]
) -> None:
    api = make_client(make_config())
    await _create(api, 2)
    assert (await _page(api, "/v1/predictions", source="web"))["results"] == []
    bad = await api.get("/v1/predictions", params={"source": "phone"})
    assert bad.status_code == 400


async def test_only_the_callers_token_predictions_are_listed(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig]
) -> None:
    config = make_config(token=None)
    alice = make_client(config, token="sk-alice")
    app = alice.emulator_app  # type: ignore[attr-defined]
    bob = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://emulator.test",
        headers={"Authorization": "Bearer sk-bob"},
    )
    async with bob:
        mine = await _create(alice, 2)
        theirs = await _create(bob, 1)
        assert [p["id"] for p in (await _page(alice, "/v1/predictions"))["results"]] == mine[::-1]
        assert [p["id"] for p in (await _page(bob, "/v1/predictions"))["results"]] == theirs


async def test_list_needs_a_token(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/predictions", headers={"Authorization": ""})
    assert response.status_code == 401


@pytest.mark.parametrize("cursor", ["garbage", "cD0yMDIyLTAxLTIxKzIzJTNBMTglM0EyNC41MzAzNTclMkIwMCUzQTAw"])
async def test_an_unreadable_cursor_is_404_as_replicate_answers(api: httpx.AsyncClient, cursor: str) -> None:
    response = await api.get("/v1/predictions", params={"cursor": cursor})
    assert response.status_code == 404
    assert response.json()["detail"] == "Invalid cursor"


async def test_an_unreadable_date_is_400(api: httpx.AsyncClient) -> None:
    response = await api.get("/replicate/v1/predictions", params={"created_after": "yesterday"})
    assert response.status_code == 400
    assert "created_after" in response.json()["error"]["message"]


async def test_list_404_answers_as_a_server_without_the_route(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig]
) -> None:
    api = make_client(make_config(list_404=frozenset({"cometapi"})))
    await _create(api, 1)
    comet = await api.get("/replicate/v1/predictions")
    assert comet.status_code == 404
    assert comet.json()["error"]["message"].startswith("Invalid URL (GET /replicate/v1/predictions)")
    assert (await api.get("/v1/predictions")).status_code == 200  # Replicate keeps its list
    both = make_client(make_config(list_404=frozenset({"cometapi", "replicate"})))
    assert (await both.get("/v1/predictions")).json() == {
        "title": "Not found",
        "detail": "Not found.",
        "status": 404,
    }


def test_list_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="list_404"):
        EmulatorConfig(list_404=frozenset({"openai"}))
    with pytest.raises(ValueError, match="list_page_size"):
        EmulatorConfig(list_page_size=0)
