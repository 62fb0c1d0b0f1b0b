"""The pacing limiter on a fake clock: the time is a number the test passes in, nothing sleeps.

What is proved: a full window's quota goes at once and the next request waits for the window; creates
and other requests are paced apart; Retry-After (or the default hold) stops sending until it has
passed; a 429 storm lowers the rate (once per burst, not once per answer) and a server with a lower
limit than configured is found; quiet time restores the configured rate and never more; booked slots
are rebooked after a cut; and, as a property, no window of `per` seconds ever holds more sends than
the configured limit, whatever the arrivals, 429s and give-ups. The server's rate-limit headers,
when sent, hold the lane until their reset once no send is left and lower it to a smaller limit,
never above the configured one; a held create counts from when it was written; `delay` only peeks.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from bisect import bisect_right

import httpx
import pytest
from comet_replicate._constants import DEFAULT_HOLD, MAX_HOLD, MIN_FRACTION, PROBE_FRACTION, WINDOW_MARGIN
from comet_replicate.core.pacing import (
    DEFAULT_CREATE_LIMIT,
    DEFAULT_OTHER_LIMIT,
    Pacer,
    RateLimit,
    RateLimitHint,
    RateLimits,
    RequestClass,
    Slot,
)
from hypothesis import given
from hypothesis import strategies as st

CREATE = RequestClass.CREATE
OTHER = RequestClass.OTHER


def send_now(pacer: Pacer, cls: RequestClass, now: float) -> Slot:
    """A request that goes at once and is answered at once."""
    slot = pacer.reserve(cls, now)
    assert slot.delay(now) == 0.0, f"expected to go at {now}, booked for {slot.at}"
    assert pacer.start(slot, now) is None
    pacer.finish(slot, now)
    return slot


def wait_and_send(pacer: Pacer, cls: RequestClass, now: float) -> tuple[float, Slot]:
    """What a flow does: book, sleep until the slot, start (rebooked while needed), answered at once;
    returns the send time and the slot it went on."""
    slot = pacer.reserve(cls, now)
    while True:
        now = max(now, slot.at)
        later = pacer.start(slot, now)
        if later is None:
            pacer.finish(slot, now)
            return now, slot
        slot = later


def test_defaults_are_replicates_documented_limits() -> None:
    assert RateLimit(600, 60.0) == DEFAULT_CREATE_LIMIT
    assert RateLimit(3000, 60.0) == DEFAULT_OTHER_LIMIT
    assert Pacer().limits() == RateLimits() == RateLimits(DEFAULT_CREATE_LIMIT, DEFAULT_OTHER_LIMIT)
    mine = RateLimits(create=RateLimit(100, 30.0))
    assert Pacer.of(mine).limits() == mine


def test_a_full_window_goes_at_once_and_the_next_request_waits_for_the_window() -> None:
    pacer = Pacer(create=RateLimit(5, 10.0))
    for _ in range(5):
        send_now(pacer, CREATE, 0.0)
    slot = pacer.reserve(CREATE, 0.0)
    assert slot.at == pytest.approx(10.0 * (1 + WINDOW_MARGIN))
    assert pacer.state(0.0).create.queued == 1


def test_slots_are_handed_out_in_order_and_each_waiter_sleeps_once() -> None:
    pacer = Pacer(create=RateLimit(2, 10.0))
    send_now(pacer, CREATE, 0.0)
    send_now(pacer, CREATE, 1.0)
    later = [pacer.reserve(CREATE, 2.0) for _ in range(4)]
    span = 10.0 * (1 + WINDOW_MARGIN)
    assert [s.at for s in later] == pytest.approx([span, 1.0 + span, 2 * span, 1.0 + 2 * span])
    # No 429 happened in between: every waiter starts when it wakes.
    for slot in later:
        assert pacer.start(slot, slot.at) is None
        pacer.finish(slot, slot.at)


def test_a_request_under_the_limit_is_never_delayed() -> None:
    pacer = Pacer(other=RateLimit(3, 10.0))
    for t in (0.0, 4.0, 8.0, 12.0, 16.0, 20.0):  # one every 4 s: at most 3 in any 10 s
        send_now(pacer, OTHER, t)


def test_creates_and_other_requests_are_paced_separately() -> None:
    pacer = Pacer(create=RateLimit(2, 60.0), other=RateLimit(3, 60.0))
    send_now(pacer, CREATE, 0.0)
    send_now(pacer, CREATE, 0.0)
    assert pacer.reserve(CREATE, 0.0).delay(0.0) > 0
    for _ in range(3):  # the create lane being full does not hold back gets
        send_now(pacer, OTHER, 0.0)
    assert pacer.reserve(OTHER, 0.0).delay(0.0) > 0
    state = pacer.state(0.0)
    assert (state.create.queued, state.other.queued) == (1, 1)
    # … and a 429 on a get holds only the other lane.
    pacer2 = Pacer()
    pacer2.throttled(send_now(pacer2, OTHER, 0.0), 0.0, retry_after=5.0)
    assert pacer2.state(0.0).other.allowed == 2100
    assert pacer2.reserve(OTHER, 0.0).at == pytest.approx(5.0)
    send_now(pacer2, CREATE, 0.0)


def test_retry_after_is_honoured_for_new_and_already_booked_requests() -> None:
    pacer = Pacer(create=RateLimit(100, 60.0))
    sent = send_now(pacer, CREATE, 100.0)
    pacer.throttled(sent, 100.5, retry_after=7.0)
    assert pacer.reserve(CREATE, 101.0).at == pytest.approx(107.5)
    assert pacer.state(101.0).create.hold_for == pytest.approx(6.5)
    # A request booked before the 429 (for 100.2) is rebooked after the hold when it wakes.
    pacer2 = Pacer(create=RateLimit(1, 0.1))
    first = send_now(pacer2, CREATE, 100.0)
    booked = pacer2.reserve(CREATE, 100.0)
    pacer2.throttled(first, 100.05, retry_after=3.0)
    rebooked = pacer2.start(booked, booked.at)
    assert rebooked is not None
    assert rebooked.at >= 103.05


def test_a_429_without_a_hint_holds_for_the_default_and_a_huge_hint_is_capped() -> None:
    pacer = Pacer()
    pacer.throttled(send_now(pacer, CREATE, 0.0), 0.0)
    assert pacer.reserve(CREATE, 0.0).at == pytest.approx(DEFAULT_HOLD)
    pacer.throttled(send_now(pacer, OTHER, 0.0), 0.0, retry_after=86_400.0)
    assert pacer.state(0.0).other.hold_for == pytest.approx(MAX_HOLD)


def test_the_answers_to_one_burst_cut_the_rate_once() -> None:
    pacer = Pacer(create=RateLimit(100, 60.0))
    burst = [send_now(pacer, CREATE, 0.0) for _ in range(100)]
    for slot in burst:  # the whole burst comes back 429
        pacer.throttled(slot, 0.2, retry_after=1.0)
    state = pacer.state(0.2)
    assert state.create.throttled == 100
    assert state.create.cuts == 1
    assert state.create.allowed == 70


def test_a_429_storm_slows_the_lane_down() -> None:
    """100 concurrent creates are all answered 429, and so are their retries: each round cuts the
    rate, and the retries wait for the window instead of hammering the server."""
    pacer = Pacer(create=RateLimit(100, 60.0))
    now = 0.0
    pending = [pacer.reserve(CREATE, now) for _ in range(100)]
    allowed = [100]
    went: list[int] = []
    for _ in range(3):
        now = min(s.at for s in pending)
        due: list[Slot] = []
        waiting: list[Slot] = []
        for slot in pending:
            later = pacer.start(slot, now) if slot.at <= now else slot
            if later is None:
                pacer.finish(slot, now)
                due.append(slot)
            else:
                waiting.append(later)
        went.append(len(due))
        for slot in due:  # every request of this round comes back 429 a moment later
            pacer.throttled(slot, now + 0.2, retry_after=1.0)
        pending = waiting + [pacer.reserve(CREATE, now + 0.2) for _ in due]
        allowed.append(pacer.state(now + 0.2).create.allowed)
    assert allowed == [100, 70, 49, 34]
    assert went == [100, 70, 49]  # each round sends only what the lowered rate allows
    assert pacer.state(now + 0.2).create.cuts == 3
    assert min(s.at for s in pending) >= now + 60.0  # the next round waits for the window


def test_a_burst_is_counted_by_when_it_ended_not_when_it_was_granted() -> None:
    """600 creates granted at once took 5 s to be answered (queued behind a connection pool): a
    minute later the server still counts those that arrived late, and so does the exact check."""
    pacer = Pacer(create=RateLimit(600, 60.0))
    burst = [pacer.reserve(CREATE, 0.0) for _ in range(600)]
    for i, slot in enumerate(burst):
        assert pacer.start(slot, 0.0) is None
        pacer.finish(slot, 5.0 * i / 600)
    wave = [pacer.reserve(CREATE, 10.0) for _ in range(600)]
    # Each booking waits for one create of the burst to leave the window, by when it ended …
    for k, slot in enumerate(wave):
        assert slot.at == pytest.approx(5.0 * k / 600 + 61.5)
    # … so each starts when it is due (a grant-time count would have let all 600 go at 61.5 s).
    for slot in wave:
        assert pacer.start(slot, slot.at) is None
        pacer.finish(slot, slot.at)


def test_cuts_stop_at_a_floor_of_the_configured_limit() -> None:
    pacer = Pacer(create=RateLimit(600, 60.0))
    now = 0.0
    for _ in range(30):  # each request sent after the previous cut is throttled again
        now, slot = wait_and_send(pacer, CREATE, now)
        pacer.throttled(slot, now, retry_after=0.0)
    assert pacer.state(now).create.allowed == math.floor(600 * MIN_FRACTION)


def test_a_server_with_a_lower_limit_is_found_with_few_429s() -> None:
    """Configured for 600/min against a server that allows 100/min (a sliding window): the client
    settles under the server's limit, and most of its requests are accepted."""
    pacer = Pacer(create=RateLimit(600, 60.0))
    server: list[float] = []
    accepted = throttled = 0
    now = 0.0
    for _ in range(1500):
        now, slot = wait_and_send(pacer, CREATE, now)
        recent = len(server) - bisect_right(server, now - 60.0)
        if recent >= 100:
            throttled += 1
            pacer.throttled(slot, now + 0.05, retry_after=server[len(server) - 100] + 60.0 - now)
        else:
            server.append(now)
            accepted += 1
    assert throttled <= 0.02 * (accepted + throttled)  # the server's exact Retry-After holds pace it
    # The last ten minutes ran at no less than half the server's limit.
    last = [t for t in server if t > now - 600.0]
    assert len(last) >= 500


def _against_a_lower_limit(
    pacer: Pacer, *, requests: int, retry_after: float
) -> tuple[float, int, list[float]]:
    """Requests sent back to back against a server allowing 100 per sliding minute, whose 429s all
    say `retry_after`; returns the last send time, the 429 count and the accepted send times."""
    server: list[float] = []
    throttled = 0
    now = 0.0
    for _ in range(requests):
        now, slot = wait_and_send(pacer, CREATE, now)
        if len(server) - bisect_right(server, now - 60.0) >= 100:
            throttled += 1
            pacer.throttled(slot, now + 0.05, retry_after=retry_after)
        else:
            server.append(now)
    return now, throttled, server


def test_a_lower_limit_whose_429s_say_little_is_found_by_cutting_the_rate() -> None:
    """Configured for 600/min against a server allowing 100/min whose 429s all say "1 second": the
    holds alone would let a 429 through every second; the share of 429s climbs past `CUT_SHARE` and
    the rate comes down towards the server's limit."""
    pacer = Pacer(create=RateLimit(600, 60.0))
    now, throttled, server = _against_a_lower_limit(pacer, requests=1500, retry_after=1.0)
    state = pacer.state(now).create
    assert state.cuts >= 3  # 600 -> 420 -> ...; then it oscillates: the probe tries higher again
    assert throttled <= 0.08 * 1500  # the 1 s holds alone let through about one 429 a second
    last = [t for t in server if t > now - 600.0]
    assert len(last) >= 500  # the last ten minutes ran at no less than half the server's limit


def test_scattered_429s_do_not_ratchet_the_rate_down() -> None:
    """A server with no limit the client reaches, answering 429 to one request in 33 (a saturated
    gateway; the chaos suite's ~3 %): each 429 holds the lane for its Retry-After, but the rate is
    not cut again and again down to the floor (it was: 600 -> 30 within a minute)."""
    pacer = Pacer(create=RateLimit(600, 60.0))
    now = 0.0
    for index in range(3000):
        now, slot = wait_and_send(pacer, CREATE, now)
        if index % 33 == 32:
            pacer.throttled(slot, now + 0.05, retry_after=1.0)
    state = pacer.state(now).create
    assert state.throttled == 3000 // 33
    assert state.allowed == 600 and state.cuts == 0
    assert now <= 1.25 * 300.0  # 3,000 creates at 600/min take five minutes; the holds add little


def test_quiet_time_restores_the_configured_rate_and_never_more() -> None:
    pacer = Pacer(other=RateLimit(1000, 60.0))
    for step in range(3):
        slot = send_now(pacer, OTHER, float(step) * 10)
        pacer.throttled(slot, float(step) * 10, retry_after=0.0)
    cut = pacer.state(20.0).other.allowed
    assert cut < 1000
    probe = 60.0 * PROBE_FRACTION
    seen = [pacer.state(20.0 + k * probe).other.allowed for k in range(1, 40)]
    assert seen[:5] == [cut] * 5  # the lowered rate holds for a window after the last cut …
    assert seen == sorted(seen)  # … then rises step by step while nothing is throttled
    assert seen[6] > cut
    assert seen[-1] == 1000
    assert max(seen) == 1000


def test_requests_in_flight_fill_the_lane_until_they_end() -> None:
    pacer = Pacer(other=RateLimit(2, 60.0))
    first, second = pacer.reserve(OTHER, 0.0), pacer.reserve(OTHER, 0.0)
    assert pacer.start(first, 0.0) is None and pacer.start(second, 0.0) is None
    third = pacer.reserve(OTHER, 0.0)
    assert third.delay(0.0) > 0  # the booking waits for the window …
    assert pacer.state(1.0).other.in_flight == 2
    again = pacer.start(third, third.at)  # … and when it is due, the two still in flight count
    assert again is not None and again.at > third.at
    pacer.finish(first, again.at)
    pacer.finish(second, again.at)
    assert pacer.start(again, again.at) is not None  # they ended just now: a window from now
    assert pacer.state(again.at).other.in_flight == 0


def test_a_released_slot_is_free_again() -> None:
    pacer = Pacer(create=RateLimit(1, 60.0))
    send_now(pacer, CREATE, 0.0)
    given_up = pacer.reserve(CREATE, 0.0)
    pacer.release(given_up)
    assert pacer.reserve(CREATE, 0.0).at == pytest.approx(given_up.at)  # the next one gets it
    pacer.release(given_up)  # releasing twice is harmless


def test_state_reports_every_figure() -> None:
    pacer = Pacer(create=RateLimit(2, 60.0))
    send_now(pacer, CREATE, 0.0)
    send_now(pacer, CREATE, 0.0)
    pacer.reserve(CREATE, 0.0)
    state = pacer.state(1.0).create
    assert (state.limit, state.per, state.allowed) == (2, 60.0, 2)
    assert (state.sent_in_window, state.in_flight, state.queued) == (2, 0, 1)
    assert (state.granted, state.throttled) == (3, 0)
    assert state.next_free_in == pytest.approx(60.0 * (1 + WINDOW_MARGIN) - 1.0)  # beside the queued one


@pytest.mark.parametrize(
    ("requests", "per", "field"),
    [
        (0, 60.0, "requests"),
        (1.5, 60.0, "requests"),
        (True, 60.0, "requests"),
        (5, 0.0, "per"),
        (5, math.inf, "per"),
    ],
)
def test_a_rate_limit_that_makes_no_sense_is_refused_by_name(
    requests: object, per: object, field: str
) -> None:
    with pytest.raises(ValueError, match=f"RateLimit.{field}"):
        RateLimit(requests, per)  # type: ignore[arg-type]


def test_rate_limits_take_only_rate_limits() -> None:
    with pytest.raises(ValueError, match=r"RateLimits\.create must be a RateLimit"):
        RateLimits(create=600)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the property


OPS = st.lists(
    st.tuples(
        st.sampled_from(["arrive", "arrive", "arrive", "throttle", "release"]),
        st.floats(0.0, 3.0),
        st.one_of(st.none(), st.floats(0.0, 20.0)),
    ),
    max_size=120,
)


@given(
    ops=OPS,
    latencies=st.lists(st.floats(0.0, 8.0), min_size=1, max_size=8),
    arrive_late=st.lists(st.booleans(), min_size=1, max_size=8),
    limit=st.integers(1, 8),
    per=st.sampled_from([1.0, 5.0, 10.0]),
    cls=st.sampled_from(list(RequestClass)),
)
def test_no_window_ever_holds_more_arrivals_than_the_configured_limit(
    ops: list[tuple[str, float, float | None]],
    latencies: list[float],
    arrive_late: list[bool],
    limit: int,
    per: float,
    cls: RequestClass,
) -> None:
    """Arrivals, 429s and give-ups in any order, requests taking any time to be answered and reaching
    the server at any moment between sending and answer: the server never sees more than `limit`
    requests in any half-open window of `per` seconds."""
    pacer = Pacer(create=RateLimit(limit, per), other=RateLimit(limit, per))
    events: list[tuple[float, int, str, Slot]] = []  # (time, order, "wake" | "end", slot)
    order = itertools.count()
    arrivals: list[float] = []
    ended: list[Slot] = []
    released = sent = 0

    def send(slot: Slot, now: float) -> None:
        nonlocal sent
        k = sent
        sent += 1
        latency = latencies[k % len(latencies)]
        arrivals.append(now + latency if arrive_late[k % len(arrive_late)] else now)
        heapq.heappush(events, (now + latency, next(order), "end", slot))

    def due(slot: Slot, now: float) -> None:
        if slot.at > now:
            heapq.heappush(events, (slot.at, next(order), "wake", slot))
            return
        later = pacer.start(slot, now)
        if later is None:
            send(slot, now)
        else:
            heapq.heappush(events, (later.at, next(order), "wake", later))

    def run_until(t: float) -> None:
        while events and events[0][0] <= t:
            when, _, kind, slot = heapq.heappop(events)
            if kind == "end":
                pacer.finish(slot, when)
                ended.append(slot)
            else:
                due(slot, when)

    now = 0.0
    for op, gap, hint in ops:
        now += gap
        run_until(now)
        if op == "arrive":
            due(pacer.reserve(cls, now), now)
        elif op == "throttle" and ended:
            pacer.throttled(ended[len(ended) // 2], now, retry_after=hint)
        elif op == "release":
            waiting = [e for e in events if e[2] == "wake"]
            if waiting:
                victim = waiting[len(waiting) // 2]
                events.remove(victim)
                heapq.heapify(events)
                pacer.release(victim[3])
                released += 1
    run_until(math.inf)

    times = sorted(arrivals)
    for i, t in enumerate(times):
        in_window = i + 1 - bisect_right(times, t - per, hi=i + 1)  # arrivals in (t - per, t]
        assert in_window <= limit, (t, times)
    # Every request that did not give up was sent in the end, and nothing is left in flight.
    assert sent + released == sum(1 for op, _, _ in ops if op == "arrive")
    assert pacer.state(now + 10_000.0).create.in_flight == 0


def test_every_change_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    pacer = Pacer(create=RateLimit(10, 60.0))
    with caplog.at_level(logging.DEBUG, logger="comet_replicate.pacing"):
        slot = [send_now(pacer, CREATE, 0.0) for _ in range(10)][-1]
        pacer.reserve(CREATE, 0.0)  # waits for the window
        pacer.throttled(slot, 1.0, retry_after=4.0)
        pacer.state(200.0)  # quiet time: probes back up
    text = caplog.text
    assert "waits 61.500s for the window" in text
    assert "429 (hint 4.0)" in text and "allowed 10 -> 7" in text and "hold 4.00s" in text
    assert "probing up, 7 -> 10" in text
    assert all(r.levelno == logging.DEBUG for r in caplog.records)


# --------------------------------------------------------------------------- the server's hints


def hint(remaining: int | None, reset: float | None, limit: int | None = None) -> RateLimitHint:
    return RateLimitHint(remaining=remaining, reset=reset, limit=limit)


def test_a_hint_with_no_sends_left_waits_for_the_reset_instead_of_collecting_a_429() -> None:
    pacer = Pacer(other=RateLimit(3000, 60.0))
    send_now(pacer, OTHER, 0.0)
    pacer.hinted(OTHER, 0.0, hint(0, 12.0))
    slot = pacer.reserve(OTHER, 1.0)
    assert slot.at == pytest.approx(12.0)
    assert pacer.start(slot, 12.0) is None
    assert pacer.state(12.0).other.throttled == 0 and pacer.state(12.0).other.allowed == 3000


def test_a_hint_leaves_only_the_remaining_sends_until_the_reset_then_the_window_rules() -> None:
    pacer = Pacer(create=RateLimit(600, 60.0))
    pacer.hinted(CREATE, 0.0, hint(2, 10.0))
    assert wait_and_send(pacer, CREATE, 0.0)[0] == 0.0
    assert wait_and_send(pacer, CREATE, 0.0)[0] == 0.0
    assert wait_and_send(pacer, CREATE, 0.0)[0] == pytest.approx(10.0)  # the third waits for the reset
    assert wait_and_send(pacer, CREATE, 10.0)[0] == 10.0  # past it, only the configured window counts


def test_a_fresher_hint_replaces_the_previous_one() -> None:
    pacer = Pacer(create=RateLimit(600, 60.0))
    pacer.hinted(CREATE, 0.0, hint(0, 30.0))
    pacer.hinted(CREATE, 1.0, hint(50, 29.0))  # another answer: the window has room after all
    assert wait_and_send(pacer, CREATE, 1.0)[0] == 1.0


def test_a_limit_header_below_the_lane_lowers_it_and_one_above_never_raises_it() -> None:
    pacer = Pacer(create=RateLimit(600, 60.0))
    pacer.hinted(CREATE, 0.0, hint(None, None, limit=100))
    assert pacer.state(0.0).create.allowed == 100
    pacer.hinted(CREATE, 0.0, hint(None, None, limit=5000))
    assert pacer.state(0.0).create.allowed == 100
    assert pacer.state(0.0).create.limit == 600
    # quiet time still probes back up, never above the configured limit
    assert pacer.state(3600.0).create.allowed == 600


def test_hint_headers_are_read_under_both_prefixes_and_never_when_absent() -> None:
    now = 1_773_314_838.0
    assert RateLimitHint.of(
        httpx.Headers({"ratelimit-remaining": "5", "ratelimit-reset": "30"}), now_epoch=now
    ) == (hint(5, 30.0))
    got = RateLimitHint.of(
        httpx.Headers(
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(now + 4), "x-ratelimit-limit": "600"}
        ),
        now_epoch=now,
    )
    assert got == hint(0, pytest.approx(4.0), 600)  # an epoch reset becomes a delay
    structured = RateLimitHint.of(httpx.Headers({"ratelimit-limit": "600, 600;w=60"}), now_epoch=now)
    assert structured == hint(None, None, 600)
    assert RateLimitHint.of(httpx.Headers({"retry-after": "3"}), now_epoch=now) is None
    unreadable = RateLimitHint.of(
        httpx.Headers({"ratelimit-remaining": "many", "ratelimit-limit": "-1"}), now_epoch=now
    )
    assert unreadable is None
    huge = RateLimitHint.of(
        httpx.Headers({"ratelimit-remaining": "0", "ratelimit-reset": "1e9"}), now_epoch=now
    )
    assert huge is not None and huge.reset == 0.0  # a reset in the past is over
    capped = RateLimitHint.of(
        httpx.Headers({"ratelimit-remaining": "0", "ratelimit-reset": "86400"}), now_epoch=now
    )
    assert capped is not None and capped.reset == MAX_HOLD


# --------------------------------------------------------------------------- held creates, peeks


def test_a_held_create_counts_from_when_it_was_sent_not_when_it_was_answered() -> None:
    pacer = Pacer(create=RateLimit(1, 60.0))
    slot = pacer.reserve(CREATE, 0.0)
    assert pacer.start(slot, 0.0) is None
    pacer.finish(slot, 25.0, sent_at=0.2)  # the server held the answer until the prediction ended
    assert pacer.reserve(CREATE, 25.0).at == pytest.approx(0.2 + 60.0 * (1 + WINDOW_MARGIN))


def test_a_send_time_never_goes_before_the_grant_nor_after_the_answer() -> None:
    pacer = Pacer(create=RateLimit(1, 60.0))
    slot = pacer.reserve(CREATE, 10.0)
    assert pacer.start(slot, 10.0) is None
    pacer.finish(slot, 11.0, sent_at=-5.0)  # a clock mix-up cannot free the window early
    assert pacer.reserve(CREATE, 11.0).at == pytest.approx(10.0 + 60.0 * (1 + WINDOW_MARGIN))


def test_delay_peeks_at_the_next_free_time_without_booking() -> None:
    pacer = Pacer(create=RateLimit(2, 10.0))
    send_now(pacer, CREATE, 0.0)
    assert pacer.delay(CREATE, 0.0) == 0.0
    send_now(pacer, CREATE, 0.0)
    span = 10.0 * (1 + WINDOW_MARGIN)
    assert pacer.delay(CREATE, 1.0) == pytest.approx(span - 1.0)
    assert pacer.delay(CREATE, 1.0) == pytest.approx(span - 1.0)  # nothing was booked
    assert pacer.state(1.0).create.queued == 0
