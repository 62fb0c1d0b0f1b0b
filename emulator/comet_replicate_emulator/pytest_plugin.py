"""pytest fixtures: a running emulator and a client pointed at it.

Load with `-p comet_replicate_emulator.pytest_plugin` (or `pytest_plugins = [...]` in a conftest).
Importing this module stays light: Starlette, uvicorn, Pillow and the client load inside fixtures.

    def test_my_code(comet_inprocess_client, comet_emulator_app):
        files = comet_inprocess_client.run("black-forest-labs/flux-schnell", {"prompt": "a boat"})
        assert comet_emulator_app.stats()["predictions_created"] == 1

`comet_inprocess_client` / `comet_inprocess_async_client` send every request (creates, polls and
downloads) through the ASGI app in process, without a socket; `comet_client` / `comet_async_client`
talk to `comet_emulator_server` on a loopback port. Override `comet_emulator_config` in a conftest
to change speed, token or faults.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import pytest

try:  # strict-mode pytest-asyncio needs its own decorator for async fixtures
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover - anyio or auto mode handle plain async fixtures
    _async_fixture = pytest.fixture  # type: ignore[assignment]

if TYPE_CHECKING:
    import httpx
    from comet_replicate import AsyncClient, Client  # types only: the client loads inside fixtures

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
    _sync_transport: _SyncASGITransport | None = field(default=None, init=False, repr=False)
    _opened: list[httpx.Client] = field(default_factory=list, init=False, repr=False)
    _opened_async: list[httpx.AsyncClient] = field(default_factory=list, init=False, repr=False)

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
        """A sync `httpx.Client` wired to the app (the caller closes it).

        Starlette's TestClient is deprecated with httpx, so the app runs on a private event-loop
        thread behind a sync transport instead.
        """
        import httpx

        kwargs.setdefault("headers", self.auth_headers())
        # httpx only calls handle_request/close; subclassing BaseTransport would import httpx here.
        transport = cast("httpx.BaseTransport", _SyncASGITransport(self.app))
        return httpx.Client(transport=transport, base_url=self.base_url, **kwargs)

    def comet_client(self, **kwargs: Any) -> Client:
        """A `comet_replicate.Client` whose every request (creates, polls, downloads) goes through the
        app in process: no socket. Keyword arguments go to `Client` (api_key and base_url are set).

        The client is plain http to `emulator.test`, which `Client` accepts only because it is given
        its own `http_client` (a `*.test` host). `close()` (the fixture calls it) closes its transport.
        """
        import comet_replicate  # lazily: the emulator itself never imports the client
        import httpx

        if self._sync_transport is None:  # one event-loop thread serves every sync client of this app
            self._sync_transport = _SyncASGITransport(self.app)
        http = httpx.Client(transport=cast("httpx.BaseTransport", self._sync_transport))
        self._opened.append(http)
        kwargs.setdefault("api_key", _api_key(self.config))
        kwargs.setdefault("base_url", self.cometapi_base_url)
        return comet_replicate.Client(http_client=http, **kwargs)

    def comet_async_client(self, **kwargs: Any) -> AsyncClient:
        """The async twin of `comet_client`: a `comet_replicate.AsyncClient` on the app in process.
        `aclose()` (the `comet_inprocess_async_client` fixture awaits it) closes its transport."""
        import comet_replicate
        import httpx

        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app))
        self._opened_async.append(http)
        kwargs.setdefault("api_key", _api_key(self.config))
        kwargs.setdefault("base_url", self.cometapi_base_url)
        return comet_replicate.AsyncClient(http_client=http, **kwargs)

    async def aclose(self) -> None:
        """Close what `comet_async_client` opened."""
        while self._opened_async:
            await self._opened_async.pop().aclose()

    def close(self) -> None:
        """Close what `comet_client` opened (its http clients and the app's event-loop thread)."""
        while self._opened:
            self._opened.pop().close()
        if self._sync_transport is not None:
            self._sync_transport.close()
            self._sync_transport = None


class _SyncASGITransport:
    """Serves sync httpx requests from an ASGI app running on its own event-loop thread."""

    def __init__(self, app: Any) -> None:
        import asyncio
        import threading

        import httpx

        self._inner = httpx.ASGITransport(app=app)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="emulator-asgi", daemon=True)
        self._thread.start()

    def __enter__(self) -> _SyncASGITransport:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def handle_request(self, request: Any) -> Any:
        import asyncio

        import httpx

        body = request.read()

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            inner = httpx.Request(request.method, request.url, headers=request.headers, content=body)
            response = await self._inner.handle_async_request(inner)
            content = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
            return response.status_code, response.headers.raw, content

        status, headers, content = asyncio.run_coroutine_threadsafe(call(), self._loop).result()
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()


@pytest.fixture
def comet_emulator_config() -> EmulatorConfig:
    """Fast (speed 50), seeded, one fixed token, every answer checked against the spec."""
    from ._config import EmulatorConfig

    return EmulatorConfig(token=TEST_TOKEN, speed=50.0, seed=0, validate_responses=True)


@pytest.fixture
def comet_emulator_app(comet_emulator_config: EmulatorConfig) -> Iterator[InProcessEmulator]:
    """The emulator in process (no socket), with its config and counters."""
    from ._app import create_app

    emulator = InProcessEmulator(create_app(comet_emulator_config), comet_emulator_config)
    try:
        yield emulator
    finally:
        emulator.close()


@pytest.fixture
def comet_inprocess_client(comet_emulator_app: InProcessEmulator) -> Iterator[Client]:
    """A `comet_replicate.Client` on `comet_emulator_app`: creates, polls and downloads in process."""
    client = comet_emulator_app.comet_client()
    try:
        yield client
    finally:
        client.close()


@_async_fixture
async def comet_inprocess_async_client(comet_emulator_app: InProcessEmulator) -> AsyncIterator[AsyncClient]:
    """A `comet_replicate.AsyncClient` on `comet_emulator_app`: every request in process, no socket."""
    client = comet_emulator_app.comet_async_client()
    try:
        yield client
    finally:
        await client.close()
        await comet_emulator_app.aclose()


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
