"""When to poll next: per-model duration learning and the poll schedule built on it.

Pure: callers pass the elapsed time and a random source in; nothing here reads a clock.
"""

from __future__ import annotations

import math
import random
import threading
from collections import deque
from dataclasses import dataclass, field

__all__ = ["DurationEstimator", "DurationFit", "PollSchedule", "PollTuning"]


@dataclass(frozen=True, slots=True)
class PollTuning:
    """Knobs of the poll schedule (the defaults are what the benchmarks measure)."""

    first: float = 0.1  # first poll after creation when nothing is known
    growth: float = 1.5  # interval growth per poll (no history)
    cap: float = 2.0  # longest interval without history
    jitter: float = 0.1  # ± fraction
    min_samples: int = 3  # finished predictions of a model before its history is used
    dense: float = 0.05  # the shortest interval the learned schedule uses
    target: float = 0.06  # a detection delay that counts as prompt (leaves room for the round trip)
    miss_cost: float = 5.0  # seconds of delay a late (> target) detection is worth on top of its delay
    get_cost: float = 0.1  # seconds of delay one GET is worth: the price of polling
    max_gap: float = 10.0  # the longest sleep of the learned schedule
    budget_interval: float = 0.5  # learned polls never outrun a poller with this interval …
    budget_allowance: float = 60.0  # … by more than this many GETs (a fit that is off stays cheap)
    outlier: float = 0.05  # chance a prediction is unlike its model's history (queue spike, new model)
    outlier_sd: float = 1.0  # spread (log-seconds) of such an outlier around the typical duration
    prior_sd: float = 0.35  # the spread (log-seconds) assumed before a model's history says otherwise
    prior_weight: float = 8.0  # … worth this many samples
    sd_floor: float = 0.05  # the narrowest spread (log-seconds) a history may claim


class DurationEstimator:
    """Per-model durations of finished predictions (seconds from creation to completion).

    Keeps the last `window` samples per model and the last `max_models` models, so memory stays
    bounded however many predictions a client makes.
    """

    def __init__(self, window: int = 32, max_models: int = 256) -> None:
        self._window = window
        self._max_models = max_models
        self._samples: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def observe(self, model: str, seconds: float) -> None:
        """Record how long one finished prediction of `model` took."""
        if not (math.isfinite(seconds) and 0.0 <= seconds < 86_400.0):
            return
        with self._lock:  # one client may be shared by threads
            samples = self._samples.pop(model, None)
            if samples is None:
                samples = deque(maxlen=self._window)
                if len(self._samples) >= self._max_models:
                    self._samples.pop(next(iter(self._samples)))
            samples.append(seconds)
            self._samples[model] = samples  # re-insert: most recently used last

    def samples(self, model: str) -> list[float]:
        """The recorded durations of `model`, oldest first."""
        return list(self._samples.get(model, ()))

    def fit(self, model: str, tuning: PollTuning) -> DurationFit | None:
        """A lognormal fit of `model`'s durations, or None without enough history.

        The spread is shrunk towards `prior_sd` (worth `prior_weight` samples), widened for the
        uncertainty of the mean and never below `sd_floor`, so a few lucky samples cannot make the
        schedule overconfident.
        """
        samples = self._samples.get(model)
        if samples is None or len(samples) < tuning.min_samples:
            return None
        with self._lock:
            logs = [math.log(max(v, 1e-3)) for v in samples]
        n = len(logs)
        mu = sum(logs) / n
        squares = sum((x - mu) ** 2 for x in logs)
        # Shrink the spread towards the prior: three samples say little about it.
        var = (tuning.prior_weight * tuning.prior_sd**2 + squares) / (tuning.prior_weight + n - 1)
        sd = max(tuning.sd_floor, math.sqrt(var * (1.0 + 1.0 / n)))
        return DurationFit(mu, sd)


@dataclass(frozen=True, slots=True)
class DurationFit:
    """A lognormal fit of a model's durations: `mu` and `sd` of log-seconds."""

    mu: float
    sd: float

    def pdf(self, t: float) -> float:
        """Density of finishing at `t` seconds after creation."""
        if t < 1e-6:  # nothing finishes in the first microsecond (and no denormal divisions)
            return 0.0
        z = (math.log(t) - self.mu) / self.sd
        return math.exp(-0.5 * z * z) / (t * self.sd * _SQRT_2PI)

    @property
    def typical(self) -> float:
        """The median duration."""
        return math.exp(self.mu)

    def quantile(self, z: float) -> float:
        """The duration `z` standard deviations (in log space) from the median."""
        return math.exp(self.mu + z * self.sd)

    def survival(self, t: float) -> float:
        """Probability of still running `t` seconds after creation."""
        if t < 1e-6:
            return 1.0
        return 0.5 * math.erfc((math.log(t) - self.mu) / (self.sd * _SQRT_2))


_SQRT_2PI = math.sqrt(2.0 * math.pi)
_SQRT_2 = math.sqrt(2.0)


@dataclass(slots=True)
class PollSchedule:
    """When to poll next, for one prediction. Times are seconds since the prediction was created.

    Without history it backs off adaptively: first poll after `first`, then ×`growth` with jitter up
    to `cap`. With a fitted duration distribution each interval minimises an expected cost per
    second of waiting: the chance of finishing now (the hazard, i.e. conditional on still running
    at that time) × (the mean detection delay + `miss_cost` if the delay may exceed `target`), plus
    `get_cost` × the poll rate. Where finishing is likely the answer is `target` or shorter (never
    below `dense`); where it is not, a longer one (√(2·get_cost/hazard), at most `max_gap`).

    One price for a GET across all models makes short, predictable models prompt (a few cheap polls
    cover their window) and long ones frugal (their window would cost hundreds of dense polls); over
    the benchmark's mix of models that is fewer GETs than a fixed 0.5 s poller. An `outlier` share
    of the distribution is a broad component, so a prediction running far past its model's history
    is polled ever more sparsely instead of densely forever; and a learned schedule never gets more
    than `budget_allowance` GETs ahead of a fixed `budget_interval` poller, so a misjudged model
    costs little.
    """

    tuning: PollTuning = field(default_factory=PollTuning)
    fit: DurationFit | None = None
    _interval: float = 0.0
    _polls: int = 0

    def next_delay(
        self, elapsed: float, rng: random.Random, *, hint: float | None = None, remaining: float | None = None
    ) -> float:
        """Seconds to sleep before the next poll, given the time since creation.

        `hint` is a server Retry-After (honoured as a floor); `remaining` the deadline's time left
        (the delay never exceeds it).
        """
        t = self.tuning
        if self.fit is not None:
            delay = self._jitter(self.learned_gap(elapsed), rng)
            # The budget: by the next poll, at most `budget_allowance` GETs more than a fixed poller.
            self._polls += 1
            earliest = (self._polls - t.budget_allowance) * t.budget_interval - elapsed
            delay = max(delay, earliest)
        else:
            self._interval = t.first if self._interval <= 0 else min(self._interval * t.growth, t.cap)
            delay = self._jitter(self._interval, rng)
        if hint is not None:
            delay = max(delay, hint)
        if remaining is not None:
            delay = min(delay, remaining)
        return max(0.0, delay)

    def _jitter(self, value: float, rng: random.Random) -> float:
        return value * (1.0 + self.tuning.jitter * (2.0 * rng.random() - 1.0))

    def hazard(self, t: float) -> float:
        """Rate of finishing at `t` given still running then (per second), outliers included."""
        assert self.fit is not None
        fit, w = self.fit, self.tuning.outlier
        broad = DurationFit(fit.mu, max(self.tuning.outlier_sd, fit.sd))
        survival = (1.0 - w) * fit.survival(t) + w * broad.survival(t)
        density = (1.0 - w) * fit.pdf(t) + w * broad.pdf(t)
        if survival <= 1e-300:
            return 0.0  # beyond any modelled duration: nothing left to expect
        return density / survival

    def interval(self, hazard: float) -> float:
        """The interval minimising the expected cost per second at this hazard (see the class doc)."""
        t = self.tuning
        if hazard <= 0.0:
            return t.max_gap

        def cost(gap: float) -> float:
            late = max(
                0.0, 1.0 - t.target / gap
            )  # chance the finish lands more than `target` before the poll
            return hazard * (gap / 2.0 + t.miss_cost * late) + t.get_cost / gap

        candidates = [t.dense, t.target, t.max_gap, math.sqrt(2.0 * t.get_cost / hazard)]
        excess = t.get_cost - hazard * t.miss_cost * t.target
        if excess > 0.0:
            candidates.append(math.sqrt(2.0 * excess / hazard))
        bounded = [min(max(c, t.dense), t.max_gap) for c in candidates]
        return min(bounded, key=cost)

    def learned_gap(self, elapsed: float) -> float:
        """The next gap without jitter: the first (geometric) gap that reaches the interval wanted
        at the time it ends, so a long sleep never jumps over the time finishing becomes likely."""
        t = self.tuning
        previous, gap = 0.0, t.dense
        while True:
            wanted = self.interval(self.hazard(elapsed + gap))
            if gap >= wanted or gap >= t.max_gap:
                return min(gap, max(previous, wanted))
            previous, gap = gap, min(gap * 1.25, t.max_gap)
