"""The poll schedule and duration learning at their documented numbers.

Expected values are literals from the documentation (PollTuning's field comments, the docstrings,
the README's "first poll after ~100 ms, backs off to 1 s") or closed-form lognormal arithmetic done
here, never the implementation's own constants read back. Jitter is pinned with a random source
that returns a chosen value.
"""

from __future__ import annotations

import math
import random

import pytest
from comet_replicate.core.schedule import DurationEstimator, DurationFit, PollSchedule, PollTuning


class Fixed(random.Random):
    """A random source whose `random()` always returns `value` (0 ≤ value < 1)."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def _lognormal_pdf(t: float, mu: float, sd: float) -> float:
    z = (math.log(t) - mu) / sd
    return math.exp(-z * z / 2.0) / (t * sd * math.sqrt(2.0 * math.pi))


def _lognormal_survival(t: float, mu: float, sd: float) -> float:
    return 0.5 * math.erfc((math.log(t) - mu) / (sd * math.sqrt(2.0)))


# --------------------------------------------------------------------------- jitter (no history)


@pytest.mark.parametrize(("drawn", "first"), [(0.0, 0.09), (0.25, 0.095), (0.5, 0.1), (0.75, 0.105)])
def test_the_first_poll_is_100ms_give_or_take_ten_percent(drawn: float, first: float) -> None:
    # PollTuning: first = 0.1 s, jitter = ± 0.1 (a fraction); the draw maps 0 → -10 %, 1 → +10 %
    assert PollSchedule().next_delay(0.0, Fixed(drawn)) == pytest.approx(first)


def test_jitter_applies_to_every_interval_of_the_backoff() -> None:
    schedule = PollSchedule()
    delays = [schedule.next_delay(0.0, Fixed(0.0)) for _ in range(4)]
    assert delays == pytest.approx([0.09, 0.135, 0.2025, 0.30375])  # 0.1 × 1.5^k, each 10 % short
    capped = PollSchedule()
    late = [capped.next_delay(0.0, Fixed(0.999999)) for _ in range(12)][-1]
    assert late == pytest.approx(1.1, rel=1e-5)  # the 1 s cap, 10 % long


def test_jitter_varies_within_ten_percent_both_ways() -> None:
    firsts = [PollSchedule().next_delay(0.0, random.Random(seed)) for seed in range(200)]
    assert all(0.09 <= d <= 0.11 for d in firsts)
    assert min(firsts) < 0.092 and max(firsts) > 0.108  # spread over the whole band …
    assert len(set(firsts)) > 150  # … and actually random


def test_jitter_zero_gives_the_nominal_schedule() -> None:
    schedule = PollSchedule(PollTuning(jitter=0.0))
    assert [schedule.next_delay(0.0, Fixed(0.0)) for _ in range(3)] == pytest.approx([0.1, 0.15, 0.225])


def test_learned_gaps_are_jittered_by_the_same_fraction_below_the_bound() -> None:
    fit = DurationFit(math.log(4.0), 0.35)  # past the start: a gap of 5 % of 4 s = 0.2 s
    plain = PollSchedule(PollTuning(jitter=0.0), fit).next_delay(3.0, Fixed(0.3))
    low = PollSchedule(PollTuning(), fit).next_delay(3.0, Fixed(0.0))
    high = PollSchedule(PollTuning(), fit).next_delay(3.0, Fixed(0.999999))
    assert plain == pytest.approx(0.2)
    assert low == pytest.approx(0.18)
    assert high == pytest.approx(0.22, rel=1e-5)


def test_jitter_never_lengthens_a_gap_past_the_bound() -> None:
    fit = DurationFit(math.log(30.0), 0.35)  # 5 % of 30 s = 1.5 s: the 0.45 s bound applies
    low = PollSchedule(PollTuning(), fit).next_delay(25.0, Fixed(0.0))
    high = PollSchedule(PollTuning(), fit).next_delay(25.0, Fixed(0.999999))
    assert low == pytest.approx(0.405)  # 0.45 s, 10 % short
    assert high == 0.45  # 10 % long would be 0.495 s: held at the bound


def test_the_sleep_to_the_start_quantile_is_not_jittered() -> None:
    fit = DurationFit(math.log(10.0), 0.35)  # 5th percentile: 10 · e^(−1.645 · 0.35) = 5.623 s
    for drawn in (0.0, 0.5, 0.999999):
        assert PollSchedule(PollTuning(), fit).next_delay(1.0, Fixed(drawn)) == pytest.approx(4.623, abs=1e-3)


def test_a_short_hint_does_not_shorten_the_delay_and_a_spent_deadline_means_now() -> None:
    assert PollSchedule(PollTuning(jitter=0.0)).next_delay(0.0, Fixed(0.0), hint=0.01) == 0.1
    assert PollSchedule(PollTuning(jitter=0.0)).next_delay(0.0, Fixed(0.0), hint=0.0) == 0.1
    assert PollSchedule().next_delay(0.0, Fixed(0.0), remaining=0.0) == 0.0
    assert PollSchedule().next_delay(0.0, Fixed(0.0), remaining=-1.0) == 0.0
    assert PollSchedule().next_delay(0.0, Fixed(0.0), hint=5.0, remaining=2.5) == 2.5


# --------------------------------------------------------------------------- the learned schedule


@pytest.mark.parametrize(
    ("typical", "start"),
    [
        (0.5, 0.5 * math.exp(-1.645 * 0.35)),  # 0.281 s
        (2.0, 2.0 * math.exp(-1.645 * 0.35)),  # 1.125 s
        (30.0, 30.0 * math.exp(-1.645 * 0.35)),  # 16.87 s
    ],
)
def test_the_first_learned_poll_is_at_the_fifth_percentile(typical: float, start: float) -> None:
    # PollTuning: start_z = −1.645, the 5th percentile of the fitted lognormal
    schedule = PollSchedule(PollTuning(), DurationFit(math.log(typical), 0.35))
    assert schedule.next_delay(0.0, Fixed(0.5)) == pytest.approx(start, rel=1e-3)


@pytest.mark.parametrize(
    ("typical", "elapsed", "gap"),
    [
        (0.5, 0.4, 0.08),  # 5 % of 0.5 s is 25 ms: the 80 ms floor
        (1.6, 1.0, 0.08),  # 5 % of 1.6 s is 80 ms
        (2.0, 1.5, 0.1),  # 5 % of the typical 2 s
        (5.0, 4.0, 0.25),
        (5.0, 8.0, 0.4),  # past the typical duration: 5 % of the time already waited
        (8.8, 8.0, 0.44),
        (12.0, 10.0, 0.45),  # 5 % of 12 s is 0.6 s: the 0.45 s bound
        (2.0, 60.0, 0.45),  # far past its history: 5 % of 60 s, held at the bound
    ],
)
def test_a_learned_gap_is_five_percent_of_the_duration_to_expect_within_80ms_and_450ms(
    typical: float, elapsed: float, gap: float
) -> None:
    schedule = PollSchedule(PollTuning(jitter=0.0), DurationFit(math.log(typical), 0.35))
    assert schedule.learned_gap(elapsed) == pytest.approx(gap)
    assert schedule.next_delay(elapsed, Fixed(0.5)) == pytest.approx(gap)


# --------------------------------------------------------------------------- duration learning


def test_the_spread_of_distinct_samples_is_their_sample_standard_deviation_without_a_prior() -> None:
    estimator = DurationEstimator()
    for seconds in (1.0, math.e, math.e**2):  # log-seconds 0, 1, 2: mean 1, squares 2
        estimator.observe("m", seconds)
    fit = estimator.fit("m", PollTuning(prior_weight=0.0, sd_floor=0.0))
    assert fit is not None
    assert fit.mu == pytest.approx(1.0)
    assert fit.typical == pytest.approx(math.e)
    # variance 2 / (3 − 1) = 1, widened by (1 + 1/3) for the uncertainty of the mean
    assert fit.sd == pytest.approx(math.sqrt(4.0 / 3.0))


def test_the_spread_is_shrunk_towards_the_prior_by_its_weight() -> None:
    estimator = DurationEstimator()
    for seconds in (1.0, math.e, math.e**2):
        estimator.observe("m", seconds)
    fit = estimator.fit("m", PollTuning(prior_weight=8.0, prior_sd=0.35, sd_floor=0.0))
    assert fit is not None
    # (8 · 0.35² + 2) / (8 + 3 − 1) = 0.298, × (1 + 1/3)
    assert fit.sd == pytest.approx(math.sqrt(0.298 * 4.0 / 3.0))


def test_the_spread_never_falls_below_the_floor() -> None:
    estimator = DurationEstimator()
    for _ in range(3):
        estimator.observe("m", 2.0)
    assert estimator.fit("m", PollTuning(prior_weight=0.0, sd_floor=0.05)) == DurationFit(math.log(2.0), 0.05)
    assert estimator.fit("m", PollTuning(prior_weight=0.0, sd_floor=0.2)) == DurationFit(math.log(2.0), 0.2)


def test_instant_predictions_count_as_one_millisecond() -> None:
    estimator = DurationEstimator()
    for _ in range(3):
        estimator.observe("m", 0.0)
    fit = estimator.fit("m", PollTuning())
    assert fit is not None and fit.typical == pytest.approx(0.001)


@pytest.mark.parametrize(
    ("seconds", "kept"),
    [
        (0.0, True),
        (86_399.0, True),
        (86_400.0, False),  # a day or more is not a duration worth learning from
        (-0.001, False),
        (float("inf"), False),
        (float("nan"), False),
    ],
)
def test_only_durations_from_zero_to_under_a_day_are_learned(seconds: float, kept: bool) -> None:
    estimator = DurationEstimator()
    estimator.observe("m", seconds)
    assert (estimator.fit("m", PollTuning(min_samples=1)) is not None) is kept
    assert estimator.samples("m") == ([seconds] if kept else [])


def test_samples_of_an_unknown_model_are_empty_and_known_ones_oldest_first() -> None:
    estimator = DurationEstimator()
    assert estimator.samples("nobody") == []
    for seconds in (3.0, 1.0, 2.0):
        estimator.observe("m", seconds)
    assert estimator.samples("m") == [3.0, 1.0, 2.0]


def test_by_default_the_last_32_durations_of_a_model_are_kept() -> None:
    estimator = DurationEstimator()
    estimator.observe("m", 1000.0)
    for _ in range(31):
        estimator.observe("m", 1.0)
    fit = estimator.fit("m", PollTuning())
    assert fit is not None and fit.typical > 1.0  # 32 samples: the old one still counts
    estimator.observe("m", 1.0)
    fit = estimator.fit("m", PollTuning())
    assert fit is not None and fit.typical == pytest.approx(1.0)  # 33rd sample: the oldest is gone


def test_by_default_the_256_most_recently_used_models_are_kept() -> None:
    estimator = DurationEstimator()
    tuning = PollTuning(min_samples=1)
    for i in range(256):
        estimator.observe(f"model-{i}", 1.0)
    assert estimator.fit("model-0", tuning) is not None  # 256 models fit
    estimator.observe("model-0", 1.0)  # used again: now the most recent
    estimator.observe("model-256", 1.0)  # the 257th model pushes out the least recently used
    assert estimator.fit("model-1", tuning) is None
    assert estimator.fit("model-0", tuning) is not None
    assert estimator.fit("model-256", tuning) is not None


# --------------------------------------------------------------------------- the lognormal fit


def test_density_and_survival_are_the_lognormals() -> None:
    fit = DurationFit(0.0, 1.0)
    for t in (0.5, 1.0, math.e, 7.0):
        assert fit.pdf(t) == pytest.approx(_lognormal_pdf(t, 0.0, 1.0))
        assert fit.survival(t) == pytest.approx(_lognormal_survival(t, 0.0, 1.0))
    assert fit.pdf(1.0) == pytest.approx(0.3989423)  # 1/√(2π)
    assert fit.survival(1.0) == pytest.approx(0.5)  # the median
    assert fit.survival(math.e) == pytest.approx(0.1586553)  # one sd above it
    assert fit.quantile(1.0) == pytest.approx(math.e) and fit.quantile(-1.0) == pytest.approx(1 / math.e)
    assert fit.typical == 1.0
    narrow = DurationFit(math.log(2.0), 0.5)  # a spread other than 1 tells × from ÷
    for t in (1.0, 2.0, 3.5):
        assert narrow.pdf(t) == pytest.approx(_lognormal_pdf(t, math.log(2.0), 0.5))
        assert narrow.survival(t) == pytest.approx(_lognormal_survival(t, math.log(2.0), 0.5))
    assert narrow.pdf(2.0) == pytest.approx(0.3989423)  # 1/(2 · 0.5 · √(2π)) at the median


def test_nothing_finishes_within_the_first_microsecond() -> None:
    fit = DurationFit(math.log(1e-6), 1.0)  # a (silly) fit centred on one microsecond
    assert fit.pdf(0.0) == 0.0 and fit.pdf(9e-7) == 0.0
    assert fit.survival(0.0) == 1.0 and fit.survival(9e-7) == 1.0
    # from one microsecond on, the lognormal itself
    assert fit.pdf(1e-6) == pytest.approx(_lognormal_pdf(1e-6, math.log(1e-6), 1.0))
    assert fit.survival(1e-6) == pytest.approx(0.5)
