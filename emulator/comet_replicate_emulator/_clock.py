"""Emulator time: seconds on a clock that may run faster than the wall, or only when a test says so.

Every duration the emulator knows (queueing, running, `Prefer: wait`, `Cancel-After`, retention,
the requests-per-minute window) is measured on this clock, so `speed=100` makes a 5 s prediction take
50 ms of wall time while its timestamps and metrics still read 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What the emulator needs from time."""

    def now(self) -> float:
        """Emulator seconds since the Unix epoch."""
        ...

    async def sleep_until(self, when: float, wake: asyncio.Event | None = None) -> None:
        """Return at emulator time `when`, or earlier once `wake` is set."""
        ...


class ScaledClock:
    """Wall time sped up by `speed`, starting from the real time at creation."""

    def __init__(self, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError("speed must be positive")
        self.speed = float(speed)
        self._wall0 = time.time()
        self._mono0 = time.monotonic()

    def now(self) -> float:
        return self._wall0 + (time.monotonic() - self._mono0) * self.speed

    async def sleep_until(self, when: float, wake: asyncio.Event | None = None) -> None:
        delay = max(0.0, (when - self.now()) / self.speed)
        if wake is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=delay)


class ManualClock:
    """A clock that moves only when `advance()` or `set()` is called (thread-safe, for tests)."""

    def __init__(self, start: float = 1_767_225_600.0, poll_interval: float = 0.002) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        self._poll = poll_interval

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._now += seconds

    def set(self, when: float) -> None:
        with self._lock:
            if when < self._now:
                raise ValueError("a clock does not go backwards")
            self._now = when

    async def sleep_until(self, when: float, wake: asyncio.Event | None = None) -> None:
        # Polling keeps this correct when the test advances the clock from another thread.
        while self.now() < when and not (wake is not None and wake.is_set()):
            await asyncio.sleep(self._poll)
