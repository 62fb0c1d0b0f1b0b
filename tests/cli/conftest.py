"""Fixtures for the CLI tests: a real emulator on a loopback port, and ways to run the command line.

`cli(...)` runs the Typer app in process (typer's CliRunner); `cli_process(...)` runs
`python -m comet_replicate._cli` as a real process, for signals (Ctrl-C, kill -9).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from comet_replicate._cli import build_app
from comet_replicate_emulator import RunningEmulator
from typer.testing import CliRunner

from tests._emulators import SCHNELL as SCHNELL  # re-exported: the suite's tests import it from here
from tests._emulators import Serve, emulators
from tests._emulators import requests_of as requests_of

TOKEN = "sk-cli-test-SECRET-0123456789"


@pytest.fixture
def serve_emulator() -> Iterator[Serve]:
    """Start emulators with a given config (faults, speed) for the test; all stop at its end."""
    yield from emulators(TOKEN)


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
