"""Request-rate limits on the emulator clock: sliding one-minute windows, as Replicate enforces them.

Replicate documents 600 creates a minute and 3,000 other requests a minute per account. Each limit
keeps the times of the requests it admitted during the last minute; a request that would exceed it is
refused with the time until the oldest of them leaves the window (what `Retry-After` then says).
Refused requests do not enter the window, so a client that backs off recovers at once.
"""

from __future__ import annotations

from collections import deque

from ._config import EmulatorConfig

WINDOW_S = 60.0


class SlidingWindow:
    """At most `limit` admitted requests in any `WINDOW_S` emulator seconds."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._admitted: deque[float] = deque()

    def admit(self, now: float) -> float | None:
        """None when the request is admitted, else emulator seconds until a slot frees."""
        window = self._admitted
        while window and window[0] <= now - WINDOW_S:
            window.popleft()
        if len(window) >= self.limit:
            return max(0.0, window[0] + WINDOW_S - now)
        window.append(now)
        return None


class RateLimits:
    """The account-wide limits (creates, everything else) and the older per-operation `rpm_limit`."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clear()

    def clear(self) -> None:
        config = self.config
        self._creates = SlidingWindow(config.create_rpm) if config.create_rpm is not None else None
        self._others = SlidingWindow(config.rpm) if config.rpm is not None else None
        self._per_operation: dict[str, SlidingWindow] = {}

    def per_operation(self, operation: str, now: float) -> float | None:
        """`Faults.rpm_limit`: one window per operation (the limit that counts as a fault)."""
        limit = self.config.faults.rpm_limit
        if limit is None:
            return None
        window = self._per_operation.setdefault(operation, SlidingWindow(limit))
        return window.admit(now)

    def account(self, operation: str, now: float) -> float | None:
        """`create_rpm` for creates, `rpm` for every other API request."""
        window = self._creates if operation == "create" else self._others
        return window.admit(now) if window is not None else None
