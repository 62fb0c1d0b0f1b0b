"""What a flow knows about its client: frozen configuration, plus the state shared by copies.

`Config` is fixed when a client is built (`with_options` makes a new one with other timeouts or
retries). `Shared` is one object per client family — the client and every `with_options` copy of
it — holding what the client learns while it runs (per-model durations, local creation times,
whether the server refuses the optional create headers, the rate limits it paces itself by) and
the clock and random source the core is given (tests give fake ones).
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable, Mapping

import httpx

from .._constants import CREATED_MEMORY, DEFAULT_MAX_DATA_URL_BYTES, DEFAULT_MAX_RESPONSE_BYTES
from .._inputs import InputValidation
from . import Record
from .pacing import Pacer, SyncSlots
from .schedule import DEFAULT_POLL_TUNING, DurationEstimator, PollTuning

__all__ = ["Config", "Shared", "State", "as_timeout"]


def as_timeout(value: float | httpx.Timeout) -> httpx.Timeout:
    """A per-request timeout: a number bounds every phase (connect at most 5 s); pool waits are unbounded
    only when asked, since a request waiting for a free connection has not reached the server."""
    if isinstance(value, httpx.Timeout):
        if value.connect is None or value.read is None:
            raise ValueError(
                "connect and read timeouts cannot be disabled; the total deadline belongs on wait/run"
            )
        return value
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"timeout must be a positive number of seconds or an httpx.Timeout, got {value!r}")
    return httpx.Timeout(float(value), connect=min(5.0, float(value)), pool=None)


def _retries(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"max_retries must be a non-negative integer, got {value!r}")
    return value


class Config(Record):
    """A client's configuration. `auth` gives the Authorization headers for each attempt.

    Built by `client_state` and `with_options`, which check every value first."""

    base_url: str
    auth: Callable[[], Mapping[str, str]]  # holds the key: never in a repr
    timeout: httpx.Timeout
    max_retries: int
    validate_responses: bool = False
    max_data_url_bytes: int = DEFAULT_MAX_DATA_URL_BYTES
    input_validation: InputValidation = "warn"
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    tuning: PollTuning = DEFAULT_POLL_TUNING
    fixed_auth: bool = True
    """True when `auth` always returns the same headers (a key string, not a key callable)."""
    reconcile_unknown_creates: bool = False
    """Look for a lost create's prediction in the list route (`core.reconcile`) before raising
    `CreateOutcomeUnknown` (the clients turn it on by default)."""

    def __repr__(self) -> str:  # `auth` (it holds the key) is left out
        shown = ", ".join(
            f"{name}={value!r}" for name, value in zip(self._fields, self, strict=True) if name != "auth"
        )
        return f"Config({shown})"

    def with_options(
        self, timeout: float | httpx.Timeout | None, max_retries: int | None, tuning: PollTuning | None = None
    ) -> Config:
        """This configuration with another per-request timeout, retry count or poll schedule."""
        return self._replace(
            timeout=self.timeout if timeout is None else as_timeout(timeout),
            max_retries=self.max_retries if max_retries is None else _retries(max_retries),
            tuning=self.tuning if tuning is None else tuning,
        )


class _NewPacer:
    """`Shared`'s default `pacer`: a fresh `Pacer` (None means not paced)."""

    __slots__ = ()


_NEW_PACER = _NewPacer()


class Shared:
    """State one client family shares: what it learned, and the clock and randomness it runs on.

    One mutable object, equal only to itself (a plain slotted class: a dataclass would compile its
    `__init__` when the client is imported).

    - `clock`: monotonic seconds (deadlines, durations); `wall_clock`: epoch seconds (HTTP-date
      Retry-After, a prediction's `created_at`).
    - `optional_headers_ok`: False once the server refused `Prefer`/`Cancel-After` with a 400: no copy
      sends them again.
    - `pacer`: client-side rate limits (creates; everything else), one per family: every copy and
      every call of a batch is paced by it (None: not paced; 429s are still retried).
    - `sync_slots`: creates holding a connection in sync mode now (see `pacing.MAX_HELD_CREATES`).
    """

    __slots__ = (
        "clock",
        "created_local",
        "estimator",
        "optional_headers_ok",
        "pacer",
        "rng",
        "sync_slots",
        "wall_clock",
    )

    def __init__(
        self,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        rng: random.Random | None = None,
        estimator: DurationEstimator | None = None,
        created_local: dict[str, float] | None = None,
        optional_headers_ok: bool = True,
        pacer: Pacer | None | _NewPacer = _NEW_PACER,
        sync_slots: SyncSlots | None = None,
    ) -> None:
        self.clock = clock
        self.wall_clock = wall_clock
        self.rng = random.Random() if rng is None else rng
        self.estimator = DurationEstimator() if estimator is None else estimator
        self.created_local: dict[str, float] = {} if created_local is None else created_local
        self.optional_headers_ok = optional_headers_ok
        self.pacer = Pacer() if isinstance(pacer, _NewPacer) else pacer
        self.sync_slots = SyncSlots() if sync_slots is None else sync_slots

    def remember_created(self, prediction_id: str, at: float) -> None:
        """Keep the local creation time of recent predictions (bounded) for the learned schedule."""
        if len(self.created_local) >= CREATED_MEMORY:
            # threads may race here; losing one timing entry is harmless
            with contextlib.suppress(RuntimeError, StopIteration, KeyError):
                self.created_local.pop(next(iter(self.created_local)), None)
        self.created_local[prediction_id] = at


class State(Record):
    """What every flow is given: the configuration of one client and its family's shared state."""

    config: Config
    shared: Shared

    def with_options(
        self, timeout: float | httpx.Timeout | None, max_retries: int | None, tuning: PollTuning | None = None
    ) -> State:
        """A state for a `with_options` copy: new configuration, the same shared state."""
        return State(self.config.with_options(timeout, max_retries, tuning), self.shared)

    def request_timeout(self, timeout: float | httpx.Timeout | None) -> httpx.Timeout:
        """A call's own timeout, else the client's."""
        return self.config.timeout if timeout is None else as_timeout(timeout)

    def retries(self, max_retries: int | None) -> int:
        """A call's own retry count, else the client's."""
        return self.config.max_retries if max_retries is None else max_retries
