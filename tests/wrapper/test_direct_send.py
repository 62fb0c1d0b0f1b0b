"""The library's own API clients hand requests straight to their transport (`ApiClient.direct`):
the server sees the same request `httpx.Client.send` would send, every bound still holds (pool
timeout included), errors name their request, a closed client refuses, and clients with hooks or a
proxy from the environment keep going through `send`."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Generator, Iterator

import httpx
import pytest
from comet_replicate._drivers import AsyncDriver, SyncDriver
from comet_replicate._exchange import SendTrace, api_request
from comet_replicate._http import ApiClient, AsyncApiClient, api_client, async_api_client
from comet_replicate.core.effects import Http, Reply

from tests._wire import QuietHandler, WireServer, serving

KEY = "sk-test-SECRET-0123456789"


class _Server(WireServer):
    def __init__(self) -> None:
        super().__init__(_Handler)
        self.seen: list[tuple[str, list[tuple[str, str]], bytes]] = []
        self.release = threading.Event()
        self.hold = False


class _Handler(QuietHandler):
    server: _Server

    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.server.seen.append((self.requestline, list(self.headers.items()), body))
        if self.server.hold:
            self.server.release.wait(10)
        answer = json.dumps({"id": "p1", "status": "starting"}).encode()
        self.answer(201, {"content-type": "application/json", "set-cookie": "session=abc; Path=/"}, answer)


@pytest.fixture
def server() -> Iterator[_Server]:
    with serving(_Server()) as srv:
        try:
            yield srv
        finally:
            srv.release.set()  # a held request must end before the server can shut down


def _effect(server: _Server, timeout: httpx.Timeout | None = None) -> Http:
    return Http(
        "POST",
        f"http://127.0.0.1:{server.server_address[1]}/replicate/v1/predictions",
        {"Authorization": f"Bearer {KEY}", "Prefer": "wait=5"},
        {"input": {"prompt": "a lighthouse", "num_outputs": 1}},
        timeout or httpx.Timeout(5.0),
    )


def _other(server: _Server, kind: str) -> Http:
    """Requests of other shapes than a create: a GET, a POST without a body (a cancel), headers
    that replace a client default, a held create (its body marks when it was written)."""
    base = f"http://127.0.0.1:{server.server_address[1]}/replicate/v1/predictions"
    auth = httpx.Headers({"Authorization": f"Bearer {KEY}"})
    if kind == "get":
        return Http("GET", f"{base}/p1", auth, None, httpx.Timeout(5.0))
    if kind == "cancel":
        return Http("POST", f"{base}/p1/cancel", auth, None, httpx.Timeout(5.0))
    if kind == "override":
        headers = {"Authorization": f"Bearer {KEY}", "user-agent": "mine/1", "Accept": "application/json"}
        return Http("POST", base, headers, {"input": {"prompt": "é ✓"}}, httpx.Timeout(5.0))
    return _effect(server)._replace(held=True, shield=True)


KINDS = ["get", "cancel", "override", "held"]


def _one(effect: Http) -> Generator[Http, Reply, Reply]:
    reply = yield effect
    return reply


def test_the_direct_request_is_the_one_send_would_send(server: _Server) -> None:
    http = api_client()
    assert isinstance(http, ApiClient) and http.direct is not None
    driver = SyncDriver(http)
    with_direct = driver.run(_one(_effect(server)))
    http.direct = None  # the same client through httpx.Client.send
    with_send = driver.run(_one(_effect(server)))
    driver.close()
    assert with_direct.status == with_send.status == 201
    assert with_direct.content == with_send.content
    assert server.seen[0] == server.seen[1]


async def test_the_async_direct_request_is_the_one_send_would_send(server: _Server) -> None:
    http = async_api_client()
    assert isinstance(http, AsyncApiClient) and http.direct is not None
    driver = AsyncDriver(http)
    with_direct = await driver.run(_one(_effect(server)))
    http.direct = None
    with_send = await driver.run(_one(_effect(server)))
    await driver.aclose()
    assert with_direct.content == with_send.content
    assert server.seen[0] == server.seen[1]


@pytest.mark.parametrize("kind", KINDS)
def test_every_shape_of_direct_request_is_the_one_send_would_send(server: _Server, kind: str) -> None:
    http = api_client()
    driver = SyncDriver(http)
    with_direct = driver.run(_one(_other(server, kind)))
    http.direct = None
    with_send = driver.run(_one(_other(server, kind)))
    driver.close()
    assert with_direct.content == with_send.content
    assert server.seen[0] == server.seen[1]
    # a held create's answer says how long ago its body was written, whichever way it went
    assert (with_direct.held_for > 0.0) is (with_send.held_for > 0.0) is (kind == "held")


@pytest.mark.parametrize("kind", KINDS)
async def test_every_shape_of_async_direct_request_is_the_one_send_would_send(
    server: _Server, kind: str
) -> None:
    http = async_api_client()
    driver = AsyncDriver(http)
    with_direct = await driver.run(_one(_other(server, kind)))
    http.direct = None
    with_send = await driver.run(_one(_other(server, kind)))
    await driver.aclose()
    assert with_direct.content == with_send.content
    assert server.seen[0] == server.seen[1]
    assert (with_direct.held_for > 0.0) is (with_send.held_for > 0.0) is (kind == "held")


def test_a_direct_body_marks_itself_written_only_once_it_was_all_taken(server: _Server) -> None:
    sent = SendTrace()
    http = api_client()
    request = api_request(http, True, _effect(server), httpx.Timeout(5.0), sent, False)
    http.close()
    assert isinstance(request.stream, httpx.SyncByteStream)
    chunks = iter(request.stream)
    assert (
        next(chunks)
        == json.dumps({"input": {"prompt": "a lighthouse", "num_outputs": 1}}, separators=(",", ":")).encode()
    )
    assert sent.written is None  # handed over, not yet written
    assert list(chunks) == [] and sent.written is not None


def test_cookies_a_server_sets_are_not_sent_back(server: _Server) -> None:
    driver = SyncDriver(api_client())
    driver.run(_one(_effect(server)))
    driver.run(_one(_effect(server)))
    driver.close()
    assert all(name.lower() != "cookie" for name, _ in server.seen[1][1])


def test_the_pool_timeout_holds_on_the_direct_path(server: _Server) -> None:
    server.hold = True
    driver = SyncDriver(api_client(limits=httpx.Limits(max_connections=1)))
    first = threading.Thread(target=driver.run, args=(_one(_effect(server)),), daemon=True)
    first.start()
    while not server.seen:
        threading.Event().wait(0.01)
    with pytest.raises(httpx.PoolTimeout) as info:
        driver.run(_one(_effect(server, httpx.Timeout(5.0, pool=0.2))))
    assert info.value.request.url.path == "/replicate/v1/predictions"
    server.release.set()
    first.join(10)
    driver.close()


async def test_the_async_pool_timeout_holds_on_the_direct_path(server: _Server) -> None:
    server.hold = True
    driver = AsyncDriver(async_api_client(httpx.Limits(max_connections=1)))
    first = asyncio.ensure_future(driver.run(_one(_effect(server))))
    while not server.seen:
        await asyncio.sleep(0.01)
    with pytest.raises(httpx.PoolTimeout) as info:
        await driver.run(_one(_effect(server, httpx.Timeout(5.0, pool=0.2))))
    assert info.value.request.url.path == "/replicate/v1/predictions"
    server.release.set()
    await first
    await driver.aclose()


def test_a_connect_error_names_its_request() -> None:
    driver = SyncDriver(api_client())
    effect = Http("GET", "http://127.0.0.1:9/replicate/v1/predictions/p1", {}, None, httpx.Timeout(2.0))
    with pytest.raises(httpx.ConnectError) as info:
        driver.run(_one(effect))
    assert info.value.request.url.path == "/replicate/v1/predictions/p1"
    driver.close()


def test_a_closed_client_refuses_as_httpx_does(server: _Server) -> None:
    http = api_client()
    http.close()
    with pytest.raises(RuntimeError, match="closed"):
        SyncDriver(http).run(_one(_effect(server)))
    assert not server.seen


async def test_a_closed_async_client_refuses_as_httpx_does(server: _Server) -> None:
    http = async_api_client()
    await http.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await AsyncDriver(http).run(_one(_effect(server)))
    assert not server.seen


def test_a_client_with_hooks_keeps_send(server: _Server) -> None:
    sent: list[httpx.Request] = []
    http = api_client(event_hooks={"request": [sent.append]})
    assert isinstance(http, ApiClient) and http.direct is None
    driver = SyncDriver(http)
    driver.run(_one(_effect(server)))
    driver.close()
    assert len(sent) == 1


def test_a_proxy_in_the_environment_keeps_send(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    http = api_client()
    assert not isinstance(http, ApiClient) or http.direct is None
    http.close()
    ahttp = async_api_client()
    assert not isinstance(ahttp, AsyncApiClient) or ahttp.direct is None


async def test_a_plain_http_async_client_sends_the_same_request_without_a_tls_context(
    server: _Server,
) -> None:
    http = async_api_client(tls=False)
    driver = AsyncDriver(http)
    without_tls = await driver.run(_one(_effect(server)))
    await driver.aclose()
    http = async_api_client()
    driver = AsyncDriver(http)
    with_tls = await driver.run(_one(_effect(server)))
    await driver.aclose()
    assert without_tls.content == with_tls.content
    assert server.seen[0] == server.seen[1]


async def test_an_async_client_builds_a_tls_context_only_for_an_https_base_url() -> None:
    from comet_replicate import AsyncClient
    from comet_replicate._http import shared_ssl_context

    shared_ssl_context.cache_clear()
    try:
        async with AsyncClient(api_key=KEY, base_url="http://127.0.0.1:9/replicate/v1"):
            assert shared_ssl_context.cache_info().currsize == 0
        async with AsyncClient(api_key=KEY, base_url="https://api.cometapi.com/replicate/v1"):
            assert shared_ssl_context.cache_info().currsize == 1
    finally:
        shared_ssl_context.cache_clear()
