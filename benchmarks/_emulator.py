"""The emulator as a separate process on loopback, so its CPU never lands on a contender's account."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

TOKEN = "bench-token"


def free_port() -> int:
    """A port the kernel just handed out on loopback (the emulator binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EmulatorProcess:
    """A running ``python -m comet_replicate_emulator`` and how to reach it."""

    process: subprocess.Popen[bytes]
    base_url: str
    token: str
    log_path: str

    def _call(self, method: str, path: str, body: Any = None, *, auth: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=30) as resp:
            answer = resp.read()
        return json.loads(answer) if answer else None

    def warm_up(self, model: str = "black-forest-labs/flux-schnell") -> None:
        """One create and one get, then a reset: the emulator's first request builds its spec
        validators (about a second), which must not land on the first contender's clock."""
        created = self._call(
            "POST", f"/replicate/v1/models/{model}/predictions", {"input": {"prompt": "warm-up"}}, auth=True
        )
        self._call("GET", f"/replicate/v1/predictions/{created['id']}", auth=True)
        self.reset()

    def stats(self) -> Any:
        """The emulator's own request counters (``GET /_emulator/stats``)."""
        return self._call("GET", "/_emulator/stats")

    def reset(self) -> None:
        """Forget predictions and counters (``POST /_emulator/reset``)."""
        self._call("POST", "/_emulator/reset")

    def cpu_seconds(self) -> float | None:
        """User+system CPU of the emulator process so far (None without psutil)."""
        try:
            import psutil
        except ImportError:
            return None
        try:
            times = psutil.Process(self.process.pid).cpu_times()
        except psutil.Error:
            return None
        return float(times.user + times.system)

    def log_tail(self, limit: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                data = fh.read()
        except OSError:
            return ""
        return data[-limit:].decode("utf-8", "replace")


def _wait_ready(emu: EmulatorProcess, deadline: float) -> None:
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if emu.process.poll() is not None:
            raise RuntimeError(
                f"emulator exited with code {emu.process.returncode} before it was ready:\n{emu.log_tail()}"
            )
        try:
            emu.stats()
            return
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last_error = exc
            time.sleep(0.05)
    raise RuntimeError(f"emulator not ready in time ({last_error!r}):\n{emu.log_tail()}")


@contextlib.contextmanager
def running_emulator(
    extra_args: Sequence[str] = (),
    *,
    module: str = "benchmarks._server",
    cwd: str | None = None,
    startup_timeout: float = 30.0,
    attempts: int = 3,
) -> Iterator[EmulatorProcess]:
    """Start the emulator (``module`` takes the CLI's --host/--port/--token) on a free loopback
    port, wait until it answers, stop it afterwards.

    The port is chosen before the emulator binds it, so another process may grab it in between; the
    start is retried on a fresh port when that happens.
    """
    last: RuntimeError | None = None
    for _ in range(attempts):
        port = free_port()
        log = tempfile.NamedTemporaryFile(prefix="bench-emulator-", suffix=".log", delete=False)  # noqa: SIM115
        cmd = [
            sys.executable,
            "-m",
            module,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--token",
            TOKEN,
            *extra_args,
        ]
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        log.close()
        emu = EmulatorProcess(process, f"http://127.0.0.1:{port}", TOKEN, log.name)
        try:
            _wait_ready(emu, time.monotonic() + startup_timeout)
        except RuntimeError as exc:
            last = exc
            _stop(emu)
            continue
        try:
            yield emu
        finally:
            _stop(emu)
            with contextlib.suppress(OSError):
                os.unlink(log.name)
        return
    assert last is not None
    raise last


def _stop(emu: EmulatorProcess) -> None:
    if emu.process.poll() is None:
        emu.process.terminate()
        try:
            emu.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            emu.process.kill()
            emu.process.wait(timeout=10)
