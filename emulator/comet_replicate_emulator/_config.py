"""Configuration: how fast predictions run, which token is accepted, and which faults to inject."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._clock import Clock

OPERATIONS = ("create", "get", "cancel")

# Fault kinds that end a request with an error response, in the order the dice are read (new kinds go
# at the end, so a seed injects the same faults as before when they are off).
ERROR_KINDS = (
    "rate_limit",
    "error_500",
    "error_502",
    "error_503",
    "html_502",
    "drop",
    "truncate",
    "error_402",
    "error_524",
    "error_text",
    "message_text",
)

# Statuses a bare `{"error": "text"}` / `{"message": "text"}` body may come with.
TEXT_ERROR_STATUSES = (400, 500, 502, 503)

# Where the list route may answer 404 (CometAPI documents no list route).
APIS = ("cometapi", "replicate")


@dataclass(frozen=True)
class ModelTiming:
    """Typical seconds a model waits in the queue and runs; `spread` is the lognormal sigma."""

    queue_s: float
    run_s: float
    spread: float = 0.35


# Rough figures of how long each model takes on Replicate: schnell in about a second, the pro,
# ultra and kontext models several seconds, flux-2 longer. Benchmarks may override them.
DEFAULT_TIMINGS: Mapping[str, ModelTiming] = {
    "black-forest-labs/flux-schnell": ModelTiming(0.3, 1.2),
    "black-forest-labs/flux-dev": ModelTiming(0.5, 3.5),
    "black-forest-labs/flux-pro": ModelTiming(0.6, 5.5),
    "black-forest-labs/flux-1.1-pro": ModelTiming(0.5, 4.0),
    "black-forest-labs/flux-1.1-pro-ultra": ModelTiming(0.6, 9.0),
    "black-forest-labs/flux-kontext-pro": ModelTiming(0.5, 5.0),
    "black-forest-labs/flux-kontext-max": ModelTiming(0.6, 8.0),
    "black-forest-labs/flux-kontext-dev": ModelTiming(0.5, 4.0),
    "black-forest-labs/flux-2-pro": ModelTiming(0.8, 12.0),
    "black-forest-labs/flux-2-max": ModelTiming(1.0, 25.0),
}
UNKNOWN_MODEL_TIMING = ModelTiming(0.5, 3.0)

# The signing secret webhooks are signed with unless configured (Replicate: GET /webhooks/default/secret).
DEFAULT_WEBHOOK_SECRET = "whsec_Y29tZXQtcmVwbGljYXRlLWVtdWxhdG9yLXNpZ25pbmch"

DurationFn = Callable[[str, Mapping[str, Any]], tuple[float, float]]


@dataclass(frozen=True)
class Faults:
    """What goes wrong, and how often (rates are probabilities per request, drawn from a seeded RNG).

    A fault on a create is either decided *before* the prediction exists (the request "never
    arrived": 429 and 402 always, and 5xx/524/HTML/text/drop with probability 1 - `after_create`) or
    *after* it was created (the paid-but-lost case: those with probability `after_create`, and a
    truncated body always). Stats record which.

    error_402: Replicate's "Insufficient credit" problem details (never retried by a careful client).
    error_524: a Cloudflare "origin timed out" HTML page with status 524.
    error_text / message_text: a bare `{"error": "text"}` / `{"message": "text"}` body, as CometAPI's
        image endpoints answer, with status `text_error_status`.
    rpm_limit: the original per-operation limit (each operation in `operations` its own window),
        counted as a fault; `EmulatorConfig.create_rpm` / `rpm` are the account-wide limits.
    """

    error_500: float = 0.0
    error_502: float = 0.0
    error_503: float = 0.0
    html_502: float = 0.0
    rate_limit: float = 0.0
    rpm_limit: int | None = None
    retry_after: float = 1.0
    drop: float = 0.0
    truncate: float = 0.0
    latency: tuple[float, float] = (0.0, 0.0)
    failed: float = 0.0
    failed_message: str = "NSFW content detected. Try running it again, or try a different prompt."
    operations: frozenset[str] = frozenset(OPERATIONS)
    after_create: float = 0.5
    error_402: float = 0.0
    error_524: float = 0.0
    error_text: float = 0.0
    message_text: float = 0.0
    text_error_status: int = 500

    def __post_init__(self) -> None:
        self._check_rates()
        low, high = self.latency
        if low < 0 or high < low:
            raise ValueError("latency must be (low, high) with 0 <= low <= high")
        unknown = set(self.operations) - set(OPERATIONS)
        if unknown:
            raise ValueError(f"unknown operations {sorted(unknown)}; choose from {OPERATIONS}")
        _check_limit("rpm_limit", self.rpm_limit)
        if self.retry_after < 0:
            raise ValueError("retry_after must not be negative")
        if self.text_error_status not in TEXT_ERROR_STATUSES:
            raise ValueError(
                f"text_error_status must be one of {TEXT_ERROR_STATUSES}, got {self.text_error_status}"
            )

    def _check_rates(self) -> None:
        rates = {k: getattr(self, k) for k in (*ERROR_KINDS, "failed", "after_create")}
        for name, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {rate}")
        if sum(getattr(self, k) for k in ERROR_KINDS) > 1.0:
            raise ValueError("the error rates add up to more than 1")

    @property
    def any(self) -> bool:
        return (
            any(getattr(self, k) for k in ERROR_KINDS)
            or self.rpm_limit is not None
            or self.latency != (0.0, 0.0)
            or self.failed > 0
        )


def _check_limit(name: str, limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise ValueError(f"{name} must be at least 1 (or None for no limit)")


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything that shapes the emulator's behaviour.

    token: the only accepted Bearer token; None accepts any non-empty one.
    speed: how much faster than the wall the emulator clock runs (ignored when `clock` is given).
    seed: makes ids, random seeds, durations and faults reproducible; None draws them at random.
    durations: "fixed" uses each model's typical timing; "lognormal" varies it around that mean.
    duration_fn: `(model, input) -> (queue_s, run_s)`, overriding both, for benchmarks.
    retention_s: emulator seconds after completion before output, input and logs are removed; None
        means one hour of wall time (3600 x speed), as Replicate keeps data for an hour, so a fast
        clock does not delete outputs before a slow test or benchmark downloads them.
    validate_responses: check every JSON body sent against the spec and raise on a mismatch.
    deliver_webhooks / webhook_secret: POST signed predictions to a create's `webhook` URL.
    create_rpm / rpm: account-wide limits as Replicate documents them (600 creates and 3,000 other
        requests a minute): a sliding one-minute window on the emulator clock per kind; above it a
        429 with `Retry-After`. None (the default) means no limit.
    create_without_output: leave `output` out of create answers, as older Replicate examples do.
    list_404: the APIs ("cometapi", "replicate") whose `GET .../predictions` list answers 404, as
        CometAPI may (it documents no list route).
    list_page_size: predictions per list page (Replicate: 100).
    """

    token: str | None = None
    speed: float = 1.0
    seed: int | None = 0
    durations: Literal["fixed", "lognormal"] = "fixed"
    timings: Mapping[str, ModelTiming] = field(default_factory=lambda: dict(DEFAULT_TIMINGS))
    duration_fn: DurationFn | None = None
    accept_unknown_models: bool = False
    retention_s: float | None = None
    min_cancel_after_s: float = 5.0
    faults: Faults = field(default_factory=Faults)
    validate_responses: bool = False
    public_base_url: str | None = None
    deliver_webhooks: bool = True
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    clock: Clock | None = None
    image_cache_bytes: int = 64 * 1024 * 1024
    create_rpm: int | None = None
    rpm: int | None = None
    create_without_output: bool = False
    list_404: frozenset[str] = frozenset()
    list_page_size: int = 100

    def __post_init__(self) -> None:
        _check_limit("create_rpm", self.create_rpm)
        _check_limit("rpm", self.rpm)
        unknown = set(self.list_404) - set(APIS)
        if unknown:
            raise ValueError(f"list_404: unknown APIs {sorted(unknown)}; choose from {APIS}")
        if self.list_page_size < 1:
            raise ValueError("list_page_size must be at least 1")
        self._check_basics()

    def _check_basics(self) -> None:
        if not self.speed > 0:
            raise ValueError("speed must be positive")
        if self.durations not in ("fixed", "lognormal"):
            raise ValueError("durations must be 'fixed' or 'lognormal'")
        if self.retention_s is not None and self.retention_s < 0:
            raise ValueError("retention_s must not be negative")
        if not self.webhook_secret.startswith("whsec_"):
            raise ValueError("webhook_secret must start with 'whsec_'")
        if self.token is not None and not self.token:
            raise ValueError("token must be non-empty (or None to accept any token)")

    def replace(self, **changes: Any) -> EmulatorConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def retention(self) -> float:
        """Retention in emulator seconds."""
        if self.retention_s is not None:
            return self.retention_s
        return 3600.0 * (1.0 if self.clock is not None else self.speed)

    def timing(self, model: str) -> ModelTiming:
        return self.timings.get(model, UNKNOWN_MODEL_TIMING)
