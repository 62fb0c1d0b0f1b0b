"""Shared pieces of the reliability suites: sizes, the canary key, and a raw loopback HTTP server.

Sizes are bounded for CI; `COMET_REPLICATE_FULL=1` selects the full ones the issue names.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import IO

FULL = os.environ.get("COMET_REPLICATE_FULL") == "1"

#: A key nobody would mistake for anything else: if it shows up in any output, it leaked.
CANARY_KEY = "sk-SECRET-canary-1234567890"


def size(ci: int, full: int) -> int:
    """The CI size, or the full size under COMET_REPLICATE_FULL=1."""
    return full if FULL else ci


@dataclass
class RawRequest:
    """What a client sent to the raw server (headers lower-cased)."""

    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[RawRequest, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """An HTTP/1.1 server on 127.0.0.1 whose handlers write raw bytes.

    A framework would refuse to lie about Content-Length or to trickle a body byte by byte; hostile
    download tests need exactly that. Each connection serves one request and is closed. Every request
    is recorded in `requests`, so a test can assert on the headers a client sent. A route `"*"`
    answers every path no other route names.
    """

    def __init__(self, routes: dict[str, Handler]) -> None:
        self.routes = routes
        self.requests: list[RawRequest] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="raw-http", daemon=True)
        self._server: asyncio.Server | None = None
        self.port = 0
        #: The socket transport of every connection accepted, kept so the stop can close each one.
        self.connections: list[asyncio.WriteTransport] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RawServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        future.result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accepted, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Awaitable[None]:
        """Called as each connection is made, before its task starts: its transport is recorded even
        when the stop cancels the task before it ran (a cancelled coroutine runs none of its code)."""
        self.connections.append(writer.transport)
        return self._connection(reader, writer)

    def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Awaitable[None]:
        """What each connection runs (a subclass may first start TLS)."""
        return self._serve(reader, writer)

    async def _stop(self) -> None:
        """Close everything this server opened before its loop is closed.

        Cancelling the connections' tasks is not enough: a connection can outlive its task. Under TLS,
        `writer.close()` starts asyncio's TLS close, which waits (up to 30 s) for the client's
        close_notify or EOF; a client whose loop is blocked in this stop (the test's `with` exit)
        sends neither. The socket would then stay open after the loop is closed, held only by the
        reference cycle between the transport and its protocol, and warn ("unclosed transport
        <_SelectorSocketTransport fd=N>", neither closing nor polled) when a later garbage collection
        frees it, in whichever test that happens: the py311 reliability flake of session 4.
        """
        assert self._server is not None
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for transport in self.connections:
            # The raw socket's transport (under TLS, the one below asyncio's TLS layer). One whose
            # connection is already lost has no protocol left, and its loop reference is gone: a
            # transport closed with data still buffered is released by its last write, without the
            # count `abort` checks, so aborting it again would fail on py311.
            if transport.get_protocol() is not None:
                transport.abort()
        await asyncio.sleep(0)  # one more turn: the closed connections' sockets are released in it

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            request = RawRequest(method, target, headers)
            self.requests.append(request)
            path = target.split("?", 1)[0]
            handler = self.routes.get(path) or self.routes.get("*")
            if handler is None:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            else:
                await handler(request, writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


def http_head(status: str, headers: dict[str, str]) -> bytes:
    """A status line and headers, ready to write (always `Connection: close`)."""
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()), "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class FakeTime:
    """A monotonic clock that moves only when the client sleeps: waits end by deadline, not by wall time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps = 0

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_773_314_838.258 + (self.now - 1000.0)

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += max(seconds, 0.0)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def on_fake_time(client: object, ft: FakeTime) -> None:
    """Point a Client/AsyncClient (and its downloader) at a fake clock and fake sleeps."""
    import random

    shared = client._state.shared  # type: ignore[attr-defined]
    shared.clock = ft.clock
    shared.wall_clock = ft.wall
    shared.rng = random.Random(0)
    downloader = client._downloader  # type: ignore[attr-defined]
    downloader.rng = random.Random(0)
    is_async = type(client).__name__ == "AsyncClient"
    client._driver.sleep = ft.asleep if is_async else ft.sleep  # type: ignore[attr-defined]


def prediction_body(status: str = "succeeded", *, id: str = "p1", output: object = None) -> dict[str, object]:
    """A Prediction body as openapi.yaml describes it (the starting point that fuzzing breaks)."""
    if output is None and status == "succeeded":
        output = [f"https://delivery.test/{id}/out-0.webp"]
    return {
        "id": id,
        "model": "black-forest-labs/flux-schnell",
        "version": "hidden",
        "input": {"prompt": "boat"},
        "logs": "",
        "output": output,
        "error": None,
        "status": status,
        "created_at": "2026-03-12T11:27:18.258Z",
        "urls": {
            "get": f"https://api.replicate.com/v1/predictions/{id}",
            "cancel": f"https://api.replicate.com/v1/predictions/{id}/cancel",
        },
    }


def free_port() -> int:
    """A free loopback port (closed again before use: the emulator binds it a moment later)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmulatorProcess:
    """`python -m comet_replicate_emulator` in its own process: its CPU never competes with the client's
    event loop for the GIL, and its counters survive any client process being killed.

    Its stderr goes to a temporary file, never to a pipe: nobody reads a pipe while the emulator
    serves, so once its 64 kB filled (uvicorn logs a traceback for every exception in the app) the
    emulator blocked writing its log and stopped answering. `log()` reads what it wrote.
    """

    def __init__(self, *flags: str) -> None:
        self.flags = list(flags)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.cometapi_base_url = self.base_url + "/replicate/v1"
        self.replicate_base_url = self.base_url + "/v1"
        self.proc: object = None
        self._http: object = None
        self._prompts: dict[str, str] = {}
        self._stderr: IO[bytes] | None = None

    def __enter__(self) -> EmulatorProcess:
        import subprocess
        import sys
        import time

        import httpx

        command = [sys.executable, "-m", "comet_replicate_emulator", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--log-level", "warning", *self.flags]
        self._stderr = tempfile.TemporaryFile()
        self.proc = proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self._stderr)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log = self.log()
                self._stderr.close()
                raise RuntimeError(f"emulator exited: {log}")
            try:
                httpx.get(self.base_url + "/_emulator/stats", timeout=1.0).raise_for_status()
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        proc.kill()
        proc.wait(10)
        self._stderr.close()
        raise RuntimeError("emulator did not start within 30 s")

    def __exit__(self, *exc: object) -> None:
        import subprocess

        proc = self.proc
        assert isinstance(proc, subprocess.Popen)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if self._stderr is not None:
            self._stderr.close()
        if self._http is not None:
            self._http.close()  # type: ignore[attr-defined]

    def log(self) -> str:
        """What the emulator wrote to stderr so far (uvicorn's warnings and tracebacks)."""
        if self._stderr is None or self._stderr.closed:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stats(self) -> dict[str, object]:
        import httpx

        answer = httpx.get(self.base_url + "/_emulator/stats", timeout=10.0)
        answer.raise_for_status()
        result: dict[str, object] = answer.json()
        return result

    def prediction(self, prediction_id: str, *, attempts: int = 50) -> dict[str, object]:
        """A prediction as the emulator holds it, retried through any injected GET faults."""
        import httpx

        if self._http is None:
            self._http = httpx.Client(headers={"Authorization": "Bearer sk-reliability"}, timeout=10.0)
        last: BaseException | None = None
        for _ in range(attempts):
            try:
                answer = self._http.get(f"{self.cometapi_base_url}/predictions/{prediction_id}")
                if answer.status_code == 200:
                    body: dict[str, object] = answer.json()
                    return body
            except (httpx.HTTPError, ValueError) as exc:
                last = exc
        raise RuntimeError(f"could not read prediction {prediction_id}: {last!r}")

    def prompt_of(self, prediction_id: str) -> str:
        """The prompt a prediction was created with (cached: it never changes)."""
        if prediction_id not in self._prompts:
            held = self.prediction(prediction_id)
            prompt = held["input"].get("prompt") if isinstance(held["input"], dict) else None
            self._prompts[prediction_id] = str(prompt)
        return self._prompts[prediction_id]
