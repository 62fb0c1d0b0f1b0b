"""Client-side pacing: how long a request must wait so the client stays under the API's rate limits.

Pure: nothing here sleeps, sends or reads a clock. The caller passes the time in and is told how long
to wait (the flow turns that into a `Sleep` effect); the caller reports each 429 back.

Replicate documents two limits per account: 600 creates per minute and 3,000 other requests per
minute, with short bursts above them tolerated. CometAPI documents none; the same figures are the
starting point until a 429 says otherwise. Each class of request has its own `_Lane`.

The design: a sliding-window log whose size adapts (AIMD)
---------------------------------------------------------
* **Window.** A lane grants a request only when, counting it, no window of `per` seconds holds
  more than `allowed` requests: the server's own rule for a sliding one-minute window. So a burst of
  a full minute's quota goes out at once (the fastest schedule the limit allows: 1,000 creates at
  600/min take one minute, not 100 s of even spacing) and nothing is sent that the limit refuses.
* **Bookings, then an exact check.** A request that may not go yet is booked for the earliest time
  the log allows, and sleeps once until then, instead of all waiters waking whenever one slot frees
  (a thundering herd costs CPU and order); bookings go in order, first come first served. When a
  booking is due, `start` checks exactly: the requests in flight plus those that *ended* within the
  window (the end of a request is an upper bound of its arrival at the server, which is what the
  server counts; a grant time is a lower bound, and a burst that took seconds to reach the server
  would be under-counted). Only if that check fails is the request booked again, behind the others.
  Entries stay counted `per` plus a small margin (`WINDOW_MARGIN`) for late wake-ups.
* **Multiplicative decrease.** A 429 means the server's limit is lower than the lane believed (a
  smaller account limit, low credit, an undocumented CometAPI limit, another process on the same
  key), or that the server is briefly saturated (CometAPI names both). The lane's `allowed` drops
  to `DECREASE` × what it was (never below `MIN_FRACTION` of the configured limit), and sending
  stops until the server's hint has passed (`Retry-After`, the problem-details body's
  `retry_after`, or "available in N seconds"; `DEFAULT_HOLD` without a hint). Only a 429 for a
  request sent *after* the last decrease cuts again: the answers to a burst that was already on the
  wire say nothing new, so one storm costs one cut, not twenty; a server whose limit is far lower
  is found in a few rounds (600 → 420 → 294 → …), each round one 429, the holds keeping every round
  short of a storm. (Cutting to what was actually sent would find it in one round, but a single
  transient 429 after a quiet minute would then throttle the client to a trickle.) And a 429 cuts
  only while 429s are at least `CUT_SHARE` of the lane's answers in the window: over a limit, nearly
  every answer is a 429; 429s scattered through successes (a briefly saturated gateway) are each
  honoured with their hold but do not ratchet the rate down to the floor, cut after cut.
* **Additive increase.** The lowered rate holds for one window after a cut (so it is actually tried:
  a lane that spends that window waiting would otherwise "recover" without having sent anything);
  then each `per × PROBE_FRACTION` seconds without a 429 gives back `PROBE_STEP` of the configured
  limit, up to the configured limit and never above it: quiet time restores the rate, and the probe
  finds the server's limit again after a temporary squeeze (low credit, a neighbour on the key).
* **Rebooking after a cut.** Bookings made before a cut or a hold were computed with the old
  figures; when they come due, `start` keeps those that still fit and books the others again.

* **Server hints.** Replicate documents its limits and the 429 body
  (https://replicate.com/docs/topics/predictions/rate-limits) but no rate-limit response headers,
  and CometAPI documents neither; `ratelimit-remaining` / `ratelimit-reset` were seen on Replicate's
  answers in a user's debug log (https://github.com/replicate/replicate-python/issues/380), and many
  APIs send `x-ratelimit-*`. When an answer carries them (`RateLimitHint.of`), they are hints that can
  only bring the lane closer to what the server enforces, never make it stricter than the server
  says: `remaining` sends are left until `reset` (the lane sends at most that many more before then,
  and with none left, waits for the reset instead of collecting a 429), and a `limit` below what the
  lane allows lowers it to that limit (the probe brings it back once answers stop saying so; it
  never goes above the configured limit, whatever a header says). A hint replaces the previous one
  of its lane: the freshest answer knows best. Requests sent after the server computed the hint are
  not taken off it, so the lane errs towards the server's side, never below it.

Why not a token bucket? A bucket of capacity B refilled at r per second lets through B + r × T in
any window of T seconds, more than the per-minute limit a server with a sliding window enforces; a
bucket small enough to be safe forfeits the documented burst. The window log is exact on both sides.

What is paced: every attempt of every API request (`request.request`), creates in one lane, gets,
cancels and lists in the other. Not paced: downloads of output files (they go to the delivery URLs,
not the API) and the one bounded cancel sent on the way out (it must not queue behind the others).

Thread safety: one `Pacer` is shared by a client, its `with_options` copies and every call of a batch,
possibly from threads (the sync client); a lock guards each lane.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self

from .. import core  # core.pacing_views (what `client.rate_limits` shows) loads when first asked for
from .._constants import (
    CUT_SHARE,
    DECREASE,
    DEFAULT_HOLD,
    MAX_HELD_CREATES,
    MAX_HOLD,
    MIN_FRACTION,
    PROBE_FRACTION,
    PROBE_STEP,
    WINDOW_MARGIN,
)
from . import Record

if TYPE_CHECKING:
    from .pacing_views import LaneState, RateLimitState

__all__ = [
    "DEFAULT_CREATE_LIMIT",
    "DEFAULT_OTHER_LIMIT",
    "DEFAULT_RATE_LIMITS",
    "Pacer",
    "RateLimit",
    "RateLimitHint",
    "RateLimits",
    "RequestClass",
    "Slot",
    "SyncSlots",
]

log = logging.getLogger("comet_replicate.pacing")

_EPSILON = 1e-9
"""An entry this close to leaving the window has left it (a slot computed as `entry + span` must not
miss its own window edge by a rounding error)."""


class RequestClass(enum.Enum):
    """The two classes of request the API limits separately."""

    CREATE = "create"
    OTHER = "other"

    # Every request looks its lane up by class: Enum's own __hash__ is a Python call (the hash of
    # the member's name); members are singletons compared by identity, so the identity hash in C
    # is the same contract.
    __hash__ = object.__hash__


class _RateLimitFields(Record):
    requests: int
    per: float


class RateLimit(_RateLimitFields):
    """At most `requests` sends in any window of `per` seconds. Immutable, checked when built."""

    __slots__ = ()

    def __new__(cls, requests: int, per: float = 60.0) -> RateLimit:
        if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
            raise ValueError(f"RateLimit.requests must be a positive whole number, got {requests!r}")
        if isinstance(per, bool) or not isinstance(per, int | float) or not math.isfinite(per) or per <= 0:
            raise ValueError(f"RateLimit.per must be a positive number of seconds, got {per!r}")
        return super().__new__(cls, requests, per)

    def _replace(self, **changes: Any) -> Self:  # a changed copy goes through the checks too
        return type(self)(**{**self._asdict(), **changes})


DEFAULT_CREATE_LIMIT = RateLimit(600, 60.0)
"""Replicate's documented create limit (600 per minute); CometAPI's until a 429 says otherwise."""
DEFAULT_OTHER_LIMIT = RateLimit(3000, 60.0)
"""Replicate's documented limit for every other request (3,000 per minute)."""


class _RateLimitsFields(Record):
    create: RateLimit
    other: RateLimit


class RateLimits(_RateLimitsFields):
    """A client's two limits: creates, and every other request (gets, cancels, lists).

    The defaults are Replicate's documented account limits; CometAPI documents none, so they are
    also the starting point there until a 429 says otherwise. Raise them if your account allows
    more; lower them to leave room for other processes using the same key.
    """

    __slots__ = ()

    def __new__(
        cls, create: RateLimit = DEFAULT_CREATE_LIMIT, other: RateLimit = DEFAULT_OTHER_LIMIT
    ) -> RateLimits:
        for name, value in (("create", create), ("other", other)):
            if not isinstance(value, RateLimit):
                raise ValueError(f"RateLimits.{name} must be a RateLimit, got {value!r}")
        return super().__new__(cls, create, other)

    def _replace(self, **changes: Any) -> Self:  # a changed copy goes through the checks too
        return type(self)(**{**self._asdict(), **changes})


DEFAULT_RATE_LIMITS = RateLimits()
"""What a client paces itself by unless told otherwise."""


class Slot(Record):
    """A booked send: its class, the time it may go, and the lane's epoch when it was booked (a
    NamedTuple: immutable, and cheap to build, one per request)."""

    cls: RequestClass
    at: float
    epoch: int

    def delay(self, now: float) -> float:
        """Seconds from `now` until this slot may go (0 when it may go now)."""
        return max(0.0, self.at - now)


_HINT_PREFIXES = ("ratelimit-", "x-ratelimit-")
_EPOCH_SECONDS = 1_000_000_000.0
"""A reset this large is a point in time (epoch seconds, as some APIs send), not a delay."""


def _header_number(headers: Mapping[str, str], name: str) -> float | None:
    """The first number of a header under either prefix (`600, 600;w=60` reads 600), or None."""
    for prefix in _HINT_PREFIXES:
        raw = headers.get(prefix + name)
        if raw is None:
            continue
        head = raw.split(",", 1)[0].split(";", 1)[0].strip().removesuffix("s")
        try:
            value = float(head)
        except ValueError:
            continue
        if math.isfinite(value) and value >= 0.0:
            return value
    return None


class RateLimitHint(Record):
    """What an answer's rate-limit headers said: sends left in the server's window, seconds until it
    resets, and the limit itself (each None when not sent or unreadable)."""

    remaining: int | None
    reset: float | None
    limit: int | None

    @classmethod
    def of(cls, headers: Mapping[str, str], *, now_epoch: float) -> RateLimitHint | None:
        """The hint in `ratelimit-*` or `x-ratelimit-*` headers (lower-case keys, as httpx.Headers
        gives), or None when there is none. A reset above 10⁹ is read as epoch seconds."""
        remaining = _header_number(headers, "remaining")
        limit = _header_number(headers, "limit")
        if remaining is None and limit is None:
            return None
        reset = _header_number(headers, "reset")
        if reset is not None and reset >= _EPOCH_SECONDS:
            reset = max(0.0, reset - now_epoch)
        return cls(
            remaining=None if remaining is None else int(remaining),
            reset=None if reset is None else min(reset, MAX_HOLD),
            limit=None if limit is None or limit < 1 else int(limit),
        )


class _Lane:
    """One class of request: the window log (bookings, in-flight grants, completions; sorted), the
    requests in flight, and the completion times the start check counts."""

    __slots__ = (
        "allowed",
        "cls",
        "cuts",
        "done",
        "epoch",
        "granted",
        "hint_left",
        "hint_until",
        "hold_until",
        "inflight",
        "last_change",
        "last_cut",
        "limit",
        "lock",
        "log",
        "name",
        "per",
        "recent_429s",
        "span",
        "throttled",
    )

    def __init__(self, cls: RequestClass, limit: RateLimit) -> None:
        self.cls = cls
        self.name = cls.value
        self.limit = limit.requests
        self.per = float(limit.per)
        self.span = self.per * (1.0 + WINDOW_MARGIN)
        self.allowed = limit.requests
        self.log: list[float] = []
        self.done: deque[float] = deque()
        self.recent_429s: deque[float] = deque()  # when the 429s of the window came (`CUT_SHARE`)
        self.inflight = 0
        self.hold_until = -math.inf
        self.hint_left = 0  # sends the server's last hint left until `hint_until`
        self.hint_until = -math.inf
        self.last_cut = -math.inf  # when `allowed` was last lowered
        self.last_change = -math.inf  # when `allowed` last changed (cut or probe step)
        self.epoch = 0
        self.granted = 0
        self.throttled = 0
        self.cuts = 0
        self.lock = threading.Lock()

    # The methods below run with `lock` held.

    def _probe(self, now: float) -> None:
        """Additive increase: give back PROBE_STEP of the limit per quiet PROBE_FRACTION of a window."""
        if self.allowed >= self.limit:
            return
        interval = self.per * PROBE_FRACTION
        steps = math.floor((now - self.last_change) / interval)
        if steps <= 0:
            return
        step = max(1, round(self.limit * PROBE_STEP))
        before = self.allowed
        self.allowed = min(self.limit, self.allowed + steps * step)
        self.last_change = now if self.allowed >= self.limit else self.last_change + steps * interval
        log.debug("pacing %s: probing up, %d -> %d per %gs", self.name, before, self.allowed, self.per)

    def _prune(self, now: float) -> None:
        """Forget entries that no window reaching `now` or later can contain."""
        horizon = now - self.span + _EPSILON
        cut = bisect_right(self.log, horizon)
        if cut:
            del self.log[:cut]
        done = self.done
        while done and done[0] <= horizon:
            done.popleft()
        recent = self.recent_429s
        while recent and recent[0] <= horizon:
            recent.popleft()

    def _earliest(self, now: float) -> float:
        """The first time at or after `now` a new booking keeps every window of the log within
        `allowed`: bookings go to the end of the log, so only the window ending at the new one can
        overflow, and it is free once the `allowed`-th most recent entry has left it."""
        at = max(now, self.hold_until)
        if self.hint_until > at and self.hint_left <= self._booked_after(now):
            at = self.hint_until  # the server said its window is spent until then
        entries = self.log
        if entries:
            last = entries[-1]
            at = at if at >= last else last
            if len(entries) >= self.allowed:
                free = entries[len(entries) - self.allowed] + self.span
                at = at if at >= free else free
        return at

    def _booked_after(self, now: float) -> int:
        """Bookings not yet due at `now` (they will spend the server's hinted budget first)."""
        return len(self.log) - bisect_right(self.log, now)

    def _fits(self, now: float) -> float:
        """0 when one more request may start now (in flight + completed in the window < allowed,
        and the server's hint leaves a send), else the earliest time it could, if nothing in flight
        finished first (`now + span` when the requests in flight alone fill the lane)."""
        if self.hint_until > now and self.hint_left <= 0:
            return self.hint_until
        free = self.allowed - self.inflight - 1
        if free < 0:
            return now + max(self.span * 0.01, 0.05)
        recent = self.done
        if len(recent) <= free:
            return 0.0
        return recent[len(recent) - free - 1] + self.span

    def sending(self, now: float) -> None:
        """A granted request goes now: it is in flight, and spends one of the server's hinted sends."""
        self.inflight += 1
        if self.hint_until > now:
            self.hint_left -= 1

    def book(self, now: float, not_before: float = -math.inf) -> Slot:
        self._probe(now)
        self._prune(now)
        at = max(self._earliest(now), not_before)
        self.log.append(at)
        self.granted += 1
        return Slot(self.cls, at, self.epoch)

    def drop(self, at: float) -> None:
        """Remove one log entry at `at` (a booking given up or moved); one already pruned is gone."""
        i = bisect_left(self.log, at)
        if i < len(self.log) and self.log[i] == at:
            del self.log[i]

    def booked_within(self, at: float) -> int:
        """Log entries in the window ending at `at`, itself included."""
        return bisect_right(self.log, at) - bisect_right(self.log, at - self.span + _EPSILON)

    def sent_within(self, now: float) -> int:
        """What the server may count in its window now: requests in flight and those that ended
        within the window."""
        return self.inflight + len(self.done) - bisect_right(self.done, now - self.per)


class Pacer:
    """Per-client pacing of creates and of every other request (see the module docstring).

    Use: `slot = pacer.reserve(cls, now)`; sleep `slot.delay(now)` if positive, then call
    `pacer.start(slot, now)`: None means send now; a new slot means sleep again until it. After the
    answer (or failure), `finish(slot, now)`; on a 429 also `throttled(slot, now, retry_after=...)`.
    A caller that gives up before starting calls `release(slot)`.
    """

    __slots__ = ("_lanes",)

    def __init__(
        self, create: RateLimit = DEFAULT_CREATE_LIMIT, other: RateLimit = DEFAULT_OTHER_LIMIT
    ) -> None:
        self._lanes = {
            RequestClass.CREATE: _Lane(RequestClass.CREATE, create),
            RequestClass.OTHER: _Lane(RequestClass.OTHER, other),
        }

    @classmethod
    def of(cls, limits: RateLimits) -> Pacer:
        """A pacer for a client configured with `limits`."""
        return cls(create=limits.create, other=limits.other)

    def limits(self) -> RateLimits:
        """The configured limits."""
        c, o = self._lanes[RequestClass.CREATE], self._lanes[RequestClass.OTHER]
        return RateLimits(RateLimit(c.limit, c.per), RateLimit(o.limit, o.per))

    def reserve(self, cls: RequestClass, now: float) -> Slot:
        """Book the earliest send this class's window allows at or after `now`."""
        lane = self._lanes[cls]
        with lane.lock:
            slot = lane.book(now)
        if slot.at > now:
            log.debug("pacing %s: request waits %.3fs for the window", lane.name, slot.at - now)
        return slot

    def begin(self, cls: RequestClass, now: float) -> tuple[Slot, bool]:
        """`reserve`, then `start` at once when the slot is due: (slot, True) means send now (in
        flight until `finish`); (slot, False) is a booking to sleep until, then `start`. One lock,
        one prune: the common case of every request while the window has room."""
        lane = self._lanes[cls]
        with lane.lock:
            if lane.allowed < lane.limit:
                lane._probe(now)
            lane._prune(now)
            at = lane._earliest(now)
            go = at <= now and not lane._fits(now)
            lane.log.append(at)
            lane.granted += 1
            if go:
                lane.sending(now)
            slot = Slot(lane.cls, at, lane.epoch)
        if at > now:
            log.debug("pacing %s: request waits %.3fs for the window", lane.name, at - now)
        return slot, go

    def delay(self, cls: RequestClass, now: float) -> float:
        """Seconds from `now` until a request of this class booked now could go (0: at once).

        A peek, nothing is booked: `run` waits this long before deciding whether its create holds a
        connection, so a create paced to the next window decides when it is sent, not when queued."""
        lane = self._lanes[cls]
        with lane.lock:
            lane._probe(now)
            lane._prune(now)
            return max(0.0, lane._earliest(now) - now)

    def start(self, slot: Slot, now: float) -> Slot | None:
        """The request of a due slot is about to be sent: None when it may go now (it then counts
        as in flight until `finish`), else the slot to sleep until instead.

        A booking is an estimate made from the log; this is the exact check, counting the requests
        in flight and the completed ones by the time they ended (an upper bound of their arrival at
        the server, so a burst that took seconds to arrive is never under-counted). A slot booked
        before a 429 cut the rate or imposed a hold is kept only if it is past the hold and its
        window holds no more than the lowered rate allows; otherwise, or when the exact check says
        no, it is booked again, at the end of the line.
        """
        lane = self._lanes[slot.cls]
        with lane.lock:
            if slot.at > now:
                return slot
            lane._probe(now)
            lane._prune(now)
            stale = slot.epoch != lane.epoch and (
                slot.at < lane.hold_until or lane.booked_within(slot.at) > lane.allowed
            )
            later = lane._fits(now)
            if not stale and not later:
                lane.sending(now)
                return None
            lane.drop(slot.at)
            lane.granted -= 1
            return lane.book(now, later)

    def finish(self, slot: Slot, now: float, *, sent_at: float | None = None) -> None:
        """The request sent on `slot` ended (answered or failed) at `now`.

        `sent_at`: when its last byte was written, if the driver measured it (a create held open in
        sync mode is answered only when its prediction ends; counting it at its answer would keep
        the next window's creates waiting for seconds after the server forgot it). Without it, the
        end is the bound."""
        at = now if sent_at is None else min(now, max(sent_at, slot.at))
        lane = self._lanes[slot.cls]
        with lane.lock:
            lane.inflight = max(0, lane.inflight - 1)
            lane.drop(slot.at)
            insort(lane.log, at)
            done = lane.done
            if not done or at >= done[-1]:
                done.append(at)
            else:
                insort(done, at)

    def release(self, slot: Slot) -> None:
        """Give a booked slot back (its request will not be sent: the caller's deadline came first,
        or it was interrupted while waiting)."""
        lane = self._lanes[slot.cls]
        with lane.lock:
            lane.drop(slot.at)
            lane.granted -= 1

    def throttled(self, slot: Slot, now: float, *, retry_after: float | None = None) -> None:
        """The request sent on `slot` got a 429, with the server's hint (seconds) if it gave one."""
        lane = self._lanes[slot.cls]
        with lane.lock:
            lane.throttled += 1
            lane._probe(now)
            lane._prune(now)
            hold = DEFAULT_HOLD if retry_after is None or not math.isfinite(retry_after) else retry_after
            hold_until = now + min(max(hold, 0.0), MAX_HOLD)
            changed = False
            if hold_until > lane.hold_until:
                lane.hold_until = hold_until
                changed = True
            lane.recent_429s.append(now)
            if slot.at >= lane.last_cut and len(lane.recent_429s) >= CUT_SHARE * max(1, len(lane.done)):
                before = lane.allowed
                sent = lane.sent_within(now)  # for the log: what the server may have counted
                floor = max(1, math.floor(lane.limit * MIN_FRACTION))
                lane.allowed = max(floor, math.floor(DECREASE * lane.allowed))
                lane.last_cut = now
                lane.last_change = now + lane.per  # the lowered rate holds for a whole window first
                lane.cuts += 1
                changed = True
                log.debug(
                    "pacing %s: 429 (hint %s): allowed %d -> %d per %gs (sent %d in the window), hold %.2fs",
                    lane.name,
                    retry_after,
                    before,
                    lane.allowed,
                    lane.per,
                    sent,
                    lane.hold_until - now,
                )
            if changed:
                lane.epoch += 1

    def hinted(self, cls: RequestClass, now: float, hint: RateLimitHint) -> None:
        """An answer to a request of this class carried the server's rate-limit headers (see the
        module docstring): they replace the lane's previous hint."""
        lane = self._lanes[cls]
        with lane.lock:
            changed = False
            if hint.remaining is not None and hint.reset is not None:
                lane.hint_left = hint.remaining
                lane.hint_until = now + hint.reset
                changed = hint.remaining <= 0
            if hint.limit is not None and hint.limit < lane.allowed:
                log.debug(
                    "pacing %s: the server's limit header says %d, allowed %d -> %d per %gs",
                    lane.name,
                    hint.limit,
                    lane.allowed,
                    hint.limit,
                    lane.per,
                )
                lane.allowed = hint.limit
                lane.last_change = now
                changed = True
            if changed:
                lane.epoch += 1

    def state(self, now: float) -> RateLimitState:
        """A snapshot of both lanes at `now`."""
        return core.pacing_views.RateLimitState(
            create=self._lane_state(self._lanes[RequestClass.CREATE], now),
            other=self._lane_state(self._lanes[RequestClass.OTHER], now),
        )

    @staticmethod
    def _lane_state(lane: _Lane, now: float) -> LaneState:
        with lane.lock:
            lane._probe(now)
            lane._prune(now)
            return core.pacing_views.LaneState(
                limit=lane.limit,
                per=lane.per,
                allowed=lane.allowed,
                sent_in_window=lane.sent_within(now),
                in_flight=lane.inflight,
                queued=len(lane.log) - bisect_right(lane.log, now),
                next_free_in=max(lane._earliest(now), lane._fits(now)) - now,
                hold_for=max(0.0, lane.hold_until - now),
                granted=lane.granted,
                throttled=lane.throttled,
                cuts=lane.cuts,
            )


class SyncSlots:
    """Counts the creates holding a connection open in sync mode, up to a limit (shared by a client
    family; `take` before such a create, `give` back once it answered; `MAX_HELD_CREATES`)."""

    __slots__ = ("_held", "_limit", "_lock")

    def __init__(self, limit: int = MAX_HELD_CREATES) -> None:
        self._limit = limit
        self._held = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        """True (and one slot taken) when another create may hold a connection now."""
        with self._lock:
            if self._held >= self._limit:
                return False
            self._held += 1
            return True

    def give(self) -> None:
        with self._lock:
            self._held = max(0, self._held - 1)

    @property
    def held(self) -> int:
        return self._held

    @property
    def limit(self) -> int:
        return self._limit
