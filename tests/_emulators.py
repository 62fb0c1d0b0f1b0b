"""Real emulators on loopback ports for the suites that drive a server (tests/batch, tests/cli).

Each suite keeps its own token (so a leaked key in a message names its suite) and its own
`serve_emulator` fixture, built here from that token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

from comet_replicate_emulator import EmulatorConfig, Faults, RunningEmulator, serve

SCHNELL = "black-forest-labs/flux-schnell"

Serve = Callable[..., RunningEmulator]


def emulators(token: str) -> Iterator[Serve]:
    """Yield a starter of emulators with a given config (faults, speed, durations) accepting
    `token`; every emulator started stops when the generator is closed (the test's end)."""
    with ExitStack() as stack:

        def start(*, speed: float = 20.0, faults: Faults | None = None, **config: Any) -> RunningEmulator:
            cfg = EmulatorConfig(token=token, speed=speed, seed=None, faults=faults or Faults(), **config)
            server: RunningEmulator = stack.enter_context(serve(cfg))
            return server

        yield start


def requests_of(server: RunningEmulator, operation: str) -> int:
    """How many requests of one operation (create, get, cancel) the emulator answered."""
    return sum(server.stats()["requests"].get(operation, {}).values())
