"""Held creates' transport (`_transport.HeldTransport`): a connection of its own per request, idle
ones kept for reuse. It fails exactly as httpx's own transport does (every server fault of
`test_transport_faults`), reuses a kept-alive connection for requests one after another, keeps at
most the keep-alive count idle, never reuses an expired connection or one the server closed, and
leaves no socket open after a cancel or a close.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from comet_replicate._http import AsyncApiClient, async_api_client
from comet_replicate._transport import HeldTransport

from tests.reliability._support import RawRequest, RawServer, free_port
from tests.reliability.test_transport_faults import SCENARIOS, _fault_outcomes, _holding_server, _httpx

LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=2, keepalive_expiry=30.0)


def _held(limits: httpx.Limits = LIMITS) -> tuple[httpx.AsyncClient, HeldTransport]:
    transport = HeldTransport(None, limits)
    return httpx.AsyncClient(transport=transport), transport


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_each_server_fault_ends_as_it_does_through_httpx_own_transport(scenario: str) -> None:
    expected = SCENARIOS[scenario][1]
    outcomes = await _fault_outcomes(scenario, {"httpx": _httpx, "held": lambda: _held()[0]})
    assert outcomes == {"httpx": expected, "held": expected}


async def test_a_refused_connection_is_a_connect_error_and_leaves_nothing_open() -> None:
    client, transport = _held()
    async with client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{free_port()}/x", timeout=2.0)
        assert transport.connections == (0, 0)


@asynccontextmanager
async def _keep_alive_server(close_after: int = 0) -> AsyncIterator[tuple[str, list[int]]]:
    """A server answering every request of a connection (`close_after` > 0: it closes the connection
    after that many); yields its URL and a one-item list counting the connections it accepted."""
    accepted = [0]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted[0] += 1
        answered = 0
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                answered += 1
                closing = close_after and answered >= close_after
                head = "Connection: close\r\n" if closing else ""
                writer.write(f"HTTP/1.1 200 OK\r\n{head}Content-Length: 2\r\n\r\nok".encode())
                await writer.drain()
                if closing:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", accepted


async def test_requests_one_after_another_reuse_one_connection() -> None:
    client, transport = _held()
    async with _keep_alive_server() as (url, accepted), client:
        bodies = [(await client.get(f"{url}/{i}")).content for i in range(5)]
        assert transport.connections == (1, 1)
    assert bodies == [b"ok"] * 5
    assert accepted == [1]
    assert transport.connections == (0, 0)  # closed with the client


async def test_concurrent_requests_each_get_a_connection_and_at_most_the_keep_alive_count_stays_idle() -> (
    None
):
    client, transport = _held()
    async with _keep_alive_server() as (url, accepted), client:
        answers = await asyncio.gather(*(client.get(f"{url}/{i}") for i in range(5)))
        assert [a.content for a in answers] == [b"ok"] * 5
        assert accepted == [5]
        assert transport.connections == (2, 2)  # LIMITS keeps 2; the others were closed
        await asyncio.gather(*(client.get(f"{url}/again{i}") for i in range(2)))
        assert accepted == [5]  # both kept connections were reused


async def test_an_expired_idle_connection_is_closed_not_reused() -> None:
    client, transport = _held(httpx.Limits(max_keepalive_connections=2, keepalive_expiry=0.0))
    async with _keep_alive_server() as (url, accepted), client:
        await client.get(f"{url}/a")
        await asyncio.sleep(0.01)
        await client.get(f"{url}/b")
        assert accepted == [2]
        assert transport.connections[0] <= 1  # the expired one is gone


async def test_a_connection_the_server_closes_is_not_reused() -> None:
    client, transport = _held()
    async with _keep_alive_server(close_after=1) as (url, accepted), client:
        first = await client.get(f"{url}/a")
        second = await client.get(f"{url}/b")
        assert (first.content, second.content) == (b"ok", b"ok")
        assert accepted == [2]
        assert transport.connections == (0, 0)  # "Connection: close": never kept


async def test_a_kept_alive_connection_the_server_closed_meanwhile_is_not_reused() -> None:
    async def then_close(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")  # keep-alive, then RawServer closes

    client, _ = _held()
    with RawServer({"*": then_close}) as server:
        async with client:
            first = await client.get(server.base_url + "/a")
            await asyncio.sleep(0.2)  # the server's FIN arrives while the connection is idle
            second = await client.get(server.base_url + "/b")
    assert (first.content, second.content) == (b"ok", b"ok")
    assert len(server.requests) == 2


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts descriptors through /proc")
async def test_a_request_cancelled_mid_wait_closes_its_connection() -> None:
    """The server sees the connection end, the process has the descriptors it had before, and the
    transport holds nothing (a held create is only ever cancelled this way on a second interrupt)."""
    client, transport = _held()
    async with _holding_server() as cancel_mid_wait, client:
        before = len(os.listdir("/proc/self/fd"))
        await cancel_mid_wait(client)
        assert transport.connections == (0, 0)
        assert len(os.listdir("/proc/self/fd")) <= before


async def test_closing_the_transport_closes_connections_in_use_too() -> None:
    async def hold(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    client, transport = _held()
    with RawServer({"*": hold}) as server:
        task = asyncio.create_task(client.get(server.base_url + "/x", timeout=10.0))
        while not server.requests:
            await asyncio.sleep(0.01)
        assert transport.connections == (1, 0)
        await client.aclose()
        assert transport.connections == (0, 0)
        with pytest.raises(httpx.TransportError):
            await task


async def test_the_held_api_client_uses_the_held_transport_unless_a_proxy_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    held = async_api_client(LIMITS, tls=False, held=True)
    assert isinstance(held, AsyncApiClient) and isinstance(held.direct, HeldTransport)
    await held.aclose()
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    proxied = async_api_client(LIMITS, held=True)
    assert not isinstance(proxied, AsyncApiClient) or proxied.direct is None  # httpx's send and transport
    await proxied.aclose()


def _one_at_a_time(pool: float = 5.0) -> tuple[httpx.AsyncClient, HeldTransport]:
    transport = HeldTransport(None, httpx.Limits(max_connections=1, max_keepalive_connections=1))
    return httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5.0, pool=pool)), transport


async def test_a_request_beyond_max_connections_waits_for_one_to_end_and_reuses_it() -> None:
    client, transport = _one_at_a_time()
    async with _keep_alive_server() as (url, accepted), client:
        async with client.stream("GET", f"{url}/first") as first:
            second = asyncio.create_task(client.get(f"{url}/second"))
            await asyncio.sleep(0.05)
            assert not second.done() and transport.connections == (1, 0)  # waiting, nothing opened
            assert await first.aread() == b"ok"
        assert (await second).content == b"ok"
    assert accepted == [1]


async def test_a_request_waiting_past_its_pool_timeout_is_a_pool_timeout() -> None:
    client, transport = _one_at_a_time(pool=0.05)
    async with _keep_alive_server() as (url, accepted), client, client.stream("GET", f"{url}/first"):
        with pytest.raises(httpx.PoolTimeout):
            await client.get(f"{url}/second")
        assert transport.connections == (1, 0)
    assert accepted == [1]


async def test_a_waiting_request_cancelled_as_a_connection_frees_passes_it_on() -> None:
    """Cancelled while waiting, or just after it was told a connection is free: the next request
    in line gets the connection (none waits for a turn that never comes)."""
    client, transport = _one_at_a_time()
    async with _keep_alive_server() as (url, accepted), client:
        first = await client.send(client.build_request("GET", f"{url}/first"), stream=True)
        gone = asyncio.create_task(client.get(f"{url}/gone"))
        woken = asyncio.create_task(client.get(f"{url}/woken"))
        last = asyncio.create_task(client.get(f"{url}/last"))
        await asyncio.sleep(0.05)
        gone.cancel()
        await asyncio.sleep(0)
        await first.aread()
        await first.aclose()  # wakes `woken`, which is cancelled before it runs
        woken.cancel()
        assert (await asyncio.wait_for(last, 5.0)).content == b"ok"
        for task in (gone, woken):
            with pytest.raises(asyncio.CancelledError):
                await task
        assert transport.connections == (1, 1)
    assert accepted == [1]


async def test_idle_connections_of_two_origins_are_each_reused() -> None:
    """A download redirected to another host keeps both hosts' connections: neither closes the other's."""
    client, transport = _held()
    servers = _keep_alive_server(), _keep_alive_server()
    async with servers[0] as (one, one_accepted), servers[1] as (two, two_accepted), client:
        for i in range(3):
            assert (await client.get(f"{one}/{i}")).content == b"ok"
            assert (await client.get(f"{two}/{i}")).content == b"ok"
        assert transport.connections == (2, 2)
    assert one_accepted == [1] and two_accepted == [1]


async def test_a_tls_context_factory_is_asked_only_for_an_https_connection() -> None:
    """Downloads build the TLS context on their first https connection: a process whose outputs all
    come over plain http (a local emulator) never builds one."""
    asked: list[ssl.SSLContext] = []

    def context() -> ssl.SSLContext:
        asked.append(ssl.create_default_context())
        return asked[-1]

    transport = HeldTransport(context, LIMITS)
    async with _keep_alive_server() as (url, _), httpx.AsyncClient(transport=transport) as client:
        assert (await client.get(f"{url}/plain")).content == b"ok"
        assert asked == []
        with pytest.raises(httpx.ConnectError):  # refused: the context was built for it all the same
            await client.get(f"https://127.0.0.1:{free_port()}/tls")
        assert len(asked) == 1
