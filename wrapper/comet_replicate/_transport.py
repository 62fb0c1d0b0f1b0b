"""An asyncio-native network backend for httpcore, and the httpx transport an `AsyncClient` sends
its API requests through.

Why it exists: httpx's own async transport reaches the socket through anyio, which opens a cancel
scope (`fail_after`) around every read and write and runs its own stream layer over asyncio's, and
answers httpcore's "is this idle connection readable?" with a poll syscall. With hundreds of creates
held open at once that was a large share of the client's CPU (session 3's py-spy profile: ~12 % in
`fail_after` alone). This backend talks to asyncio's transports directly: a write goes straight to
the socket, a read returns what the protocol has buffered and arms one timer only when it has to
wait, and readability is what the event loop already saw. Measured (benchmarks section 4, 1,000
predictions at the limits, `AsyncClient.run` + `gather`, client CPU, paired runs on one machine):
3.49 / 3.10 s with httpx's transport -> 2.37 / 2.47 s with this one; 500 concurrent held creates
against the emulator: 1.51 -> 1.10 ms of CPU per prediction (best of 4).

It is built only from public extension points: `httpcore.AsyncNetworkBackend` /
`httpcore.AsyncNetworkStream` for the backend, `httpcore.AsyncConnectionPool(network_backend=...)`
for the pool, and `httpx.AsyncBaseTransport` for the transport, which maps httpcore's exceptions to
the same httpx classes httpx's own transport raises (our retry policy classifies those).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import ssl
import typing
from collections.abc import AsyncIterator, Callable, Iterable

import httpcore
import httpx

from ._constants import HAPPY_EYEBALLS_DELAY, MAX_UNSENT_BYTES, READ_BUFFER_HIGH_WATER

__all__ = ["AsyncioBackend", "AsyncioStream", "AsyncioTransport", "HeldTransport"]

SocketOption: typing.TypeAlias = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)

#: httpcore's exceptions and the httpx class httpx's own transport raises for each (most specific first:
#: a class appears before its bases, so the first match is the most specific one).
_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


class _HttpxErrors:
    """httpcore's exceptions raised as httpx's (the same mapping as httpx's own transport). A class,
    not a `contextlib.contextmanager`: it is entered several times per request, and a generator-based
    one costs a generator and its frame each time. Stateless: its one instance (`_httpx_errors()`)
    is entered anywhere, by many requests at once."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        if isinstance(exc, Exception):
            for source, target in _EXCEPTIONS:
                if isinstance(exc, source):
                    raise target(str(exc)) from exc


_HTTPX_ERRORS = _HttpxErrors()


def _httpx_errors() -> _HttpxErrors:
    """httpcore's exceptions raised as httpx's, in a `with` block."""
    return _HTTPX_ERRORS


def _timed_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _Protocol(asyncio.Protocol):
    """Buffers what the socket delivers and wakes the one reader or writer waiting on it. Reading
    pauses once `READ_BUFFER_HIGH_WATER` bytes wait unread, so a body that never ends is held back
    by the socket, not by this buffer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.eof = False
        self.lost: BaseException | None = None
        self.closed = False
        self.paused_reading = False
        self.paused_writing = False
        self.reader: asyncio.Future[None] | None = None
        self.drainer: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > READ_BUFFER_HIGH_WATER and not self.paused_reading and self.transport is not None:
            self.paused_reading = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False  # close our side too (HTTP/1.1 never half-closes)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost = exc
        self._wake_reader()
        drainer, self.drainer = self.drainer, None
        if drainer is not None and not drainer.done():
            drainer.set_result(None)

    def pause_writing(self) -> None:
        self.paused_writing = True

    def resume_writing(self) -> None:
        self.paused_writing = False
        drainer, self.drainer = self.drainer, None
        if drainer is not None and not drainer.done():
            drainer.set_result(None)

    def _wake_reader(self) -> None:
        reader, self.reader = self.reader, None
        if reader is not None and not reader.done():
            reader.set_result(None)

    def take(self, max_bytes: int) -> bytes:
        """Up to `max_bytes` of the buffered data (the buffer must not be empty)."""
        chunk = self.chunks[0]
        if len(chunk) <= max_bytes:
            del self.chunks[0]
        else:
            chunk, self.chunks[0] = chunk[:max_bytes], chunk[max_bytes:]
        self.buffered -= len(chunk)
        if self.paused_reading and self.buffered <= READ_BUFFER_HIGH_WATER // 2 and not self.closed:
            self.paused_reading = False
            assert self.transport is not None
            self.transport.resume_reading()
        return chunk


async def _wait(waiter: asyncio.Future[None], timeout: float | None) -> None:
    """Wait for `waiter`; TimeoutError after `timeout` seconds (one timer, cancelled after)."""
    if timeout is None:
        await waiter
        return
    timer = asyncio.get_running_loop().call_later(timeout, _timed_out, waiter)
    try:
        await waiter
    finally:
        timer.cancel()


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection, read and written through asyncio's transport.

    What httpcore writes is sent when it next reads (it reads the answer right after writing a
    request), or once more than `MAX_UNSENT_BYTES` wait: a request's head and body go out in one
    send, not one each (a syscall and a packet fewer per request with a body). The write's bounds
    still hold: a send the socket cannot take waits up to the write timeout (`httpcore.WriteTimeout`),
    and a send that fails leaves the read to report what the server did, as httpcore does with a
    write error."""

    def __init__(self, protocol: _Protocol) -> None:
        self._protocol = protocol
        self._tcp = protocol.transport  # under TLS, closed directly (see `aclose`)
        self._unsent: list[bytes] = []
        self._unsent_bytes = 0
        self._write_timeout: float | None = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._unsent:
            await self._send()
        protocol = self._protocol
        if not protocol.chunks and not protocol.eof and not protocol.closed:
            if timeout is not None and timeout <= 0:
                raise httpcore.ReadTimeout("read timed out")
            waiter = protocol.reader = asyncio.get_running_loop().create_future()
            try:
                await _wait(waiter, timeout)
            except TimeoutError:
                raise httpcore.ReadTimeout("read timed out") from None
            finally:
                protocol.reader = None
        if protocol.chunks:
            return protocol.take(max_bytes)
        if protocol.lost is not None:
            raise httpcore.ReadError(str(protocol.lost) or type(protocol.lost).__name__)
        return b""  # end of stream (httpcore turns an unexpected one into RemoteProtocolError)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        transport = protocol.transport
        if protocol.closed or transport is None or transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._unsent.append(buffer)  # sent by the next read (`_send`)
        self._unsent_bytes += len(buffer)
        self._write_timeout = timeout
        if self._unsent_bytes > MAX_UNSENT_BYTES:  # a large or streamed body: send as it comes
            await self._send()

    async def _send(self) -> None:
        """Send what was written since the last read, at once. A failed send (which closes the
        transport) is left to the read that follows, as httpcore leaves a `WriteError` while writing a
        request to the read of the answer (a server may answer before it closes)."""
        unsent, size = self._unsent, self._unsent_bytes
        self._unsent, self._unsent_bytes = [], 0
        protocol = self._protocol
        transport = protocol.transport
        if protocol.closed or transport is None or transport.is_closing():
            return
        # `write`, not `writelines`: on CPython 3.12.0-3.12.8 and 3.13.0-3.13.1 a plain TCP transport's
        # writelines never pauses its protocol (gh-127655), so a full socket would go unnoticed and the
        # write timeout unenforced. Small parts are joined into one send (a lone part is joined without
        # a copy); a large one goes as it is. Each write sends at once what the socket takes.
        if size <= MAX_UNSENT_BYTES:
            transport.write(b"".join(unsent))
        else:
            for part in unsent:
                transport.write(part)
        if protocol.paused_writing and not transport.is_closing():
            # the socket is full: wait until it drains below the low mark
            waiter = protocol.drainer = asyncio.get_running_loop().create_future()
            try:
                await _wait(waiter, self._write_timeout)
            except TimeoutError:
                raise httpcore.WriteTimeout("write timed out") from None

    async def aclose(self) -> None:
        """Close the socket: without a TLS close_notify exchange under TLS, as httpcore's anyio
        backend does (its streams are not `standard_compatible`), so a peer that never answers one
        cannot keep the socket open. Bytes still unsent (a request given up, as after a write
        timeout) are dropped and the socket aborted: a peer that reads nothing cannot keep it open
        either (a plain close would wait for them to be sent)."""
        self._unsent, self._unsent_bytes = [], 0
        if self._tcp is not None:
            if self._tcp.get_write_buffer_size():
                self._tcp.abort()
            else:
                self._tcp.close()

    def abort(self) -> None:
        if self._tcp is not None:
            self._tcp.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        protocol = self._protocol
        assert protocol.transport is not None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                tls = await loop.start_tls(
                    protocol.transport, protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            self.abort()
            raise httpcore.ConnectTimeout("TLS handshake timed out") from None
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            self.abort()
            raise httpcore.ConnectError(str(exc)) from exc
        except BaseException:
            self.abort()
            raise
        if tls is None:  # pragma: no cover - only for a closed transport
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        protocol.transport = tls
        return self

    def get_extra_info(self, info: str) -> typing.Any:
        protocol = self._protocol
        transport = protocol.transport
        if info == "is_readable":
            # the loop reads the socket for us: "readable" while idle means data, EOF or a close arrived
            return bool(protocol.chunks) or protocol.eof or protocol.closed
        if transport is None:
            return None
        if info == "ssl_object":
            return transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "socket":
            return transport.get_extra_info("socket")
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Opens `AsyncioStream`s (asyncio sets TCP_NODELAY on every TCP connection, as anyio does)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = None if local_address is None else (local_address, 0)
        # Happy eyeballs as anyio's backend does (RFC 8305's 250 ms); an address has only itself to race.
        delay = None if _is_address(host) else HAPPY_EYEBALLS_DELAY
        protocol = _Protocol()
        connecting = loop.create_connection(
            lambda: protocol, host, port, local_addr=local, happy_eyeballs_delay=delay
        )
        return await _opened(protocol, connecting, f"{host}:{port}", timeout, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        protocol = _Protocol()
        connecting = loop.create_unix_connection(lambda: protocol, path)
        return await _opened(protocol, connecting, path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _opened(
    protocol: _Protocol,
    connecting: typing.Awaitable[object],
    where: str,
    timeout: float | None,
    options: Iterable[SocketOption] | None,
) -> AsyncioStream:
    """The stream over `protocol` once `connecting` (a TCP or Unix connect) is done within
    `timeout`, with httpcore's connect errors and the socket options applied."""
    try:
        async with asyncio.timeout(timeout):
            await connecting
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"connecting to {where} timed out") from None
    except OSError as exc:
        raise httpcore.ConnectError(str(exc)) from exc
    stream = AsyncioStream(protocol)
    sock = stream.get_extra_info("socket")
    try:
        for option in options or ():
            sock.setsockopt(*option)
    except OSError as exc:  # an option the OS refuses: a connect error, as anyio's backend raises it
        stream.abort()  # and the connection just opened is not left to the peer to close
        raise httpcore.ConnectError(str(exc)) from exc
    return stream


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: typing.AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            with _httpx_errors():
                await aclose()


def _core_request(request: httpx.Request) -> httpcore.Request:
    """httpx's request as httpcore's (what httpx's own transport hands its pool)."""
    assert isinstance(request.stream, httpx.AsyncByteStream)
    url = request.url
    return httpcore.Request(
        method=request.method,
        url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
        headers=request.headers.raw,
        content=request.stream,
        extensions=request.extensions,
    )


def _httpx_response(response: httpcore.Response, stream: httpx.AsyncByteStream) -> httpx.Response:
    return httpx.Response(
        status_code=response.status,
        headers=response.headers,
        stream=stream,
        extensions=response.extensions,
    )


class AsyncioTransport(httpx.AsyncBaseTransport):
    """httpx's `AsyncHTTPTransport` for HTTP/1.1 without a proxy, over `AsyncioBackend`."""

    def __init__(self, ssl_context: ssl.SSLContext | None, limits: httpx.Limits) -> None:
        """`ssl_context` None: for a client that only talks plain http (httpcore would fall back to
        its own default context for an https request)."""
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=AsyncioBackend(),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        core_request = _core_request(request)
        with _httpx_errors():
            response = await self._pool.handle_async_request(core_request)
        assert isinstance(response.stream, typing.AsyncIterable)
        return _httpx_response(response, _ResponseStream(response.stream))

    async def aclose(self) -> None:
        await self._pool.aclose()


class HeldTransport(httpx.AsyncBaseTransport):
    """The transport of held creates and of the library's own downloads: each request on a connection
    of its own (httpcore's public `AsyncHTTPConnection`, over `AsyncioBackend`), the idle ones kept
    for reuse, most recent first.

    Why not httpcore's pool: on every acquire and release it walks every connection it holds (and,
    for each idle one, the whole pool again), to queue requests for connections. Held creates never
    queue (the client's held-create slots bound them, and each holds its connection until its
    prediction ends), so all they need of a pool is an idle connection to reuse: here a pop, and
    giving it back an append. Measured, 300 concurrent held creates against the emulator, fresh
    connections, CPU per create (median of 8 interleaved rounds): 19 httpcore pools 637 µs, one
    connection each 536 µs. Idle connections follow the pool's rules: at most
    `limits.max_keepalive_connections` kept (the oldest closed first), none reused once expired
    (`keepalive_expiry`) or once the server closed it (httpcore's `has_expired`); a request that
    finds a reused connection unavailable (it never left) goes on a fresh one. At most
    `limits.max_connections` are in use at once: a request beyond waits for one to end, up to its
    pool timeout (`httpx.PoolTimeout`), as in httpcore's pool. Idle connections of several origins
    (a download's redirect to another host) are kept side by side.

    `open` is the one way in: `handle_async_request` wraps what it returns in an `httpx.Response`;
    the async driver reads a download's body from it directly (`_drivers.AsyncDriver`)."""

    def __init__(
        self, ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext] | None, limits: httpx.Limits
    ) -> None:
        """`ssl_context` None: plain http only (see `AsyncioTransport`); a callable: asked for the
        context on the first https connection (downloads: a process whose outputs are all served over
        plain http, from a local emulator, never builds one)."""
        self._ssl_context = ssl_context
        self._keep = limits.max_keepalive_connections
        self._max = limits.max_connections
        self._expiry = limits.keepalive_expiry
        self._backend = AsyncioBackend()
        self._idle: list[httpcore.AsyncHTTPConnection] = []  # oldest first
        self._open: set[httpcore.AsyncHTTPConnection] = set()  # every connection not closed here yet
        self._waiters: list[asyncio.Future[None]] = []  # requests waiting for a connection to end

    @property
    def connections(self) -> tuple[int, int]:
        """(open, idle) connections: what the transport holds, for tests and diagnostics."""
        return len(self._open), len(self._idle)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response, stream = await self.open(_core_request(request))
        return _httpx_response(response, stream)

    async def open(self, request: httpcore.Request) -> tuple[httpcore.Response, httpx.AsyncByteStream]:
        """Send `request`; its answer and the body stream, read with httpx's errors, whose `aclose`
        gives the connection back. Raises httpx's errors."""
        origin = request.url.origin
        while True:
            connection, reused = await self._take(origin, request.extensions)
            try:
                with _httpx_errors():
                    response = await connection.handle_async_request(request)
            except httpcore.ConnectionNotAvailable:
                await self._close(connection)
                if reused:
                    continue  # the request never left: send it on a fresh connection
                raise httpx.ConnectError("a new connection was not available") from None
            except BaseException:
                await self._give_back(connection)
                raise
            assert isinstance(response.stream, typing.AsyncIterable)
            return response, _HeldStream(response.stream, self, connection)

    async def _take(
        self, origin: httpcore.Origin, extensions: typing.Mapping[str, typing.Any]
    ) -> tuple[httpcore.AsyncHTTPConnection, bool]:
        """The most recently used idle connection to `origin` still usable, or a new one once fewer
        than `max_connections` are in use: (connection, reused)."""
        deadline: float | None = None
        while True:
            connection = await self._reusable(origin)
            if connection is not None:
                return connection, True
            if self._max is None or len(self._open) - len(self._idle) < self._max:
                return self._new(origin), False
            now = asyncio.get_running_loop().time()
            if deadline is None:
                pool = extensions.get("timeout", {}).get("pool")
                deadline = math.inf if pool is None else now + pool
            await self._wait_for_room(None if deadline == math.inf else deadline - now)

    async def _reusable(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection | None:
        """The most recently used idle connection to `origin` still usable, taken out of the idle
        ones; the unusable ones to `origin` met on the way are closed."""
        idle = self._idle
        index = len(idle)
        while index > 0:
            index -= 1
            connection = idle[index]
            if connection.can_handle_request(origin):
                del idle[index]
                if connection.is_available() and not connection.has_expired():
                    return connection
                await self._close(connection)
                index = len(idle)  # the list may have changed meanwhile: look again from the top
        return None

    def _new(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection:
        context = self._ssl_context
        if callable(context):
            context = None if origin.scheme == b"http" else context()
        connection = httpcore.AsyncHTTPConnection(
            origin=origin,
            ssl_context=context,
            keepalive_expiry=self._expiry,
            http1=True,
            http2=False,
            network_backend=self._backend,
        )
        self._open.add(connection)
        return connection

    async def _wait_for_room(self, timeout: float | None) -> None:
        """Wait until a connection in use ends, up to what is left of the request's pool timeout."""
        if timeout is not None and timeout <= 0:
            raise httpx.PoolTimeout("no connection became free within the pool timeout")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await _wait(waiter, timeout)
        except TimeoutError:
            raise httpx.PoolTimeout("no connection became free within the pool timeout") from None
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._wake()  # woken, then cancelled: the room goes to the next request
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def _wake(self) -> None:
        """A connection in use ended: the longest-waiting request may take its room."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _give_back(self, connection: httpcore.AsyncHTTPConnection) -> None:
        """A request on `connection` ended: kept if idle (within the keep-alive count), else closed;
        idle ones that expired meanwhile are closed too, oldest first."""
        idle = self._idle
        while idle and idle[0].has_expired():
            await self._close(idle.pop(0))
        if connection not in self._open:
            return  # closed meanwhile (`aclose`)
        if not connection.is_idle() or connection.has_expired():
            await self._close(connection)
            return
        idle.append(connection)
        if self._waiters:
            self._wake()
        if self._keep is not None and len(idle) > self._keep:
            await self._close(idle.pop(0))

    async def _close(self, connection: httpcore.AsyncHTTPConnection) -> None:
        self._open.discard(connection)
        if self._waiters:
            self._wake()
        with _httpx_errors():
            await connection.aclose()

    async def aclose(self) -> None:
        """Close every connection, in use or idle (as httpcore's pool does)."""
        connections, self._open, self._idle = self._open, set(), []
        for connection in connections:
            with _httpx_errors():
                await connection.aclose()


class _HeldStream(httpx.AsyncByteStream):
    """A held create's response body: closing it gives its connection back to `HeldTransport`."""

    def __init__(
        self,
        stream: typing.AsyncIterable[bytes],
        owner: HeldTransport,
        connection: httpcore.AsyncHTTPConnection,
    ) -> None:
        self._stream = stream
        self._owner = owner
        self._connection: httpcore.AsyncHTTPConnection | None = connection

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            aclose = getattr(self._stream, "aclose", None)
            if aclose is not None:
                with _httpx_errors():
                    await aclose()
        finally:
            await self._owner._give_back(connection)
