"""Fixtures for the wrapper tests: clients on a fake clock (no real sleeping, no timing asserts)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import respx
from comet_replicate import AsyncClient, Client

BASE = "https://api.cometapi.com/replicate/v1"
KEY = "sk-test-SECRET-0123456789"
CREATE_PATH = "/models/black-forest-labs/flux-schnell/predictions"


class FakeTime:
    """A monotonic clock that only moves when the client sleeps (or a test advances it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[float], None] | None = None

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_773_314_838.258 + (self.now - 1000.0)  # 2026-03-12T11:27:18.258Z at creation

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def prediction(
    status: str = "starting", *, id: str = "p1", output: Any = None, **extra: Any
) -> dict[str, Any]:
    """A Prediction body as the spec describes it."""
    body: dict[str, Any] = {
        "id": id,
        "model": "black-forest-labs/flux-schnell",
        "version": "hidden",
        "input": {"prompt": "boat"},
        "logs": "",
        "output": output,
        "error": None,
        "status": status,
        "created_at": "2026-03-12T11:27:18.258Z",
        "urls": {
            "get": f"https://api.replicate.com/v1/predictions/{id}",
            "cancel": f"https://api.replicate.com/v1/predictions/{id}/cancel",
        },
    }
    body.update(extra)
    return body


def _fake(client: Client | AsyncClient, ft: FakeTime) -> None:
    shared = client._state.shared
    shared.clock = ft.clock
    shared.wall_clock = ft.wall
    shared.rng = random.Random(0)
    client._downloader.rng = random.Random(0)


@pytest.fixture
def ft() -> FakeTime:
    return FakeTime()


@pytest.fixture
def client(ft: FakeTime) -> Iterator[Client]:
    c = Client(api_key=KEY, base_url=BASE)
    _fake(c, ft)
    c._driver.sleep = ft.sleep
    yield c
    c.close()


@pytest.fixture
async def aclient(ft: FakeTime) -> Any:
    c = AsyncClient(api_key=KEY, base_url=BASE)
    _fake(c, ft)
    c._driver.sleep = ft.asleep
    yield c
    await c.close()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    """respx on our base URL; any request elsewhere (e.g. urls.get on api.replicate.com) fails the test."""
    with respx.mock(base_url=BASE, assert_all_called=False, assert_all_mocked=True) as router:
        yield router
