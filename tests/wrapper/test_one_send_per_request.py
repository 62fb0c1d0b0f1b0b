"""The async client's network stream (`_transport.AsyncioStream`) sends what httpcore writes for a
request when it reads the answer: a request's head and body leave in one send, not one each. The
write's bounds and faults stay what they were: a send the socket cannot take waits up to the write
timeout (`WriteTimeout`), and a send that fails is reported by the read that follows, as httpcore
reports a write error while writing a request (a server may answer before it closes)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpcore
import pytest
from comet_replicate._constants import MAX_UNSENT_BYTES
from comet_replicate._transport import AsyncioStream, _Protocol

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
