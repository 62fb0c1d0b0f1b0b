"""When to try again: retry rules, Retry-After, deadlines, and what a transport failure means.

Pure functions: callers pass the time and the random source in, so both drivers make exactly the
same decisions and tests drive every branch deterministically.
"""

from __future__ import annotations

import enum
import math
import random
import re
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

import httpx

from .._constants import INITIAL_BACKOFF, MAX_BACKOFF, MAX_RETRY_AFTER, MIN_CANCEL_AFTER, RETRY_STATUSES
from .._errors import APIConnectionError, APITimeoutError, _short
from . import Record

__all__ = [
    "MAX_RETRY_AFTER",
    "Deadline",
    "Failure",
    "OpKind",
    "backoff_delay",
    "cancel_after_header",
    "failure_of",
    "parse_retry_after",
    "retry_delay",
    "total_seconds",
    "transport_failure",
]


class OpKind(enum.Enum):
    """The three operations; only CREATE is not idempotent (a repeat is a second paid image)."""

    CREATE = "create"
    GET = "get"
    CANCEL = "cancel"


class Failure(enum.Enum):
    """How one HTTP attempt failed, as far as retrying is concerned."""

    NOT_SENT = "not_sent"  # connect error, connect timeout, pool timeout: never reached the server
    TIMEOUT = "timeout"  # read/write timeout: the server may have acted on it
    NETWORK = "network"  # read error, remote protocol error: the server may have acted on it
    STATUS = "status"  # an HTTP status outside 2xx


def backoff_delay(retry_index: int, rng: random.Random) -> float:
    """Exponential backoff with jitter: 0.5 s, 1 s, 2 s … capped at 8 s, each × U(0.75, 1)."""
    base = min(INITIAL_BACKOFF * (2.0 ** max(0, retry_index)), MAX_BACKOFF)
    return base * (1.0 - 0.25 * rng.random())


def _may_retry(kind: OpKind, failure: Failure, status: int | None, error_code: str | None) -> bool:
    """Whether this kind of failure is worth another try at all (before budgets and deadlines)."""
    if failure is Failure.STATUS:
        if status not in RETRY_STATUSES or (status == 500 and error_code == "invalid_request"):
            return False
        return kind is not OpKind.CREATE or status == 429
    return kind is not OpKind.CREATE or failure is Failure.NOT_SENT


def retry_delay(
    kind: OpKind,
    failure: Failure,
    *,
    retry_index: int,
    max_retries: int,
    rng: random.Random,
    status: int | None = None,
    retry_after: float | None = None,
    error_code: str | None = None,
    remaining: float | None = None,
) -> float | None:
    """Seconds to wait before retrying, or None to give up now.

    GET and cancel are retried on any transport failure and on 429/500/502/503/504/524. CREATE is
    retried only when the request provably never reached the server (NOT_SENT) or on 429, never
    after a read timeout, a dropped connection or a 5xx: the server may have created a prediction.
    A Retry-After above MAX_RETRY_AFTER, or one that would overrun the caller's deadline, gives up.
    CometAPI's 500 with `error.code: invalid_request` is a malformed request, not an outage.
    """
    if retry_index >= max_retries or not _may_retry(kind, failure, status, error_code):
        return None
    if retry_after is not None:
        if retry_after > MAX_RETRY_AFTER:
            return None
        delay = max(0.0, retry_after)
    else:
        delay = backoff_delay(retry_index, rng)
    if remaining is not None and delay >= remaining:
        return None
    return delay


def failure_of(exc: BaseException | None) -> Failure:
    """How far a request that failed with this transport error got (NETWORK when unknown)."""
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout | httpx.ConnectError):
        return Failure.NOT_SENT
    if isinstance(exc, httpx.TimeoutException):
        return Failure.TIMEOUT
    return Failure.NETWORK


def transport_failure(exc: httpx.TransportError, method: str, url: str) -> tuple[Failure, APIConnectionError]:
    """What a transport error means for retrying, and the typed error to raise if not retried."""
    detail = _short(f"{type(exc).__name__} on {method} {url}" + (f": {exc}" if str(exc) else ""), 300)
    failure = failure_of(exc)
    cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
    return failure, cls(detail, method=method, url=url)


# --------------------------------------------------------------------------- Retry-After

# Patterns are compiled on first use (by `re`'s own cache), not at import: only a 429 needs them.
_RESETS_IN = r"(?i)resets? in ~?\s*(\d+(?:\.\d+)?)\s*s"
_AVAILABLE_IN = r"(?i)available in ~?\s*(\d+(?:\.\d+)?)\s*seconds?"


def _seconds(text: str | None, scale: float = 1.0) -> float | None:
    if not text:
        return None
    try:
        value = float(text.strip()) * scale
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _http_date(text: str | None, now_epoch: float | None) -> float | None:
    if not text or now_epoch is None:
        return None
    try:
        when = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now_epoch) if when.tzinfo is not None else None


def parse_retry_after(
    headers: Mapping[str, str],
    *,
    body_retry_after: float | None = None,
    detail: str | None = None,
    now_epoch: float | None = None,
) -> float | None:
    """Seconds the server asked us to wait, from `retry-after-ms`, `Retry-After` (seconds or an HTTP
    date), the body's `retry_after`, or a "resets in ~30s" detail. None when no hint was given.

    `headers` must have lower-case keys (httpx.Headers and APIStatusError.headers do). An HTTP date
    needs `now_epoch` (wall-clock seconds) to become a delay.
    """
    found = _seconds(headers.get("retry-after-ms"), 0.001)
    if found is None:
        header = headers.get("retry-after")
        found = _seconds(header)
        if found is None:
            found = _http_date(header, now_epoch)
    if found is None and body_retry_after is not None and _seconds(str(body_retry_after)) is not None:
        found = float(body_retry_after)
    if found is None and detail:
        match = re.search(_RESETS_IN, detail) or re.search(_AVAILABLE_IN, detail)
        if match:
            found = float(match.group(1))
    return found


# --------------------------------------------------------------------------- deadlines


class Deadline(Record):
    """A total deadline on the monotonic clock; `timeout=None` means no deadline (asked for explicitly)."""

    start: float
    timeout: float | None

    def remaining(self, now: float) -> float | None:
        """Seconds left (never negative), or None without a deadline."""
        if self.timeout is None:
            return None
        return max(0.0, self.start + self.timeout - now)

    def expired(self, now: float) -> bool:
        """True once the deadline has passed."""
        return self.timeout is not None and now >= self.start + self.timeout


def total_seconds(timeout: float | None) -> float | None:
    """A caller's total deadline in seconds, checked (None: no deadline)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(
            f"timeout must be a positive number of seconds, or None for no deadline; got {timeout!r}"
        )
    return float(timeout)


def cancel_after_header(seconds: float | None) -> str | None:
    """The `Cancel-After` value for a deadline: whole seconds, at least Replicate's minimum of 5 s."""
    if seconds is None:
        return None
    return f"{max(MIN_CANCEL_AFTER, math.ceil(seconds))}s"
