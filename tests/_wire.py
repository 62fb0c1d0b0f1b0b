"""A loopback HTTP/1.1 server in a thread, for tests that look at what reaches the wire: each test's
handler records the requests it sees (to compare the library's direct requests with what httpx's
`send` would write) and answers them."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar


class WireServer(http.server.ThreadingHTTPServer):
    """A server on 127.0.0.1 at a free port; subclasses add what their handler records."""

    daemon_threads = True

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 (keep-alive, as the library's clients expect) without a log line per request."""

    protocol_version = "HTTP/1.1"

    def answer(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        """Send `status` with `headers` (in that order), then the body's content-length and the body."""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


Server = TypeVar("Server", bound=WireServer)


@contextmanager
def serving(server: Server) -> Iterator[Server]:
    """`server` answering in a thread until the block ends; then it is shut down and its socket closed."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
