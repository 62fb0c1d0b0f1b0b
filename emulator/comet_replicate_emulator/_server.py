"""Running the emulator on a real socket: uvicorn in a background thread, or in the foreground."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ._app import EmulatorApp, create_app
from ._config import EmulatorConfig

BACKLOG = 4096


def _uvicorn_config(app: EmulatorApp, log_level: str) -> Any:
    import uvicorn

    # No concurrency limit and a deep accept queue: benchmarks open 1,000 connections at once.
    return uvicorn.Config(
        app,
        lifespan="off",
        log_level=log_level,
        access_log=False,
        limit_concurrency=None,
        backlog=BACKLOG,
        timeout_keep_alive=30,
        server_header=False,
        # A `Prefer: wait` or an event stream may still be open at exit: stop waiting after 2 s.
        timeout_graceful_shutdown=2,
    )


def raise_open_file_limit(wanted: int = 8192) -> int:
    """Lift the soft limit on open files towards `wanted` (1,000 connections need over 1,000 fds).

    Returns the soft limit in force afterwards; platforms without `resource` keep theirs.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # pragma: no cover - a sandbox may refuse
            pass
    return int(soft) if soft != resource.RLIM_INFINITY else wanted


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then, and without it
    # Nagle plus delayed ACKs add about 40 ms to every response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


class RunningEmulator:
    """A served emulator: where it listens, its config, and its counters."""

    def __init__(self, app: EmulatorApp, host: str, port: int) -> None:
        self.app = app
        self.config = app.config
        self.host = host
        self.port = port
        shown = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{shown}:{port}"
        self.cometapi_base_url = self.base_url + "/replicate/v1"
        self.replicate_base_url = self.base_url + "/v1"

    def stats(self) -> dict[str, Any]:
        return self.app.stats()

    def reset(self) -> None:
        self.app.reset()

    def __repr__(self) -> str:
        return f"RunningEmulator(base_url={self.base_url!r})"


@contextlib.contextmanager
def serve(
    config: EmulatorConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    log_level: str = "warning",
    startup_timeout: float = 10.0,
) -> Iterator[RunningEmulator]:
    """Run the emulator on a loopback socket in a background thread for the `with` block.

    `port=0` takes a free port; the socket is bound before the thread starts, so there is no race.
    """
    import uvicorn

    raise_open_file_limit()
    app = create_app(config)
    sock = _bind(host, port)
    bound_port = int(sock.getsockname()[1])
    server = uvicorn.Server(_uvicorn_config(app, log_level))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported to the caller below
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"comet-emulator-{bound_port}", daemon=True)
    thread.start()
    ready = threading.Event()
    deadline = startup_timeout
    step = 0.01
    while not server.started and thread.is_alive() and deadline > 0:
        ready.wait(step)
        deadline -= step
    if not server.started:
        server.should_exit = True
        thread.join(5)
        sock.close()
        raise RuntimeError(f"emulator did not start on {host}:{bound_port}: {errors!r}")
    try:
        yield RunningEmulator(app, host, bound_port)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def run_forever(
    config: EmulatorConfig,
    host: str,
    port: int,
    log_level: str = "info",
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve in the foreground until interrupted (what the CLI does); `announce` gets the base URL."""
    import uvicorn

    raise_open_file_limit()
    app = create_app(config)
    sock = _bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    if announce is not None:
        announce(f"http://{shown}:{sock.getsockname()[1]}")
    server = uvicorn.Server(_uvicorn_config(app, log_level))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
