"""The async client's network stream (`_transport.AsyncioStream`) sends what httpcore writes for a
request when it reads the answer: a request's head and body leave in one send, not one each. The
write's bounds and faults stay what they were: a send the socket cannot take waits up to the write
timeout (`WriteTimeout`), and a send that fails is reported by the read that follows, as httpcore
reports a write error while writing a request (a server may answer before it closes)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpcore
import pytest
from comet_replicate._constants import MAX_UNSENT_BYTES
from comet_replicate._transport import AsyncioBackend, AsyncioStream, _Protocol

ANSWER = b'HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"id":"p1"}'
BODY = b'{"input":{"prompt":"a lighthouse"}}'


class _Socket(asyncio.Transport):
    """A transport that records each send; `react` says what the peer does after one."""

    def __init__(self, protocol: _Protocol, react: str = "answer") -> None:
        super().__init__()
        self.protocol = protocol
        self.react = react
        self.sends: list[bytes] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.writelines([data])

    def writelines(self, list_of_data: Any) -> None:
        self.sends.append(b"".join(bytes(part) for part in list_of_data))
        if self.react == "answer":
            self.protocol.data_received(ANSWER)
        elif self.react == "full":  # the peer reads nothing: the socket's buffer stays full
            self.protocol.pause_writing()
        elif self.react == "reset":  # the send fails: asyncio closes the transport
            self.closing = True
            self.protocol.connection_lost(ConnectionResetError("connection reset by peer"))

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True


async def _post(react: str, write_timeout: float = 5.0) -> tuple[_Socket, httpcore.Response]:
    protocol = _Protocol()
    socket = _Socket(protocol, react)
    protocol.connection_made(socket)
    connection = httpcore.AsyncHTTP11Connection(
        origin=httpcore.Origin(b"http", b"api.test", 80), stream=AsyncioStream(protocol)
    )
    request = httpcore.Request(
        "POST",
        "http://api.test/v1/models/a/b/predictions",
        headers=[(b"Host", b"api.test"), (b"Content-Length", str(len(BODY)).encode())],
        content=BODY,
        extensions={"timeout": {"read": 5.0, "write": write_timeout}},
    )
    try:
        response = await connection.handle_async_request(request)
        await response.aread()
    finally:
        await connection.aclose()
    return socket, response


async def test_a_request_head_and_body_leave_in_one_send() -> None:
    socket, response = await _post("answer")
    assert response.status == 201 and response.content == b'{"id":"p1"}'
    assert len(socket.sends) == 1
    head, _, body = socket.sends[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/models/a/b/predictions HTTP/1.1\r\n")
    assert body == BODY


async def test_a_send_the_socket_cannot_take_is_bounded_by_the_write_timeout() -> None:
    with pytest.raises(httpcore.WriteTimeout):
        await _post("full", write_timeout=0.05)


async def test_a_send_that_fails_is_reported_by_the_read_as_httpcore_reports_a_write_error() -> None:
    with pytest.raises(httpcore.ReadError, match="reset"):
        await _post("reset")


async def test_a_write_on_a_closed_connection_fails_at_once() -> None:
    protocol = _Protocol()
    socket = _Socket(protocol)
    protocol.connection_made(socket)
    socket.closing = True
    with pytest.raises(httpcore.WriteError):
        await AsyncioStream(protocol).write(b"GET / HTTP/1.1\r\n\r\n")
    assert socket.sends == []


async def test_a_large_or_streamed_body_is_sent_as_it_comes_not_held_whole() -> None:
    """Past `MAX_UNSENT_BYTES` the stream sends what it holds at once, so a streamed upload keeps the
    socket's back-pressure and is never held whole in memory for one send."""
    protocol = _Protocol()
    socket = _Socket(protocol, react="none")
    protocol.connection_made(socket)
    stream = AsyncioStream(protocol)
    chunk = b"x" * (MAX_UNSENT_BYTES // 4)
    await stream.write(b"POST /upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(12):
        await stream.write(chunk)
    assert len(socket.sends) >= 2  # sent in parts while the body came, not once at the read
    assert all(len(sent) <= MAX_UNSENT_BYTES + len(chunk) for sent in socket.sends)
    sent = sum(len(s) for s in socket.sends)
    protocol.data_received(ANSWER)
    await stream.read(65536)  # the rest goes out at the read of the answer
    assert sum(len(s) for s in socket.sends) > sent
    assert b"".join(socket.sends).endswith(chunk * 2)


async def _stream_to_a_peer_that_reads_nothing() -> tuple[AsyncioStream, socket.socket, socket.socket]:
    """A real connection whose peer accepts and never reads (its receive buffer made small)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    stream = await AsyncioBackend().connect_tcp("127.0.0.1", server.getsockname()[1], timeout=5.0)
    peer, _ = server.accept()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return stream, peer, server


@pytest.mark.parametrize("chunk", [1024, 64 * 1024])
async def test_a_streamed_body_the_peer_never_reads_is_a_write_timeout_on_a_real_socket(chunk: int) -> None:
    """Through the operating system's socket, on every supported Python: CPython 3.12.0-3.12.8 and
    3.13.0-3.13.1 never pause a protocol from a TCP transport's writelines (gh-127655), which would
    let a body pile up in memory unbounded by the write timeout."""
    stream, peer, server = await _stream_to_a_peer_that_reads_nothing()
    total = 64 * 1024 * 1024
    sent = 0
    try:
        with pytest.raises(httpcore.WriteTimeout):
            await stream.write(b"POST /upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", timeout=0.2)
            while sent < total:
                await stream.write(b"x" * chunk, timeout=0.2)
                sent += chunk
        assert sent < total // 4  # held back by the socket, not buffered whole
    finally:
        await stream.aclose()
        peer.close()
        server.close()


async def test_a_request_given_up_with_bytes_unsent_does_not_keep_its_socket_open() -> None:
    """After a write timeout httpcore closes the stream: bytes still queued for a peer that reads
    nothing must not hold the socket open until the peer goes away."""
    stream, peer, server = await _stream_to_a_peer_that_reads_nothing()
    try:
        with pytest.raises(httpcore.WriteTimeout):
            for _ in range(1024):
                await stream.write(b"x" * 65536, timeout=0.2)
        await stream.aclose()
        await asyncio.sleep(0)  # the transport releases its socket in the next loop turn
        assert stream.get_extra_info("socket").fileno() == -1
    finally:
        peer.close()
        server.close()
