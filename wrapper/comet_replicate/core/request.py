"""The one retry loop: send a request until it gets a 2xx, a final error, or runs out of time.

Every non-2xx answer becomes a typed `APIStatusError` here, so no HTML, empty or truncated error
body ever reaches the JSON parser; every transport failure becomes an `APIConnectionError`.

Every attempt first waits for its slot in the client's pacer (`pacing.Pacer`: creates and other
requests paced apart), as a `Sleep` bounded by the caller's deadline. A 429 is reported to the
pacer and tried again for as long as the deadline allows (without one: hints up to
`MAX_RETRY_AFTER`, for `THROTTLE_PATIENCE` in all); it does not use up `max_retries`, since the
request was refused before anything happened (`max_retries=0` still means one try).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from operator import itemgetter
from typing import Any

import httpx

from .._constants import CREATE_MIN_TIME_LEFT, MAX_RETRY_AFTER, THROTTLE_PATIENCE
from .._errors import APIConnectionError, APIStatusError, APITimeoutError, CometReplicateError, status_error
from .effects import Flow, Http, OverCap, Reply, Sleep
from .pacing import Pacer, RateLimitHint, RequestClass, Slot
from .parse import check_error_body
from .retry import (
    Deadline,
    Failure,
    OpKind,
    backoff_delay,
    parse_retry_after,
    retry_delay,
    transport_failure,
)
from .state import State

__all__ = ["bounded", "create_floor", "request"]

log = logging.getLogger("comet_replicate")


def bounded(timeout: httpx.Timeout, remaining: float | None) -> httpx.Timeout:
    """Clamp every phase of a request timeout to the time left before a deadline."""
    if remaining is None:
        return timeout
    cap = max(remaining, 0.05)

    def clamp(value: float | None) -> float:
        return cap if value is None else min(value, cap)

    return httpx.Timeout(
        connect=clamp(timeout.connect),
        read=clamp(timeout.read),
        write=clamp(timeout.write),
        pool=clamp(timeout.pool),
    )


class _Attempt:
    """How one failed attempt ended: the error to raise, and what the retry rules need to know."""

    __slots__ = ("cause", "code", "error", "failure", "retry_after", "status")

    def __init__(self, failure: Failure, error: CometReplicateError, cause: BaseException | None) -> None:
        self.failure = failure
        self.error = error
        self.cause = cause
        self.status: int | None = None
        self.code: str | None = None
        self.retry_after: float | None = None

    @classmethod
    def from_reply(cls, st: State, reply: Reply, method: str, url: str) -> _Attempt:
        error = status_error(
            reply.status, method=method, url=url, headers=reply.headers, content=reply.content
        )
        attempt = cls(Failure.STATUS, error, None)
        attempt.status, attempt.code = reply.status, error.code
        attempt.retry_after = parse_retry_after(
            reply.headers,
            body_retry_after=error.retry_after,
            detail=error.detail or error.error_message,
            now_epoch=st.shared.wall_clock(),
        )
        return attempt

    def give_up(self, st: State) -> CometReplicateError:
        """The error to raise when this attempt is the last."""
        error = self.error
        if isinstance(error, APIStatusError):
            if self.retry_after is not None and error.retry_after is None:
                error.retry_after = self.retry_after
            if st.config.validate_responses:
                check_error_body(error)
        return error


def create_floor(deadline: Deadline | None) -> float:
    """The time a create must still have when it is sent: `CREATE_MIN_TIME_LEFT`, or half the whole
    deadline when that is shorter (so a short deadline still sends its first try at once).

    A create sent in the last instants is answered after the deadline: the prediction is made and
    paid for, its id is lost, and no time is left to find it through the list route."""
    if deadline is None or deadline.timeout is None:
        return 0.0
    return min(CREATE_MIN_TIME_LEFT, deadline.timeout / 2)


def _not_sent(pacer: Pacer, slot: Slot, method: str, url: str, why: str) -> APITimeoutError:
    """Give the slot back: the request never leaves the client (so a create is not in doubt)."""
    pacer.release(slot)
    return APITimeoutError(f"{method} {url} was not sent: {why}", method=method, url=url)


def _paced(
    st: State,
    pacer: Pacer,
    lane: RequestClass,
    deadline: Deadline | None,
    method: str,
    url: str,
    booked: Slot | None = None,
) -> Flow[Slot]:
    """Wait (as `Sleep` effects) until the pacer lets this attempt start (on its `booked` slot, else
    a new booking); returns its started slot.

    When the deadline ends before the slot comes — for a create, when less than `create_floor` would
    be left once it comes — the slot is given back and the request is not sent.
    """
    shared = st.shared
    floor = create_floor(deadline) if lane is RequestClass.CREATE else 0.0
    now = shared.clock()
    slot = pacer.reserve(lane, now) if booked is None else booked
    while True:
        wait = slot.delay(now)
        remaining = deadline.remaining(now) if deadline is not None else None
        if wait > 0.0 and remaining is not None and wait >= remaining:
            limit = getattr(pacer.limits(), lane.value)
            raise _not_sent(
                pacer,
                slot,
                method,
                url,
                f"the client's {lane.value} rate limit ({limit.requests} per {limit.per:g} s, "
                f"rate_limits=) has no free slot for {wait:.1f} s, and {remaining:.1f} s are left "
                "before the deadline",
            ) from httpx.PoolTimeout("no rate-limit slot before the deadline")
        if remaining is not None and remaining - max(wait, 0.0) < floor:
            raise _not_sent(
                pacer,
                slot,
                method,
                url,
                f"{max(remaining - max(wait, 0.0), 0.0):.2f} s would be left before the deadline, less "
                f"than the {floor:.2f} s a create keeps for its answer (one answered after the deadline "
                "is paid for and its id lost)",
            ) from httpx.PoolTimeout("too little time left to send a create")
        if wait > 0.0:
            try:
                yield Sleep(wait)
            except BaseException:  # interrupted while waiting: the slot is not used
                pacer.release(slot)
                raise
            now = shared.clock()
            continue  # the sleep may have run long: check what is left again before starting
        later = pacer.start(slot, now)
        if later is None:
            return slot
        slot = later


def _throttle_delay(
    st: State, attempt: _Attempt, throttles: int, since: float, deadline: Deadline | None
) -> float | None:
    """How long to wait before trying a throttled (429) request again, or None to give up: the
    server's hint (else a backoff), for as long as the deadline allows. Without a deadline, a hint
    above `MAX_RETRY_AFTER` gives up at once and all the waits together stop at `THROTTLE_PATIENCE`."""
    shared = st.shared
    now = shared.clock()
    delay = attempt.retry_after if attempt.retry_after is not None else backoff_delay(throttles, shared.rng)
    if deadline is not None and deadline.timeout is not None:
        left = deadline.remaining(now) or 0.0
    elif delay > MAX_RETRY_AFTER:
        return None
    else:
        left = since + THROTTLE_PATIENCE - now
    return None if delay >= left else delay


def _send(
    st: State,
    method: str,
    url: str,
    headers: Mapping[str, str] | None,
    json: Any,
    timeout: httpx.Timeout,
    deadline: Deadline | None,
    total: float | None,
    priority: bool,
    shield: bool,
    held: bool,
) -> Flow[Reply | _Attempt]:
    """One attempt, bounded as a whole by what is left of the deadline (and `total`): a 2xx `Reply`,
    or the `_Attempt` that says what went wrong (a body over the cap raises at once)."""
    config, shared = st.config, st.shared
    auth = config.auth()
    # httpx.Headers shows Authorization as [secure] in its repr: tracebacks that capture locals
    # (error trackers) must not record the key.
    all_headers = httpx.Headers({**auth, **headers}) if headers else auth
    remaining = deadline.remaining(shared.clock()) if deadline is not None else None
    bound = total if remaining is None else (remaining if total is None else min(total, remaining))
    try:
        reply: Reply = yield Http(
            method,
            url,
            all_headers,
            json,
            bounded(timeout, remaining),
            bound,
            priority,
            config.max_response_bytes,
            shield,
            held,
        )
    except OverCap as exc:
        raise APIConnectionError(
            f"{method} {url}: the response body exceeds the {exc.limit:,}-byte cap (max_response_bytes)",
            method=method,
            url=url,
        ) from None
    except httpx.TransportError as exc:
        failure, error = transport_failure(exc, method, url)
        return _Attempt(failure, error, exc)
    if 200 <= reply.status < 300:
        return reply
    return _Attempt.from_reply(st, reply, method, url)


def _ended(st: State, pacer: Pacer, slot: Slot, lane: RequestClass, outcome: Reply | _Attempt | None) -> None:
    """Tell the pacer the attempt ended, and what the answer's rate-limit headers said, if any."""
    now = st.shared.clock()
    # A held create's answer comes when its prediction ends; it was counted when sent.
    held_for = outcome.held_for if isinstance(outcome, Reply) else 0.0
    pacer.finish(slot, now, sent_at=now - held_for if held_for > 0.0 else None)
    if isinstance(outcome, Reply):
        headers: Mapping[str, str] | None = outcome.headers
    elif outcome is not None and isinstance(outcome.error, APIStatusError):
        headers = outcome.error.headers
    else:
        return
    if headers and _names_a_hint(headers):
        hint = RateLimitHint.of(headers, now_epoch=st.shared.wall_clock())
        if hint is not None:
            pacer.hinted(lane, now, hint)


_NAME = itemgetter(0)


def _names_a_hint(headers: Mapping[str, str]) -> bool:
    """Whether a header name could carry a rate-limit hint (`ratelimit-*`, `x-ratelimit-*`): most
    answers have none, and one pass over an `httpx.Headers`' raw names (nothing decoded) costs a
    fraction of the four lookups `RateLimitHint.of` makes, each of which decodes and scans them all.
    The names are joined and searched in one go (C loops: 11,000 instructions per answer, not the
    19,000 of a Python loop over them); a line break cannot occur in a header name, nor in the prefix."""
    if isinstance(headers, httpx.Headers):
        return b"ratelimit-" in b"\n".join(map(_NAME, headers.raw)).lower()
    return any("ratelimit-" in name for name in headers)  # lower-case keys, as `RateLimitHint.of` reads


def request(
    st: State,
    kind: OpKind,
    method: str,
    path: str,
    *,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: httpx.Timeout,
    max_retries: int,
    deadline: Deadline | None = None,
    total: float | None = None,
    priority: bool = False,
    shield: bool = False,
    held: bool = False,
) -> Flow[Reply]:
    """One operation with the retry rules of `retry.retry_delay`: returns a 2xx `Reply` or raises.

    Each attempt is bounded as a whole by what is left of `deadline` (and by `total`, if given),
    so a server dripping one byte at a time cannot hold a caller past its deadline; its body is
    capped at the client's `max_response_bytes`. `priority`, `shield` and `held` go on the effect
    (see `effects.Http`).
    """
    config, shared = st.config, st.shared
    url = config.base_url + path
    # The cancel on exit (priority) is one bounded request that must not queue behind the others.
    pacer = None if priority else shared.pacer
    lane = RequestClass.CREATE if kind is OpKind.CREATE else RequestClass.OTHER
    retry_index = throttles = 0
    throttled_since = 0.0
    while True:
        slot: Slot | None = None
        if pacer is not None:
            booked = None
            if deadline is None:  # nothing to check before sending: a due slot starts under one lock
                booked, started = pacer.begin(lane, shared.clock())
                slot = booked if started else None
            if slot is None:
                slot = yield from _paced(st, pacer, lane, deadline, method, url, booked)
        outcome: Reply | _Attempt | None = None
        try:
            outcome = yield from _send(
                st, method, url, headers, json, timeout, deadline, total, priority, shield, held
            )
        finally:
            if pacer is not None and slot is not None:  # answered, failed or interrupted: it ended
                _ended(st, pacer, slot, lane, outcome)
        if isinstance(outcome, Reply):
            return outcome
        attempt = outcome
        if attempt.status == 429 and max_retries > 0:
            if pacer is not None and slot is not None:
                pacer.throttled(slot, shared.clock(), retry_after=attempt.retry_after)
            if throttles == 0:
                throttled_since = shared.clock()
            delay = _throttle_delay(st, attempt, throttles, throttled_since, deadline)
            if delay is None:
                raise attempt.give_up(st) from attempt.cause
            log.info("%s %s was throttled (429); trying again in %.2fs", method, url, delay)
            throttles += 1
            yield Sleep(delay)
            continue
        delay = retry_delay(
            kind,
            attempt.failure,
            retry_index=retry_index,
            max_retries=max_retries,
            rng=shared.rng,
            status=attempt.status,
            retry_after=attempt.retry_after,
            error_code=attempt.code,
            remaining=deadline.remaining(shared.clock()) if deadline is not None else None,
        )
        if delay is None:
            raise attempt.give_up(st) from attempt.cause
        log.info(
            "retrying %s %s in %.2fs after %s (retry %d of %d)",
            method,
            url,
            delay,
            attempt.error,
            retry_index + 1,
            max_retries,
        )
        retry_index += 1
        yield Sleep(delay)
