"""The asyncio-native transport (`comet_replicate._transport`) fails exactly as httpx's own does.

Every fault runs twice against a raw loopback server, once through `httpx.AsyncHTTPTransport`
(anyio) and once through `AsyncioTransport`, and both must end the same way: the same response,
or the same httpx exception class (our retry policy classifies those classes). Then what only the
new transport can get wrong: sockets left open after a cancel, a read buffer that outgrows its
bound, TLS verification, and proxies named in the environment.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import socket
import ssl
import struct
import subprocess
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import httpcore
import httpx
import pytest
from comet_replicate import _transport
from comet_replicate._constants import READ_BUFFER_HIGH_WATER
from comet_replicate._http import (
    async_api_client,
    async_download_client,
    environment_proxies,
    shared_ssl_context,
)
from comet_replicate._transport import AsyncioBackend, AsyncioStream, AsyncioTransport

from tests.reliability._support import RawRequest, RawServer, free_port, http_head

LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=5, keepalive_expiry=30.0)
BODY = b"x" * 5000


def _ours(ssl_context: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=AsyncioTransport(ssl_context or shared_ssl_context(), LIMITS))


def _httpx(ssl_context: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=ssl_context or shared_ssl_context(), trust_env=False)


CLIENTS = {"httpx": _httpx, "ours": _ours}


async def _outcome(make: Callable[[], httpx.AsyncClient], url: str, timeout: httpx.Timeout) -> object:
    """The response's (status, body), or the exception's class."""
    async with make() as client:
        try:
            response = await client.get(url, timeout=timeout)
        except httpx.HTTPError as exc:
            return type(exc)
        return response.status_code, response.content


# --------------------------------------------------------------------------- server behaviours


async def _ok(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    writer.write(http_head("200 OK", {"Content-Length": str(len(BODY))}) + BODY)


async def _chunked(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    writer.write(http_head("200 OK", {"Transfer-Encoding": "chunked"}))
    for i in range(0, len(BODY), 1000):
        part = BODY[i : i + 1000]
        writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        await writer.drain()
        await asyncio.sleep(0.01)
    writer.write(b"0\r\n\r\n")


async def _until_close(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + BODY)


async def _close_before_answer(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    return None  # the server closes the connection without a byte


async def _close_mid_headers(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Le")


async def _close_mid_body(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    writer.write(http_head("200 OK", {"Content-Length": str(len(BODY))}) + BODY[:100])


async def _reset_mid_body(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    writer.write(http_head("200 OK", {"Content-Length": str(len(BODY))}) + BODY[:100])
    await writer.drain()
    await asyncio.sleep(0.2)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
    writer.transport.abort()


async def _drip(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    writer.write(http_head("200 OK", {"Content-Length": "100"}))
    for _ in range(100):
        writer.write(b"x")
        await writer.drain()
        await asyncio.sleep(0.5)


async def _silent(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)


async def _garbage(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")


SCENARIOS = {
    "ok": (_ok, (200, BODY)),
    "chunked": (_chunked, (200, BODY)),
    "body until close": (_until_close, (200, BODY)),
    "closed before an answer": (_close_before_answer, httpx.RemoteProtocolError),
    "closed mid-headers": (_close_mid_headers, httpx.RemoteProtocolError),
    "closed mid-body": (_close_mid_body, httpx.RemoteProtocolError),
    "reset mid-body": (_reset_mid_body, httpx.ReadError),
    "drip slower than the read timeout": (_drip, httpx.ReadTimeout),
    "never answers": (_silent, httpx.ReadTimeout),
    "not HTTP": (_garbage, httpx.RemoteProtocolError),
}


async def _fault_outcomes(
    scenario: str, clients: Mapping[str, Callable[[], httpx.AsyncClient]]
) -> dict[str, object]:
    """How one GET through each client ends against the scenario's server (`_outcome`)."""
    handler, _ = SCENARIOS[scenario]
    timeout = httpx.Timeout(5.0, read=0.3)
    with RawServer({"*": handler}) as server:
        url = server.base_url + "/x"
        return {name: await _outcome(make, url, timeout) for name, make in clients.items()}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_each_server_fault_ends_as_it_does_through_httpx_own_transport(scenario: str) -> None:
    expected = SCENARIOS[scenario][1]
    outcomes = await _fault_outcomes(scenario, CLIENTS)
    assert outcomes == {"httpx": expected, "ours": expected}


async def test_a_refused_connection_is_a_connect_error_as_through_httpx() -> None:
    url = f"http://127.0.0.1:{free_port()}/x"  # nothing listens there
    outcomes = {name: await _outcome(make, url, httpx.Timeout(2.0)) for name, make in CLIENTS.items()}
    assert outcomes == {"httpx": httpx.ConnectError, "ours": httpx.ConnectError}


async def test_a_connect_that_never_completes_is_a_connect_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(*args: object, **kwargs: object) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(asyncio.get_running_loop(), "create_connection", never)
    outcome = await _outcome(_ours, "http://127.0.0.1:9/x", httpx.Timeout(5.0, connect=0.1))
    assert outcome is httpx.ConnectTimeout


async def test_a_write_the_server_never_reads_is_a_write_timeout_as_through_anyio() -> None:
    """Both httpcore backends, same pool options (a tiny send buffer), a body nobody reads."""
    small = [(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)]
    body = b"y" * (48 * 1024 * 1024)
    outcomes = {}
    with RawServer({"*": _silent}) as server:
        for name, backend in {"anyio": None, "ours": AsyncioBackend()}.items():
            options = {"network_backend": backend} if backend is not None else {}
            async with httpcore.AsyncConnectionPool(socket_options=small, **options) as pool:
                try:
                    await pool.request(
                        "POST", server.base_url + "/x", content=body, extensions={"timeout": {"write": 0.3}}
                    )
                except httpcore.TimeoutException as exc:
                    outcomes[name] = type(exc)
    assert outcomes == {"anyio": httpcore.WriteTimeout, "ours": httpcore.WriteTimeout}


def test_every_httpcore_exception_maps_to_the_httpx_class_of_its_name() -> None:
    """As httpx's own transport does; the one httpcore class httpx has no twin for
    (`ConnectionNotAvailable`, which the pool handles itself) passes through unchanged, as there."""
    classes = [
        value
        for name in httpcore.__all__
        if isinstance(value := getattr(httpcore, name), type) and issubclass(value, Exception)
    ]
    mapped = [cls for cls in classes if hasattr(httpx, cls.__name__)]
    assert len(mapped) == 14
    for cls in classes:
        with pytest.raises(Exception) as raised, _transport._httpx_errors():
            raise cls("boom")
        expected = getattr(httpx, cls.__name__, cls)
        assert type(raised.value) is expected, cls
        assert str(raised.value) == "boom"
        if cls in mapped:
            assert type(raised.value.__cause__) is cls


# --------------------------------------------------------------------------- cancellation, buffers


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@asynccontextmanager
async def _holding_server() -> AsyncIterator[Callable[[httpx.AsyncClient], Awaitable[None]]]:
    """A server holding each request until the client's side of its connection is gone. Yields
    `cancel_mid_wait(client)`: a GET to it, cancelled once the server has it; returns when the server
    saw the connection end and the client's transport had its turn to release the socket."""
    closed = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def hold(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        reader_eof = writer.transport.get_protocol()._stream_reader  # type: ignore[attr-defined]
        await reader_eof.read()  # returns once the client's side is gone
        loop.call_soon_threadsafe(closed.set)

    with RawServer({"*": hold}) as server:

        async def cancel_mid_wait(client: httpx.AsyncClient) -> None:
            task = asyncio.create_task(client.get(server.base_url + "/x", timeout=10.0))
            while not server.requests:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.wait_for(closed.wait(), 5.0)
            await asyncio.sleep(0)  # the transport's connection_lost runs on the next loop turn

        yield cancel_mid_wait


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts descriptors through /proc")
async def test_a_request_cancelled_mid_wait_closes_its_connection() -> None:
    """A cancelled task (Ctrl-C in `asyncio.run` cancels the main task the same way) leaves no socket
    open: the server sees the connection end, and the process has the descriptors it had before."""
    async with _holding_server() as cancel_mid_wait:
        async with _ours() as client:
            before = _open_fds()
            await cancel_mid_wait(client)
            assert _open_fds() <= before
        assert _open_fds() <= before


async def test_a_body_read_slowly_is_held_back_by_the_socket_not_buffered() -> None:
    big = b"z" * (16 * 1024 * 1024)

    async def flood(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(http_head("200 OK", {"Content-Length": str(len(big))}))
        for i in range(0, len(big), 1 << 20):
            writer.write(big[i : i + (1 << 20)])
            await writer.drain()

    with RawServer({"*": flood}) as server:
        async with _ours() as client, client.stream("GET", server.base_url + "/x") as response:
            stream = response.extensions["network_stream"]
            assert isinstance(stream, AsyncioStream)
            chunks: AsyncIterator[bytes] = response.aiter_raw()
            got = len(await anext(chunks))
            await asyncio.sleep(0.5)  # the server keeps writing; we do not read
            assert stream._protocol.buffered <= READ_BUFFER_HIGH_WATER + 256 * 1024
            async for chunk in chunks:
                got += len(chunk)
    assert got == len(big)


async def test_a_kept_alive_connection_the_server_closed_is_not_reused() -> None:
    """httpcore asks an idle connection whether it is readable; ours answers from what the loop saw."""

    async def then_close(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")  # keep-alive, then RawServer closes

    with RawServer({"*": then_close}) as server:
        async with _ours() as client:
            first = await client.get(server.base_url + "/a")
            await asyncio.sleep(0.2)  # the server's FIN arrives while the connection is idle
            second = await client.get(server.base_url + "/b")
    assert (first.content, second.content) == (b"ok", b"ok")
    assert len(server.requests) == 2


async def test_connections_are_reused_for_requests_one_after_another() -> None:
    connections = 0
    finished = asyncio.Event()

    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            finished.set()

    server = await asyncio.start_server(keep_alive, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        async with _ours() as client:
            bodies = [(await client.get(f"http://127.0.0.1:{port}/{i}")).content for i in range(5)]
        await asyncio.wait_for(finished.wait(), 5.0)  # our close reached the server
    assert bodies == [b"ok"] * 5
    assert connections == 1


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A test CA and two server certificates it signed: one for 127.0.0.1, one for another name."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test CA")
    folder = tmp_path_factory.mktemp("tls")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    run(
        "req",
        "-x509",
        *key,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    for name, san in (("good", "IP:127.0.0.1"), ("other", "DNS:other.test")):
        run("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        (folder / f"{name}.ext").write_text(
            f"subjectAltName=critical,{san}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
        )
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
        )
    return {p.stem + p.suffix: p for p in folder.iterdir()}


class TLSServer(RawServer):
    def __init__(self, cert: Path, key: Path) -> None:
        super().__init__({"*": _ok})
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """TLS in the connection's own task, not in the server: a handshake the client refuses then
        ends in a task the server's stop waits for, so its socket is closed before the loop is (a
        server-side handshake could still be failing as the loop closed, leaving its socket to warn
        when collected, in whichever test that happened)."""
        try:
            await writer.start_tls(self.context)
        except (ssl.SSLError, ConnectionError, asyncio.CancelledError):
            writer.transport.abort()
            return
        await self._serve(reader, writer)


def _trusting(ca: Path) -> ssl.SSLContext:
    context = httpx.create_ssl_context()
    context.load_verify_locations(cafile=str(ca))
    return context


async def test_tls_to_a_verified_server_answers(certificates: dict[str, Path]) -> None:
    with TLSServer(certificates["good.pem"], certificates["good.key"]) as server:
        async with _ours(_trusting(certificates["ca.pem"])) as client:
            response = await client.get(server.base_url + "/x")
    assert (response.status_code, response.content) == (200, BODY)
    assert response.extensions["network_stream"].get_extra_info("ssl_object") is not None


def _resource_warnings_on_collecting() -> list[str]:
    """What collecting the garbage now warns about: sockets and transports left open (recorded, so a
    test can say whose they were; the suite would otherwise fail whichever test collects them)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.mark.parametrize("case", ["untrusted CA", "wrong host name"])
async def test_tls_verification_fails_as_through_httpx(certificates: dict[str, Path], case: str) -> None:
    """Both clients raise ConnectError, and neither leaves a socket open: the garbage is collected
    after each attempt, and a ResourceWarning fails the test naming the client.

    The py311 reliability flake of session 4 ("unclosed transport <_SelectorSocketTransport fd=18>",
    twice, in the "wrong host name" case) was no client's. That repr (neither closing nor polled) is
    an open transport whose loop is closed. The test server's stop closed its loop under a TLS
    connection of an earlier test (`test_tls_to_a_verified_server_answers`) still in asyncio's TLS
    close, waiting for a close_notify or EOF the client, its loop blocked in the `with` exit, could
    not send; a later garbage collection, here, freed it. Since then the collection after httpx's
    attempt ignored ResourceWarnings, which hid exactly that. Now `RawServer._stop` aborts every
    transport it accepted (`test_a_stopped_tls_server_leaves_no_socket_open` fails without it), and
    nothing is ignored. The clients are clean by construction: asyncio's TLS layer (ours)
    force-closes the socket and schedules its release before it wakes the handshake's waiter, so it
    is closed before the error reaches the caller (`test_a_failed_tls_handshake_has_released_its_
    socket_when_it_raises`); httpcore's anyio path aborts the socket and yields once before raising.
    """
    name = "good" if case == "untrusted CA" else "other"
    context = None if case == "untrusted CA" else _trusting(certificates["ca.pem"])
    assert _resource_warnings_on_collecting() == [], "left open by an earlier test"
    with TLSServer(certificates[f"{name}.pem"], certificates[f"{name}.key"]) as server:
        url = server.base_url + "/x"
        outcomes, left_open = {}, {}
        for label, make in CLIENTS.items():
            outcomes[label] = await _outcome(lambda make=make: make(context), url, httpx.Timeout(5.0))
            left_open[label] = _resource_warnings_on_collecting()
    assert outcomes == {"httpx": httpx.ConnectError, "ours": httpx.ConnectError}
    assert left_open == {"httpx": [], "ours": []}


async def _answer_then_linger(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    """The whole answer, then the connection stays with its task (a slow server, or one on a busy
    machine, still between its last write and its close when the client is done)."""
    await _ok(request, writer)
    await writer.drain()
    await asyncio.sleep(30)


async def test_a_stopped_tls_server_leaves_no_socket_open(certificates: dict[str, Path]) -> None:
    """The test server's own promise, which every TLS test here relies on. The stop cancels the
    lingering task, whose `writer.close()` starts asyncio's TLS close: it waits for the client's
    close_notify, which never comes (the client's loop is blocked in the `with` exit). Without the
    stop's abort, that socket stayed open after the server's loop was closed."""
    server = TLSServer(certificates["good.pem"], certificates["good.key"])
    server.routes = {"*": _answer_then_linger}
    with server:
        async with _ours(_trusting(certificates["ca.pem"])) as client:
            response = await client.get(server.base_url + "/x")
    assert (response.status_code, response.content) == (200, BODY)
    sockets = [transport.get_extra_info("socket") for transport in server.connections]
    assert len(sockets) == 1 and sockets[0].fileno() == -1
    assert _resource_warnings_on_collecting() == []


@pytest.mark.parametrize("case", ["untrusted CA", "wrong host name"])
async def test_a_failed_tls_handshake_has_released_its_socket_when_it_raises(
    certificates: dict[str, Path], case: str
) -> None:
    # Collected at once, with no loop turn after the error: a socket still held would warn
    # ("unclosed transport"), which the suite's filterwarnings turns into this test's failure.
    name = "good" if case == "untrusted CA" else "other"
    context = httpx.create_ssl_context() if case == "untrusted CA" else _trusting(certificates["ca.pem"])
    with TLSServer(certificates[f"{name}.pem"], certificates[f"{name}.key"]) as server:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", server.port, timeout=5.0)
        with pytest.raises(httpcore.ConnectError):
            await stream.start_tls(context, server_hostname="localhost", timeout=5.0)
        sock = stream.get_extra_info("socket")
        del stream
        gc.collect()
    assert sock is None or sock.fileno() == -1


async def test_a_tls_handshake_that_never_completes_is_a_connect_timeout() -> None:
    with RawServer({"*": _silent}) as server:  # plain TCP: it waits for an HTTP head, never answers TLS
        url = f"https://127.0.0.1:{server.port}/x"
        outcomes = {
            name: await _outcome(make, url, httpx.Timeout(5.0, connect=0.3)) for name, make in CLIENTS.items()
        }
    assert outcomes == {"httpx": httpx.ConnectTimeout, "ours": httpx.ConnectTimeout}


# --------------------------------------------------------------------------- proxies and the choice


FACTORIES = {"API": async_api_client, "downloads": async_download_client}


@pytest.mark.parametrize("factory", sorted(FACTORIES))
async def test_without_a_proxy_in_the_environment_our_async_clients_use_the_asyncio_transport(
    monkeypatch: pytest.MonkeyPatch, factory: str
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert not environment_proxies()
    with RawServer({"*": _ok}) as server:
        async with FACTORIES[factory]() as client:
            response = await client.get(server.base_url + "/x")
    assert isinstance(response.extensions["network_stream"], AsyncioStream)


@pytest.mark.parametrize("factory", sorted(FACTORIES))
async def test_a_proxy_in_the_environment_is_still_used(
    monkeypatch: pytest.MonkeyPatch, factory: str
) -> None:
    """httpx reads proxy variables only for a client without its own transport: with one set, the
    API client keeps httpx's transport, and the request goes through the proxy as before."""
    with RawServer({"*": _ok}) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        assert environment_proxies()
        async with FACTORIES[factory]() as client:
            response = await client.get("http://api.example.test/v1/x")
    assert response.content == BODY
    assert [r.target for r in proxy.requests] == ["http://api.example.test/v1/x"]


async def test_a_socket_option_the_os_refuses_is_a_connect_error_and_closes_the_connection() -> None:
    """As httpcore's anyio backend maps it (ConnectError); and the connection just opened is closed at
    once, not left open until the peer closes it: the peer sees it end."""
    refused = [(socket.SOL_SOCKET, 0x7FFF, 1)]  # no such option: setsockopt raises ENOPROTOOPT
    ended = asyncio.Event()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(OSError):
            await reader.read()  # returns at the client's close; a reset raises
        ended.set()
        writer.close()

    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(httpcore.ConnectError):
            await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5.0, socket_options=refused)
        await asyncio.wait_for(ended.wait(), 5.0)  # never set while the client's socket stays open
    finally:
        server.close()
        await server.wait_closed()
