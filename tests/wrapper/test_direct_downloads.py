"""The library's own download clients hand each hop straight to their transport
(`ApiClient.direct`; the async one reads the body straight from its `HeldTransport`), and the
download flow follows redirects itself: the server sees the same
request `send` would send, no hop carries a credential (the caller's client's neither), a cancelled
download closes its socket, and a caller's transport or a proxy from the environment keeps `send`."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from comet_replicate import CometReplicateError
from comet_replicate._drivers import AsyncDriver, SyncDriver
from comet_replicate._files import Downloader, FileOutput
from comet_replicate._http import ApiClient, AsyncApiClient, async_download_client, download_client

from tests._wire import QuietHandler, WireServer, serving
from tests.reliability._support import RawRequest, RawServer, http_head

KEY = "sk-test-SECRET-0123456789"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


class _Server(WireServer):
    def __init__(self) -> None:
        super().__init__(_Handler)
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.ports: list[int] = []  # the client's port of each request: one per connection


class _Handler(QuietHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.seen.append((self.requestline, {k.lower(): v for k, v in self.headers.items()}))
        self.server.ports.append(self.client_address[1])
        if self.path.startswith("/moved"):
            # relative, as delivery hosts often answer
            self.answer(302, {"location": "/files/out-0.png", "set-cookie": "hop=1; Path=/"})
            return
        self.answer(200, {"content-type": "image/png", "set-cookie": "session=abc; Path=/"}, PNG)


@pytest.fixture
def server() -> Iterator[_Server]:
    with serving(_Server()) as srv:
        yield srv


def _own_client(driver: SyncDriver | AsyncDriver) -> ApiClient | AsyncApiClient:
    """The download client a driver opened."""
    client = driver._downloads
    assert isinstance(client, ApiClient | AsyncApiClient)
    return client


def test_the_direct_download_is_the_request_send_would_send(server: _Server) -> None:
    driver = SyncDriver(None)
    output = FileOutput(server.base_url + "/files/out-0.png", Downloader(sync_driver=driver))
    assert output.read() == PNG
    client = _own_client(driver)
    assert client.direct is not None
    client.direct = None  # the same client through httpx.Client.send
    assert output.read() == PNG
    driver.close()
    assert len(server.seen) == 2 and server.seen[0] == server.seen[1]


async def test_the_async_direct_download_is_the_request_send_would_send(server: _Server) -> None:
    driver = AsyncDriver(None)
    output = FileOutput(server.base_url + "/files/out-0.png", Downloader(async_driver=driver))
    assert await output.aread() == PNG
    client = _own_client(driver)
    assert client.direct is not None
    client.direct = None
    assert await output.aread() == PNG
    await driver.aclose()
    assert len(server.seen) == 2 and server.seen[0] == server.seen[1]


@pytest.mark.parametrize("send", [False, True], ids=["direct", "send"])
def test_a_relative_redirect_is_followed_without_cookies_or_credentials(
    server: _Server, send: bool, tmp_path: Path
) -> None:
    driver = SyncDriver(None)
    output = FileOutput(server.base_url + "/moved/out-0.png", Downloader(sync_driver=driver))
    output.read()  # opens the client
    if send:
        _own_client(driver).direct = None
    server.seen.clear()
    saved = output.save(tmp_path)
    driver.close()
    assert saved.read_bytes() == PNG
    assert [line for line, _ in server.seen] == [
        "GET /moved/out-0.png HTTP/1.1",
        "GET /files/out-0.png HTTP/1.1",
    ]
    for _, headers in server.seen:
        assert "authorization" not in headers and "cookie" not in headers


async def test_the_async_flow_follows_a_redirect_on_the_direct_path(server: _Server) -> None:
    driver = AsyncDriver(None)
    output = FileOutput(server.base_url + "/moved/out-0.png", Downloader(async_driver=driver))
    assert await output.aread() == PNG
    await driver.aclose()
    assert [line for line, _ in server.seen] == [
        "GET /moved/out-0.png HTTP/1.1",
        "GET /files/out-0.png HTTP/1.1",
    ]


async def test_downloads_one_after_another_reuse_one_connection_and_concurrent_ones_spread(
    server: _Server,
) -> None:
    """The async driver's downloads go through one `HeldTransport`: one at a time they all take its
    most recently used kept-alive connection."""
    driver = AsyncDriver(None)
    output = FileOutput(server.base_url + "/files/out-0.png", Downloader(async_driver=driver))
    for _ in range(5):
        assert await output.aread() == PNG
    assert len(set(server.ports)) == 1
    server.ports.clear()
    assert await asyncio.gather(*(output.aread() for _ in range(8))) == [PNG] * 8
    await driver.aclose()
    assert len(server.ports) == 8 and len(set(server.ports)) <= 8


def test_a_callers_client_sends_no_credential_on_any_hop(server: _Server) -> None:
    """Its default headers, its cookies and its auth are all left out of every download hop."""
    with httpx.Client(
        headers={"Authorization": f"Bearer {KEY}", "X-Api-Key": KEY},
        cookies={"session": KEY},
        auth=("user", KEY),
    ) as mine:
        driver = SyncDriver(None, downloads_via=mine)
        output = FileOutput(server.base_url + "/moved/out-0.png", Downloader(sync_driver=driver))
        assert output.read() == PNG
    assert len(server.seen) == 2
    for _, headers in server.seen:
        assert KEY not in " ".join(headers.values())
        assert not {"authorization", "x-api-key", "cookie"} & set(headers)


async def test_an_async_callers_client_sends_no_credential_on_any_hop(server: _Server) -> None:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, auth=("user", KEY)) as mine:
        driver = AsyncDriver(None, downloads_via=mine)
        output = FileOutput(server.base_url + "/moved/out-0.png", Downloader(async_driver=driver))
        assert await output.aread() == PNG
    assert len(server.seen) == 2
    for _, headers in server.seen:
        assert "authorization" not in headers


def test_a_redirect_to_a_link_local_host_is_refused_on_the_direct_path() -> None:
    async def to_metadata(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(
            http_head("302 Found", {"Location": "http://169.254.169.254/latest/", "Content-Length": "0"})
        )

    with RawServer({"*": to_metadata}) as raw:
        output = FileOutput(raw.base_url + "/out-0.png", Downloader())
        with pytest.raises(CometReplicateError, match="link-local"):
            output.read()
        with pytest.raises(CometReplicateError, match="link-local"):
            asyncio.run(output.aread())
    assert len(raw.requests) == 2  # one per attempt, the redirect's target never asked


def test_own_clients_go_direct_and_a_callers_transport_or_an_environment_proxy_keeps_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    own, aown = download_client(), async_download_client()
    assert own.direct is not None and aown.direct is not None
    assert not own.follow_redirects and not aown.follow_redirects  # the flow follows them
    mock = download_client(transport=httpx.MockTransport(lambda request: httpx.Response(200)))
    assert mock.direct is None
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    proxied, aproxied = download_client(), async_download_client()
    assert proxied.direct is None and aproxied.direct is None
    for client in (own, mock, proxied):
        client.close()
    assert own.direct is None  # a closed client is never sent to directly

    async def close_async() -> None:
        await aown.aclose()
        await aproxied.aclose()

    asyncio.run(close_async())
    assert aown.direct is None


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts descriptors through /proc")
async def test_a_download_cancelled_mid_body_closes_its_socket_and_leaves_no_file(tmp_path: Path) -> None:
    closed = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def stall(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(
            http_head("200 OK", {"Content-Type": "image/png", "Content-Length": "100000"}) + b"x" * 10
        )
        await writer.drain()
        reader = writer.transport.get_protocol()._stream_reader  # type: ignore[attr-defined]
        await reader.read()  # returns once the client's side is gone
        loop.call_soon_threadsafe(closed.set)

    driver = AsyncDriver(None)  # kept open: the socket must close because of the cancel, not a driver close
    with RawServer({"*": stall}) as raw:
        output = FileOutput(raw.base_url + "/out-0.png", Downloader(async_driver=driver))
        before = len(os.listdir("/proc/self/fd"))
        task = asyncio.create_task(output.asave(tmp_path))
        while not raw.requests:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(closed.wait(), 5.0)
        for _ in range(100):  # the server's thread closes its own side of the connection just after
            await asyncio.sleep(0.01)
            if len(os.listdir("/proc/self/fd")) <= before:
                break
        assert len(os.listdir("/proc/self/fd")) <= before  # neither the socket nor the temporary file
        await driver.aclose()
    assert list(tmp_path.iterdir()) == []
