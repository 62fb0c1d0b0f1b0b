"""The emulator's state, shared by every request: predictions, counters, the clock and the spec.

It holds the parts and nothing else: drawing predictions (`PredictionBuilder`), faults
(`FaultInjector`) and rate limits (`RateLimits`) live in their own modules.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

from ._builder import PredictionBuilder
from ._clock import Clock, ScaledClock
from ._config import EmulatorConfig
from ._faults import FaultInjector
from ._images import ImageCache, ImageSpec, render
from ._limits import RateLimits
from ._operations import Operation
from ._spec import Spec, default_spec
from ._stats import Stats
from ._store import PredictionStore


class Emulator:
    """Everything one emulator instance knows; `reset()` returns it to a freshly seeded start."""

    def __init__(self, config: EmulatorConfig, spec: Spec | None = None) -> None:
        self.config = config
        self.spec = spec or default_spec()
        self.clock: Clock = config.clock or ScaledClock(config.speed)
        self.speed = 1.0 if config.clock is not None else config.speed
        self.stats = Stats()
        self.images = ImageCache(config.image_cache_bytes)
        # Drawing is CPU and memory heavy (an ultra image is 12 MB raw): a few at a time, whatever
        # the number of downloads in flight.
        self._render_slots = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))
        self.predictions = PredictionStore()
        self.tasks: set[asyncio.Task[None]] = set()
        self.builder = PredictionBuilder(config, self.spec)
        self.faults = FaultInjector(config.faults, config.seed)
        self.limits = RateLimits(config)
        self._request_seq = 0

    def render(self, spec: ImageSpec) -> bytes:
        """Encode one output file (runs in a worker thread)."""
        with self._render_slots:
            return render(spec)

    def reset(self) -> None:
        """Forget predictions, counters and cached files; reseed, so a run can be repeated."""
        for task in list(self.tasks):
            task.get_loop().call_soon_threadsafe(task.cancel)
        self.tasks.clear()
        self.predictions.clear()
        self.stats.reset()
        self.images.clear()
        self.builder.reseed()
        self.faults = FaultInjector(self.config.faults, self.config.seed)
        self.limits.clear()
        self._request_seq = 0

    def request_id(self) -> str:
        """CometAPI-style request id: a timestamp and a sequence number."""
        self._request_seq += 1
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(self.clock.now()))
        return f"{stamp}{self._request_seq:09d}"

    def wall_seconds(self, emulator_seconds: float) -> float:
        """A span on the emulator clock in wall seconds (what `Retry-After` promises)."""
        return emulator_seconds / self.speed

    def check_response(self, operation: Operation, status: int, media_type: str, content: bytes) -> None:
        """With `validate_responses`, raise AssertionError (and record it) unless the spec declares it."""
        if not self.config.validate_responses:
            return
        try:
            self.spec.validate_response(operation.template, operation.method, status, media_type, content)
        except AssertionError as exc:
            self.stats.violation(str(exc))
            raise
