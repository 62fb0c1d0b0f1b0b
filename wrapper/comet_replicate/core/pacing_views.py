"""What `client.rate_limits` shows: read-only snapshots of the pacer's two lanes (`Pacer.state`).

Apart from `pacing` so that they load when first asked for, not with the client: a create never
needs them (`core.pacing_views`, through the package's lazy attribute).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LaneState", "RateLimitState"]


@dataclass(frozen=True, slots=True)
class LaneState:
    """A lane's state at one instant (what `client.rate_limits` shows)."""

    limit: int
    """The configured limit per window: the lane never allows more."""
    per: float
    allowed: int
    """What the lane allows per window now (lower than `limit` after 429s, until it probes back up)."""
    sent_in_window: int
    """Requests in flight plus those that ended within the last window (what the server may count)."""
    in_flight: int
    """Requests sent and not answered yet."""
    queued: int
    """Slots booked for later: requests waiting for the window to open."""
    next_free_in: float
    """Seconds until a new request would be booked (0: it goes now)."""
    hold_for: float
    """Seconds left of a hold a 429 imposed (0: none)."""
    granted: int
    """Requests booked so far (those given back before they were sent not counted)."""
    throttled: int
    """429 answers reported so far."""
    cuts: int
    """Times a 429 lowered `allowed`."""


@dataclass(frozen=True, slots=True)
class RateLimitState:
    """Both lanes at one instant (`client.rate_limits`)."""

    create: LaneState
    other: LaneState
