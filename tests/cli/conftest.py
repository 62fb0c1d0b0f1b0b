"""Fixtures for the CLI tests: a real emulator on a loopback port, and ways to run the command line.

`cli(...)` runs the Typer app in process (typer's CliRunner); `cli_process(...)` runs
`python -m comet_replicate._cli` as a real process, for signals (Ctrl-C, kill -9).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from comet_replicate._cli import build_app
from comet_replicate_emulator import EmulatorConfig, Faults, RunningEmulator, serve
from typer.testing import CliRunner

TOKEN = "sk-cli-test-SECRET-0123456789"
SCHNELL = "black-forest-labs/flux-schnell"

Serve = Callable[..., RunningEmulator]


@pytest.fixture
def serve_emulator() -> Iterator[Serve]:
    """Start emulators with a given config (faults, speed) for the test; all stop at its end."""
    with ExitStack() as stack:

        def start(*, speed: float = 20.0, faults: Faults | None = None, **config: Any) -> RunningEmulator:
            cfg = EmulatorConfig(token=TOKEN, speed=speed, seed=None, faults=faults or Faults(), **config)
            server: RunningEmulator = stack.enter_context(serve(cfg))
            return server

        yield start


@pytest.fixture
def emulator(serve_emulator: Serve, monkeypatch: pytest.MonkeyPatch) -> RunningEmulator:
    """A fast emulator, and the environment (key, base URL) pointing the CLI at it."""
    server = serve_emulator()
    point_at(monkeypatch, server)
    return server


def point_at(monkeypatch: pytest.MonkeyPatch, server: RunningEmulator) -> None:
    monkeypatch.setenv("COMETAPI_KEY", TOKEN)
    monkeypatch.setenv("COMETAPI_BASE_URL", server.cometapi_base_url)


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Invoke the app in process; returns click's Result (exit_code, stdout, stderr)."""
    app = build_app()
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
        return runner.invoke(app, list(args), env=env, catch_exceptions=False)

    return invoke


def cli_command(*args: str) -> list[str]:
    """The argv of the CLI as a separate process."""
    return [sys.executable, "-m", "comet_replicate._cli", *args]


def cli_env(server: RunningEmulator | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMETAPI_")}
    if server is not None:
        env["COMETAPI_KEY"] = TOKEN
        env["COMETAPI_BASE_URL"] = server.cometapi_base_url
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


def run_process(
    *args: str, server: RunningEmulator | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(*args), env=cli_env(server), cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def requests_of(server: RunningEmulator, operation: str) -> int:
    """How many requests of one operation (create, get, cancel) the emulator answered."""
    return sum(server.stats()["requests"].get(operation, {}).values())
