"""Fixtures for the batch library tests: a real emulator on a loopback port and clients pointed at it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from comet_replicate import AsyncClient
from comet_replicate_emulator import RunningEmulator

from tests._emulators import SCHNELL as SCHNELL  # re-exported: the suite's tests import it from here
from tests._emulators import Serve, emulators
from tests._emulators import requests_of as requests_of

TOKEN = "sk-batch-test-0123456789"


@pytest.fixture
def serve_emulator() -> Iterator[Serve]:
    """Start emulators with a given config (faults, speed, durations); all stop at the test's end."""
    yield from emulators(TOKEN)


@pytest.fixture
def emulator(serve_emulator: Serve) -> RunningEmulator:
    return serve_emulator()


def client_for(server: RunningEmulator | str) -> AsyncClient:
    url = server if isinstance(server, str) else server.cometapi_base_url
    return AsyncClient(TOKEN, base_url=url)


def prompts(count: int, prefix: str = "boat") -> list[dict[str, Any]]:
    return [{"prompt": f"{prefix} {n}"} for n in range(1, count + 1)]


def write_jsonl(path: Path, values: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(value) + "\n" for value in values), encoding="utf-8")
    return path


def first_ones_take(seconds: float, count: int) -> Callable[[str, object], tuple[float, float]]:
    """Emulator durations: the first ``count`` predictions run ``seconds``, later ones are quick."""
    created = 0

    def duration(model: str, value: object) -> tuple[float, float]:
        nonlocal created
        created += 1
        return (0.05, seconds) if created <= count else (0.05, 0.2)

    return duration
