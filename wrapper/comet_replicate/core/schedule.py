"""When to poll next: per-model duration learning and the poll schedule built on it.

Pure: callers pass the elapsed time and a random source in; nothing here reads a clock.
"""

from __future__ import annotations

import math
import random
import threading
from collections import deque

from . import Record

__all__ = ["DEFAULT_POLL_TUNING", "DurationEstimator", "DurationFit", "PollSchedule", "PollTuning"]


class PollTuning(Record):
    """Knobs of the poll schedule (why each default is what it is: see `PollSchedule`).

    Immutable; `tuning._replace(share=0.1)` is a copy with one knob changed. (A NamedTuple rather than
    a frozen dataclass: a frozen dataclass compiles its methods when the client is imported.)"""

    first: float = 0.1  # first poll after creation when nothing is known
    growth: float = 1.5  # interval growth per poll (no history)
    cap: float = 1.0  # longest interval without history
    jitter: float = 0.1  # ± fraction
    min_samples: int = 3  # finished predictions of a model before its history is used
    start_z: float = -1.645  # with history, the first poll: this quantile (z; -1.645: 5th percentile)
    share: float = 0.05  # with history, the gap: this share of the duration to expect …
    dense: float = 0.08  # … never shorter than this …
    max_gap: float = 0.45  # … nor longer than this: the bound of the detection delay
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


class DurationFit(Record):
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


DEFAULT_POLL_TUNING = PollTuning()
"""The default knobs (frozen: one instance serves every schedule and configuration)."""


class PollSchedule:
    """When to poll next, for one prediction. Times are seconds since the prediction was created.

    With a fitted duration distribution (a model with `min_samples` finished predictions):
    - no poll before the `start_z` quantile (the 5th percentile): GETs are not spent where a finish
      is unlikely. The one prediction in twenty that finishes earlier is seen at that first poll.
    - then every `share` (5 %) of the duration to expect — the model's typical duration, or the time
      already waited if longer: the delay stays a small, constant part of the wait (a user waiting
      30 s does not notice 300 ms; one waiting 0.5 s does) and a prediction running far past its
      history is polled less often, not more.
    - never more often than every `dense` (80 ms): a delay under ~0.1 s reads as instant, so denser
      polling buys nothing anyone notices (the 20 ms left cover the round trip).
    - never less often than every `max_gap` (0.45 s, a hard bound: jitter only shortens it). A
      fixed 0.5 s poller (replicate's default) detects within a uniform 0–0.5 s, so its p90 is
      0.45 s: with that bound even our worst case is no later than that poller's 90th percentile,
      for every model. The GETs not spent before the start quantile pay for it: over models of
      0.5–30 s the schedule costs fewer GETs than that poller.

    Without history nothing says when a finish is likely, so the whole wait is polled: first after
    `first`, then ×`growth` up to `cap` (1 s), with jitter. Short predictions are seen within a few
    hundred ms; a long one is never reported more than ~1 s late and costs about one GET a second,
    half a 0.5 s poller's rate. A model's first `min_samples` predictions pay that.
    """

    __slots__ = ("_interval", "fit", "tuning")

    def __init__(self, tuning: PollTuning = DEFAULT_POLL_TUNING, fit: DurationFit | None = None) -> None:
        self.tuning = tuning
        self.fit = fit
        self._interval = 0.0  # the last interval without history (0: none yet)

    def next_delay(
        self, elapsed: float, rng: random.Random, *, hint: float | None = None, remaining: float | None = None
    ) -> float:
        """Seconds to sleep before the next poll, given the time since creation.

        `hint` is a server Retry-After (honoured as a floor); `remaining` the deadline's time left
        (the delay never exceeds it).
        """
        t = self.tuning
        if self.fit is None:
            self._interval = t.first if self._interval <= 0 else min(self._interval * t.growth, t.cap)
            delay = self._jitter(self._interval, rng)
        else:
            # One gap from now (jittered, but never past the bound), and not before the start.
            gap = min(self._jitter(self.learned_gap(elapsed), rng), t.max_gap)
            delay = max(gap, self.fit.quantile(t.start_z) - elapsed)
        if hint is not None:
            delay = max(delay, hint)
        if remaining is not None:
            delay = min(delay, remaining)
        return max(0.0, delay)

    def _jitter(self, value: float, rng: random.Random) -> float:
        return value * (1.0 + self.tuning.jitter * (2.0 * rng.random() - 1.0))

    def learned_gap(self, elapsed: float) -> float:
        """The gap (before jitter) once polling has started: `share` of the duration to expect
        (the typical duration, or the time already waited if longer), within [`dense`, `max_gap`]."""
        assert self.fit is not None
        t = self.tuning
        expected = max(self.fit.typical, elapsed)
        return min(max(t.share * expected, t.dense), t.max_gap)
