"""The pure policy core: every decision tested without I/O, clocks or randomness of its own."""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest
from comet_replicate.core.retry import (
    MAX_RETRY_AFTER,
    Deadline,
    Failure,
    OpKind,
    backoff_delay,
    cancel_after_header,
    parse_retry_after,
    retry_delay,
)
from comet_replicate.core.schedule import DurationEstimator, DurationFit, PollSchedule, PollTuning
from comet_replicate.core.status import StatusClass, classify_status, status_table
from comet_replicate_api.models import PredictionStatus
from hypothesis import given
from hypothesis import strategies as st


def test_every_spec_status_is_classified() -> None:
    table = status_table()
    assert set(table) == {member.value for member in PredictionStatus}
    assert all(cls is not StatusClass.UNKNOWN for cls in table.values())


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("starting", StatusClass.PENDING),
        ("processing", StatusClass.PENDING),
        ("succeeded", StatusClass.SUCCEEDED),
        ("failed", StatusClass.FAILED),
        ("canceled", StatusClass.CANCELED),
        ("aborted", StatusClass.ABORTED),
        (PredictionStatus.ABORTED, StatusClass.ABORTED),
        ("queued", StatusClass.UNKNOWN),
        ("", StatusClass.UNKNOWN),
        ("SUCCEEDED", StatusClass.UNKNOWN),
        (None, StatusClass.UNKNOWN),
        (3, StatusClass.UNKNOWN),
    ],
)
def test_classify_status_is_fail_closed(status: object, expected: StatusClass) -> None:
    assert classify_status(status) is expected


RNG = random.Random(0)


def _retry(kind: OpKind, failure: Failure, **kw: object) -> float | None:
    return retry_delay(kind, failure, retry_index=0, max_retries=2, rng=random.Random(1), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_create_is_never_retried_after_a_5xx(status: int) -> None:
    assert _retry(OpKind.CREATE, Failure.STATUS, status=status) is None


@pytest.mark.parametrize("failure", [Failure.TIMEOUT, Failure.NETWORK])
def test_create_is_never_retried_once_it_may_have_reached_the_server(failure: Failure) -> None:
    assert _retry(OpKind.CREATE, failure) is None


def test_create_is_retried_when_it_never_left_and_on_429() -> None:
    assert _retry(OpKind.CREATE, Failure.NOT_SENT) is not None
    assert _retry(OpKind.CREATE, Failure.STATUS, status=429, retry_after=3.0) == 3.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 422, 501])
def test_client_errors_are_not_retried(status: int) -> None:
    assert _retry(OpKind.GET, Failure.STATUS, status=status) is None


def test_comet_invalid_request_500_is_not_retried() -> None:
    assert _retry(OpKind.GET, Failure.STATUS, status=500, error_code="invalid_request") is None


def test_retries_stop_at_max_retries() -> None:
    rng = random.Random(0)
    assert retry_delay(OpKind.GET, Failure.TIMEOUT, retry_index=1, max_retries=2, rng=rng) is not None
    assert retry_delay(OpKind.GET, Failure.TIMEOUT, retry_index=2, max_retries=2, rng=rng) is None
    assert retry_delay(OpKind.GET, Failure.TIMEOUT, retry_index=0, max_retries=0, rng=rng) is None


def test_retry_after_above_the_cap_or_past_the_deadline_gives_up() -> None:
    assert _retry(OpKind.GET, Failure.STATUS, status=429, retry_after=MAX_RETRY_AFTER + 1) is None
    assert _retry(OpKind.GET, Failure.STATUS, status=429, retry_after=5.0, remaining=4.0) is None
    assert _retry(OpKind.GET, Failure.STATUS, status=429, retry_after=5.0, remaining=6.0) == 5.0


@given(st.integers(min_value=0, max_value=50), st.integers(min_value=0, max_value=2**32))
def test_backoff_is_exponential_capped_and_jittered_down_only(index: int, seed: int) -> None:
    delay = backoff_delay(index, random.Random(seed))
    nominal = min(0.5 * 2**index, 8.0)
    assert 0.75 * nominal <= delay <= nominal


def test_retry_after_parsing_covers_every_form() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, now_epoch=1445412480.0) == 10.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now_epoch=1445412490.0) == 0.0
    assert parse_retry_after({"retry-after": "soon"}, now_epoch=0.0) is None
    assert parse_retry_after({"retry-after": "-4"}) is None
    assert parse_retry_after({}, body_retry_after=5) == 5.0
    assert parse_retry_after({}, detail="Request was throttled. Your rate limit resets in ~30s.") == 30.0
    assert parse_retry_after({}, detail="Request was throttled. Expected available in 1 second.") == 1.0
    assert parse_retry_after({}) is None
    # the header wins over the body
    assert parse_retry_after({"retry-after": "2"}, body_retry_after=9) == 2.0


def test_deadline_math() -> None:
    d = Deadline(start=100.0, timeout=10.0)
    assert d.remaining(105.0) == 5.0
    assert d.remaining(200.0) == 0.0
    assert not d.expired(109.9)
    assert d.expired(110.0)
    unbounded = Deadline(start=0.0, timeout=None)
    assert unbounded.remaining(1e9) is None
    assert not unbounded.expired(1e9)


def test_cancel_after_header_is_whole_seconds_at_least_five() -> None:
    assert cancel_after_header(300.0) == "300s"
    assert cancel_after_header(12.2) == "13s"
    assert cancel_after_header(1.0) == "5s"
    assert cancel_after_header(None) is None


def test_adaptive_schedule_starts_soon_and_grows_to_the_cap() -> None:
    schedule = PollSchedule(PollTuning(jitter=0.0))
    rng = random.Random(0)
    delays = [schedule.next_delay(0.0, rng) for _ in range(15)]
    assert delays[0] == pytest.approx(0.1)
    assert delays[1] == pytest.approx(0.15)
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert delays[-1] == pytest.approx(1.0)


def test_schedule_honours_a_retry_after_hint_and_the_deadline() -> None:
    schedule = PollSchedule()
    rng = random.Random(0)
    assert schedule.next_delay(0.0, rng, hint=3.0) == 3.0
    assert schedule.next_delay(0.0, rng, hint=3.0, remaining=1.0) == 1.0


@given(
    st.floats(min_value=0, max_value=1000),
    st.one_of(st.none(), st.floats(min_value=0, max_value=100)),
    st.one_of(st.none(), st.floats(min_value=0, max_value=100)),
    st.integers(min_value=0, max_value=1000),
)
def test_poll_delay_is_never_negative_and_never_past_the_deadline(
    elapsed: float, hint: float | None, remaining: float | None, seed: int
) -> None:
    for fit in (None, DurationFit(0.4, 0.3), DurationFit(3.0, 0.05)):
        schedule = PollSchedule(fit=fit)
        delay = schedule.next_delay(elapsed, random.Random(seed), hint=hint, remaining=remaining)
        assert delay >= 0.0
        if remaining is not None:
            assert delay <= remaining


def _learned(samples: list[float], model: str = "m") -> PollSchedule:
    estimator = DurationEstimator()
    for value in samples:
        estimator.observe(model, value)
    tuning = PollTuning(jitter=0.0)
    return PollSchedule(tuning, estimator.fit(model, tuning))


def test_estimator_needs_a_few_samples_before_it_predicts() -> None:
    estimator = DurationEstimator()
    estimator.observe("m", 2.0)
    estimator.observe("m", 2.1)
    assert estimator.fit("m", PollTuning()) is None
    estimator.observe("m", 2.2)
    fit = estimator.fit("m", PollTuning())
    assert fit is not None
    earliest, latest, typical = fit.quantile(-1.2816), fit.quantile(1.2816), fit.typical
    assert earliest <= typical <= latest
    assert fit is not None and 2.0 < fit.typical < 2.2 and fit.sd >= PollTuning().sd_floor
    assert estimator.fit("other", PollTuning()) is None


def test_estimator_memory_is_bounded() -> None:
    estimator = DurationEstimator(window=4, max_models=3)
    for i in range(10):
        estimator.observe("m", float(i))
        estimator.observe(f"model-{i}", 1.0)
    assert len(estimator.samples("m")) <= 4
    assert len(estimator._samples) <= 3
    estimator.observe("m", float("nan"))
    estimator.observe("m", -1.0)
    assert all(v >= 0 for v in estimator.samples("m"))


def test_learned_schedule_sleeps_through_the_unlikely_start_polls_densely_then_at_the_bound() -> None:
    schedule = _learned([2.0, 2.05, 2.1, 2.0, 2.08])
    rng = random.Random(0)
    first = schedule.next_delay(0.0, rng)
    assert 0.6 < first < 1.6  # sleeps through the start, where finishing is unlikely
    elapsed, gaps = first, []
    while elapsed < 2.6:
        d = schedule.next_delay(elapsed, rng)
        gaps.append((elapsed, d))
        elapsed += d
    assert all(d <= 0.11 for at, d in gaps if 1.5 <= at <= 2.2)  # dense near the typical 2 s
    after = [schedule.next_delay(30.0 + i, rng) for i in range(3)]
    assert all(d == 0.45 for d in after)  # far past the history: every 0.45 s, never sparser


def _expected_gets(schedule: PollSchedule, fit: DurationFit, horizon: float) -> float:
    """Expected polls of a jitter-free schedule for a duration drawn from `fit`: poll k happens iff
    the prediction was still running at poll k-1 (the first poll always happens)."""
    rng = random.Random(0)
    elapsed, expected = 0.0, 0.0
    while elapsed < horizon:
        expected += fit.survival(elapsed)
        elapsed += schedule.next_delay(elapsed, rng)
    return expected


def _fixed_gets(fit: DurationFit, horizon: float, interval: float = 0.5) -> float:
    return sum(fit.survival(k * interval) for k in range(int(horizon / interval) + 1))


@pytest.mark.parametrize("typical", [12.0, 30.0])
def test_expected_gets_of_a_known_long_model_stay_under_a_half_second_pollers(typical: float) -> None:
    fit = DurationFit(math.log(typical), 0.35)
    schedule = PollSchedule(PollTuning(jitter=0.0), fit)
    horizon = 6.0 * typical
    assert _expected_gets(schedule, fit, horizon) < _fixed_gets(fit, horizon)


def test_expected_gets_over_a_model_mix_stay_under_a_half_second_pollers() -> None:
    ours = fixed = 0.0
    for typical in (0.5, 1.5, 3.0, 6.0, 12.0, 30.0):
        fit = DurationFit(math.log(typical), 0.35)
        ours += _expected_gets(PollSchedule(PollTuning(jitter=0.0), fit), fit, 6.0 * typical)
        fixed += _fixed_gets(fit, 6.0 * typical)
    assert ours < 0.9 * fixed


@pytest.mark.parametrize("typical", [0.5, 1.0, 1.6])
def test_short_models_are_polled_every_80ms_across_their_central_window(typical: float) -> None:
    fit = DurationFit(math.log(typical), 0.35)
    schedule = PollSchedule(PollTuning(jitter=0.0), fit)
    rng = random.Random(0)
    elapsed, gaps = 0.0, []
    while elapsed < typical:
        d = schedule.next_delay(elapsed, rng)
        gaps.append((elapsed, d))
        elapsed += d
    inside = [d for at, d in gaps if fit.quantile(-0.8416) <= at <= typical]  # 20th-50th percentile
    assert inside and all(d == pytest.approx(0.08) for d in inside)


def test_a_misjudged_model_backs_off_to_the_bound_and_stays_there() -> None:
    schedule = PollSchedule(PollTuning(), DurationFit(math.log(2.0), 0.35))  # history says ~2 s …
    rng = random.Random(0)
    elapsed, gaps = 0.0, []
    while elapsed < 60.0:  # … but this prediction runs for a minute
        gap = schedule.next_delay(elapsed, rng)
        gaps.append((elapsed, gap))
        elapsed += gap
    assert max(d for _, d in gaps[1:]) <= 0.45  # never a gap over the bound …
    assert all(d >= 0.405 for at, d in gaps if at > 9.0)  # … past 9 s (5 % of it = 0.45 s) at it
    assert len(gaps) < 180  # about a 0.45 s poller's 133, plus the denser start


def test_learned_gaps_grow_with_the_typical_duration_and_the_time_waited() -> None:
    by_typical = [
        PollSchedule(PollTuning(), DurationFit(math.log(typical), 0.35)).learned_gap(0.0)
        for typical in (0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 10.0, 20.0, 60.0)
    ]
    assert all(b >= a for a, b in itertools.pairwise(by_typical))
    assert by_typical[0] == 0.08 and by_typical[-1] == 0.45
    schedule = PollSchedule(PollTuning(), DurationFit(math.log(2.0), 0.35))
    by_elapsed = [schedule.learned_gap(t) for t in (0.0, 1.0, 2.0, 3.0, 5.0, 9.0, 12.0, 100.0)]
    assert all(b >= a for a, b in itertools.pairwise(by_elapsed))
    assert by_elapsed[0] == 0.1 and by_elapsed[-1] == 0.45


def test_estimator_spread_is_shrunk_towards_the_prior_for_few_samples() -> None:
    estimator = DurationEstimator()
    for value in (3.0, 3.0, 3.0):
        estimator.observe("m", value)
    few = estimator.fit("m", PollTuning())
    for _ in range(29):
        estimator.observe("m", 3.0)
    many = estimator.fit("m", PollTuning())
    assert few is not None and many is not None
    assert few.sd > 0.25  # three identical samples do not make the schedule overconfident
    assert many.sd < few.sd


def test_long_erratic_models_sleep_to_their_start_then_poll_at_the_bound() -> None:
    rng = random.Random(1)
    schedule = _learned([rng.lognormvariate(math.log(28.0), 0.35) for _ in range(8)])
    first = schedule.next_delay(0.0, rng)
    assert first > 10.0  # straight to the early end of the distribution
    delays = [schedule.next_delay(20.0 + i, rng) for i in range(5)]
    assert all(d == 0.45 for d in delays)  # 5 % of ~28 s is over the 0.45 s bound


def _lognormal_around(rng: random.Random, mean: float, sigma: float) -> float:
    return rng.lognormvariate(math.log(mean) - sigma**2 / 2, sigma)


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def _mix(seed: int) -> tuple[float, float, float, float, float, float]:
    """The benchmark's detection plan in miniature: six models from 0.5 s to 30 s, lognormal σ 0.35,
    three warm-up predictions each, then eight measured ones; polled by our schedule and by a fixed
    0.5 s poller. Returns (our p50 latency, our mean GETs, fixed p50 latency, fixed mean GETs, our p90
    latency, fixed p90 latency)."""
    rng = random.Random(seed)
    tuning = PollTuning()
    estimator = DurationEstimator()
    ours_latency, ours_gets, fixed_latency, fixed_gets = [], [], [], []
    for mean in (0.5, 1.5, 3.0, 6.0, 12.0, 30.0):
        model = f"m{mean}"
        for _ in range(3):
            estimator.observe(model, _lognormal_around(rng, mean, 0.35))
        for _ in range(8):
            duration = _lognormal_around(rng, mean, 0.35)
            schedule = PollSchedule(tuning, estimator.fit(model, tuning))
            elapsed, polls = 0.0, 0
            while elapsed < duration:
                elapsed += schedule.next_delay(elapsed, rng)
                polls += 1
            ours_latency.append(elapsed - duration)
            ours_gets.append(polls)
            fixed = math.ceil(duration / 0.5)
            fixed_latency.append(fixed * 0.5 - duration)
            fixed_gets.append(fixed)
            estimator.observe(model, duration)
    return (
        statistics.median(ours_latency),
        statistics.mean(ours_gets),
        statistics.median(fixed_latency),
        statistics.mean(fixed_gets),
        _p90(ours_latency),
        _p90(fixed_latency),
    )


def test_over_a_model_mix_the_learned_schedule_detects_within_100ms_with_fewer_gets_than_a_fixed_poller() -> (
    None
):
    results = [_mix(seed) for seed in range(6)]
    ours_p50 = statistics.mean(r[0] for r in results)
    ours_gets = statistics.mean(r[1] for r in results)
    fixed_p50 = statistics.mean(r[2] for r in results)
    fixed_gets = statistics.mean(r[3] for r in results)
    assert ours_p50 <= 0.09  # leaves ~10 ms for the round trip
    assert ours_gets < fixed_gets
    assert ours_p50 < fixed_p50
    assert all(r[4] <= 0.45 for r in results)  # the learned p90 within the bound, under the poller's
    assert statistics.mean(r[4] for r in results) < statistics.mean(r[5] for r in results)


def test_schedule_is_deterministic_for_a_seed() -> None:
    a = [PollSchedule().next_delay(float(i), random.Random(3)) for i in range(5)]
    b = [PollSchedule().next_delay(float(i), random.Random(3)) for i in range(5)]
    assert a == b
