"""pytest fixtures: a running emulator and a client pointed at it.

Load with `-p comet_replicate_emulator.pytest_plugin` (or `pytest_plugins = [...]` in a conftest).
Importing this module stays light: Starlette, uvicorn, Pillow and the client load inside fixtures.

    def test_my_code(comet_client, comet_emulator_server):
        files = comet_client.run("black-forest-labs/flux-schnell", {"prompt": "a boat"})
        assert comet_emulator_server.stats()["predictions_created"] == 1

Override `comet_emulator_config` in a conftest to change speed, token or faults.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

try:  # strict-mode pytest-asyncio needs its own decorator for async fixtures
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover - anyio or auto mode handle plain async fixtures
    _async_fixture = pytest.fixture  # type: ignore[assignment]

if TYPE_CHECKING:
    from ._app import EmulatorApp
    from ._config import EmulatorConfig
    from ._server import RunningEmulator

TEST_TOKEN = "sk-emulator-test"


@dataclass
class InProcessEmulator:
    """The emulator app without a socket; talk to it through `httpx.ASGITransport`."""

    app: EmulatorApp
    config: EmulatorConfig
    base_url: str = "http://emulator.test"

    @property
    def cometapi_base_url(self) -> str:
        return self.base_url + "/replicate/v1"

    @property
    def replicate_base_url(self) -> str:
        return self.base_url + "/v1"

    def stats(self) -> dict[str, Any]:
        return self.app.stats()

    def reset(self) -> None:
        self.app.reset()

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.token or TEST_TOKEN}"}

    def async_client(self, **kwargs: Any) -> Any:
        """An `httpx.AsyncClient` wired to the app (the caller closes it)."""
        import httpx

        kwargs.setdefault("headers", self.auth_headers())
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url=self.base_url, **kwargs
        )

    def sync_client(self, **kwargs: Any) -> Any:
        """A sync `httpx.Client` subclass (Starlette's TestClient) wired to the app."""
        from starlette.testclient import TestClient

        kwargs.setdefault("headers", self.auth_headers())
        return TestClient(self.app, base_url=self.base_url, **kwargs)


@pytest.fixture
def comet_emulator_config() -> EmulatorConfig:
    """Fast (speed 50), seeded, one fixed token, every answer checked against the spec."""
    from ._config import EmulatorConfig

    return EmulatorConfig(token=TEST_TOKEN, speed=50.0, seed=0, validate_responses=True)


@pytest.fixture
def comet_emulator_app(comet_emulator_config: EmulatorConfig) -> InProcessEmulator:
    """The emulator in process (no socket), with its config and counters."""
    from ._app import create_app

    return InProcessEmulator(create_app(comet_emulator_config), comet_emulator_config)


@pytest.fixture
def comet_emulator_server(comet_emulator_config: EmulatorConfig) -> Iterator[RunningEmulator]:
    """The emulator on a free loopback port for the test; `.base_url`, `.stats()`, `.reset()`."""
    from ._server import serve

    with serve(comet_emulator_config) as server:
        yield server


def _api_key(config: EmulatorConfig) -> str:
    return config.token or TEST_TOKEN


@pytest.fixture
def comet_client(comet_emulator_server: RunningEmulator) -> Iterator[Any]:
    """A `comet_replicate.Client` pointed at the served emulator's CometAPI routes."""
    import comet_replicate  # lazily: the emulator itself never imports the client

    client = comet_replicate.Client(
        api_key=_api_key(comet_emulator_server.config), base_url=comet_emulator_server.cometapi_base_url
    )
    try:
        yield client
    finally:
        client.close()


@_async_fixture
async def comet_async_client(comet_emulator_server: RunningEmulator) -> AsyncIterator[Any]:
    """A `comet_replicate.AsyncClient` pointed at the served emulator's CometAPI routes."""
    import comet_replicate

    client = comet_replicate.AsyncClient(
        api_key=_api_key(comet_emulator_server.config), base_url=comet_emulator_server.cometapi_base_url
    )
    try:
        yield client
    finally:
        closing = getattr(client, "aclose", None) or client.close
        result = closing()
        if inspect.isawaitable(result):
            await result
