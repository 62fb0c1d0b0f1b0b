"""Retry decisions at their documented numbers and boundaries.

Every expected value here is a literal from the documentation (docstrings, README), never the
constant under test imported back: a test that reads `MAX_RETRY_AFTER` to check `MAX_RETRY_AFTER`
cannot notice the constant changing. Jitter is pinned with a random source that returns a chosen
value, so each delay is exact.
"""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from comet_replicate import (
    APIConnectionError,
    APITimeoutError,
    PredictionAborted,
    PredictionCanceled,
    PredictionFailed,
    UnexpectedStatus,
)
from comet_replicate.core.retry import (
    Deadline,
    Failure,
    OpKind,
    backoff_delay,
    cancel_after_header,
    parse_retry_after,
    retry_delay,
    total_seconds,
    transport_failure,
)
from comet_replicate.core.status import classify_status, outcome


class Fixed(random.Random):
    """A random source whose `random()` always returns `value` (0 ≤ value < 1)."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def _delay(
    kind: OpKind, failure: Failure, *, retry_index: int = 0, rng: float = 0.0, **kw: object
) -> float | None:
    return retry_delay(kind, failure, retry_index=retry_index, max_retries=5, rng=Fixed(rng), **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- backoff


@pytest.mark.parametrize(
    ("retry_index", "nominal"),
    [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (9, 8.0)],
)
def test_backoff_doubles_from_half_a_second_and_caps_at_eight(retry_index: int, nominal: float) -> None:
    # "0.5 s, 1 s, 2 s … capped at 8 s": with no jitter drawn the delay is the nominal value itself
    assert backoff_delay(retry_index, Fixed(0.0)) == nominal


@pytest.mark.parametrize(("drawn", "factor"), [(0.0, 1.0), (0.5, 0.875), (0.999999, 0.75000025)])
def test_backoff_jitter_only_shortens_by_up_to_a_quarter(drawn: float, factor: float) -> None:
    # "each × U(0.75, 1)": the factor falls linearly from 1 to 0.75 as the random draw goes 0 → 1
    assert backoff_delay(2, Fixed(drawn)) == pytest.approx(2.0 * factor)


def test_a_negative_retry_index_backs_off_like_the_first_retry() -> None:
    assert backoff_delay(-3, Fixed(0.0)) == 0.5


@pytest.mark.parametrize("kind", [OpKind.GET, OpKind.CANCEL])
@pytest.mark.parametrize(
    ("failure", "status"),
    [
        (Failure.NOT_SENT, None),
        (Failure.TIMEOUT, None),
        (Failure.NETWORK, None),
        (Failure.STATUS, 429),
        (Failure.STATUS, 500),
        (Failure.STATUS, 502),
        (Failure.STATUS, 503),
        (Failure.STATUS, 504),
    ],
)
def test_get_and_cancel_wait_the_backoff_of_their_retry(
    kind: OpKind, failure: Failure, status: int | None
) -> None:
    assert _delay(kind, failure, status=status, retry_index=0) == 0.5
    assert _delay(kind, failure, status=status, retry_index=1) == 1.0
    assert _delay(kind, failure, status=status, retry_index=3, rng=0.5) == pytest.approx(4.0 * 0.875)


def test_create_that_never_left_or_got_a_429_waits_the_backoff() -> None:
    assert _delay(OpKind.CREATE, Failure.NOT_SENT, retry_index=1) == 1.0
    assert _delay(OpKind.CREATE, Failure.STATUS, status=429, retry_index=2) == 2.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_create_is_not_retried_after_a_5xx_even_with_a_retry_after(status: int) -> None:
    assert _delay(OpKind.CREATE, Failure.STATUS, status=status, retry_after=1.0) is None


def test_only_cometapis_invalid_request_500_is_final() -> None:
    assert _delay(OpKind.GET, Failure.STATUS, status=500, error_code="invalid_request") is None
    assert _delay(OpKind.GET, Failure.STATUS, status=500, error_code="server_error") == 0.5
    assert _delay(OpKind.GET, Failure.STATUS, status=502, error_code="invalid_request") == 0.5
    assert _delay(OpKind.GET, Failure.STATUS, status=503, error_code="invalid_request") == 0.5


def test_the_last_allowed_retry_is_taken_and_the_next_is_not() -> None:
    rng = Fixed(0.0)
    assert retry_delay(OpKind.GET, Failure.TIMEOUT, retry_index=2, max_retries=3, rng=rng) == 2.0
    assert retry_delay(OpKind.GET, Failure.TIMEOUT, retry_index=3, max_retries=3, rng=rng) is None


# --------------------------------------------------------------------------- Retry-After in the decision


@pytest.mark.parametrize("retry_after", [0.0, 0.25, 0.999, 1.0, 30.0, 59.5, 60.0])
def test_a_retry_after_up_to_sixty_seconds_is_waited_exactly(retry_after: float) -> None:
    assert _delay(OpKind.GET, Failure.STATUS, status=429, retry_after=retry_after) == retry_after
    assert _delay(OpKind.CREATE, Failure.STATUS, status=429, retry_after=retry_after) == retry_after


@pytest.mark.parametrize("retry_after", [60.001, 61.0, 90.0, 119.0, 120.0, 3600.0])
def test_a_retry_after_above_sixty_seconds_gives_up(retry_after: float) -> None:
    assert _delay(OpKind.GET, Failure.STATUS, status=503, retry_after=retry_after) is None


def test_a_negative_retry_after_means_now() -> None:
    assert _delay(OpKind.GET, Failure.STATUS, status=429, retry_after=-2.0) == 0.0


def test_a_retry_after_replaces_the_backoff_whatever_the_retry() -> None:
    assert _delay(OpKind.GET, Failure.STATUS, status=429, retry_after=0.1, retry_index=4) == 0.1


@pytest.mark.parametrize(
    ("retry_after", "remaining", "expected"),
    [
        (5.0, 5.0, None),  # waiting exactly to the deadline leaves no time for the request
        (5.0, 5.000001, 5.0),
        (5.0, 4.9, None),
        (0.0, 0.0, None),
        (0.0, 0.001, 0.0),
        (None, 0.5, None),  # the first backoff is 0.5 s: exactly the time left
        (None, 0.51, 0.5),
    ],
)
def test_a_delay_that_reaches_the_deadline_gives_up(
    retry_after: float | None, remaining: float, expected: float | None
) -> None:
    assert (
        _delay(OpKind.GET, Failure.STATUS, status=503, retry_after=retry_after, remaining=remaining)
        == expected
    )


# --------------------------------------------------------------------------- parse_retry_after


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after": "60"}, 60.0),
        ({"retry-after": " 7 "}, 7.0),
        ({"retry-after-ms": "0"}, 0.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "20"}, 0.02),
    ],
)
def test_retry_after_headers_in_seconds_and_milliseconds(headers: dict[str, str], expected: float) -> None:
    found = parse_retry_after(headers)
    assert found == pytest.approx(expected)
    assert type(found) is float


@pytest.mark.parametrize("ms", ["-5", "inf", "-inf", "nan", "soon", ""])
def test_an_unusable_retry_after_ms_falls_back_to_retry_after(ms: str) -> None:
    assert parse_retry_after({"retry-after-ms": ms, "retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": ms}) is None


@pytest.mark.parametrize("seconds", ["-1", "inf", "nan", "-0.5"])
def test_an_unusable_retry_after_falls_back_to_the_body(seconds: str) -> None:
    assert parse_retry_after({"retry-after": seconds}, body_retry_after=4.0) == 4.0
    assert parse_retry_after({"retry-after": seconds}) is None


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25


def test_an_http_date_retry_after() -> None:
    date = "Wed, 21 Oct 2015 07:28:10 GMT"  # 1445412490 on the epoch
    assert parse_retry_after({"retry-after": date}, now_epoch=1445412487.5) == 2.5
    assert parse_retry_after({"retry-after": date}, now_epoch=1445412500.0) == 0.0  # already past
    # without a wall clock a date cannot become a delay; the body is used instead
    assert parse_retry_after({"retry-after": date}, body_retry_after=3.0) == 3.0
    assert parse_retry_after({"retry-after": date}) is None


def test_a_date_without_a_time_zone_is_not_trusted() -> None:
    naive = "Wed, 21 Oct 2015 07:28:10 -0000"  # RFC 2822: "-0000" means the zone is unknown
    assert parse_retry_after({"retry-after": naive}, now_epoch=1445412480.0, body_retry_after=3.0) == 3.0
    assert parse_retry_after({"retry-after": naive}, now_epoch=1445412480.0) is None


@pytest.mark.parametrize(("body", "expected"), [(0, 0.0), (0.0, 0.0), (0.5, 0.5), (5, 5.0), (60.0, 60.0)])
def test_a_body_retry_after(body: float, expected: float) -> None:
    found = parse_retry_after({}, body_retry_after=body)
    assert found == expected
    assert type(found) is float


@pytest.mark.parametrize("body", [-1.0, -0.001, float("inf"), float("nan")])
def test_an_unusable_body_retry_after_falls_back_to_the_detail(body: float) -> None:
    assert parse_retry_after({}, body_retry_after=body, detail="resets in 2s") == 2.0
    assert parse_retry_after({}, body_retry_after=body) is None


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ("Request was throttled. Your rate limit resets in ~30s.", 30.0),
        ("rate limit resets in 2.5s", 2.5),
        ("Limit reset in 4 s", 4.0),
        ("RESETS IN ~ 3S", 3.0),
        ("Expected available in 1 second.", 1.0),
        ("expected available in 2.5 seconds", 2.5),
        ("Available In 7 Seconds", 7.0),
    ],
)
def test_a_wait_written_in_the_detail(detail: str, expected: float) -> None:
    assert parse_retry_after({}, detail=detail) == expected


@pytest.mark.parametrize("detail", ["", "slow down", "resets soon", "available in a minute"])
def test_a_detail_without_a_wait_is_no_hint(detail: str) -> None:
    assert parse_retry_after({}, detail=detail) is None


def test_each_source_wins_over_the_later_ones() -> None:
    detail = "resets in 9s"
    assert parse_retry_after({"retry-after": "1"}, body_retry_after=5.0, detail=detail) == 1.0
    assert parse_retry_after({}, body_retry_after=5.0, detail=detail) == 5.0
    assert parse_retry_after({}, body_retry_after=0.0, detail=detail) == 0.0


# ------------------------------------------------------------------ deadlines, Cancel-After, statuses


def test_deadline_remaining_counts_down_to_zero_and_expires_at_the_boundary() -> None:
    d = Deadline(start=100.0, timeout=10.0)
    assert d.remaining(100.0) == 10.0
    assert d.remaining(107.5) == 2.5
    assert d.remaining(110.0) == 0.0
    assert d.remaining(111.0) == 0.0
    assert not d.expired(100.0)
    assert not d.expired(109.999)
    assert d.expired(110.0)
    assert d.expired(200.0)


@pytest.mark.parametrize(
    ("seconds", "header"),
    [(0.0, "5s"), (4.2, "5s"), (5.0, "5s"), (5.01, "6s"), (12.2, "13s"), (300.0, "300s")],
)
def test_cancel_after_is_whole_seconds_rounded_up_and_at_least_five(seconds: float, header: str) -> None:
    assert cancel_after_header(seconds) == header


def test_an_enum_status_is_classified_by_its_value() -> None:
    import enum

    class Status(enum.Enum):
        DONE = "succeeded"
        ODD = "queued"

    assert classify_status(Status.DONE).value == "succeeded"
    assert classify_status(Status.ODD).value == "unknown"


# ------------------------------------------------------------------ transport failures, total deadlines


@pytest.mark.parametrize(
    ("exc", "failure", "timeout"),
    [
        (httpx.ConnectError("refused"), Failure.NOT_SENT, False),
        (httpx.ConnectTimeout("slow connect"), Failure.NOT_SENT, True),
        (httpx.PoolTimeout("pool full"), Failure.NOT_SENT, True),
        (httpx.ReadTimeout("slow read"), Failure.TIMEOUT, True),
        (httpx.WriteTimeout("slow write"), Failure.TIMEOUT, True),
        (httpx.ReadError("reset"), Failure.NETWORK, False),
        (httpx.RemoteProtocolError("dropped"), Failure.NETWORK, False),
    ],
)
def test_a_transport_error_is_classified_and_typed(
    exc: httpx.TransportError, failure: Failure, timeout: bool
) -> None:
    found, error = transport_failure(exc, "GET", "https://api.example/v1/predictions/p1")
    assert found is failure
    assert isinstance(error, APIConnectionError)
    assert isinstance(error, APITimeoutError) is timeout
    assert (error.method, error.url) == ("GET", "https://api.example/v1/predictions/p1")
    text = str(error)
    assert type(exc).__name__ in text and "GET https://api.example/v1/predictions/p1" in text
    assert f": {exc}" in text


def test_a_transport_error_without_a_message_names_only_its_type() -> None:
    _, error = transport_failure(httpx.ReadError(""), "POST", "https://api.example/v1/x")
    assert str(error).endswith("ReadError on POST https://api.example/v1/x")


@pytest.mark.parametrize(
    ("given", "seconds"), [(None, None), (1, 1.0), (0.5, 0.5), (300, 300.0), (1e-9, 1e-9)]
)
def test_a_total_deadline_is_positive_seconds_or_none(given: float | None, seconds: float | None) -> None:
    found = total_seconds(given)
    assert found == seconds
    assert found is None or type(found) is float


@pytest.mark.parametrize("given", [0, 0.0, -1, float("nan"), True, False, "10", [10]])
def test_anything_else_as_a_total_deadline_is_refused_naming_it(given: object) -> None:
    with pytest.raises(ValueError, match="timeout must be a positive number") as caught:
        total_seconds(given)  # type: ignore[arg-type]
    assert repr(given) in str(caught.value)


# ------------------------------------------------------------------ terminal outcomes


def _prediction(status: str) -> Any:
    from comet_replicate._generated import prediction_from_dict

    return prediction_from_dict(
        {
            "id": "p1",
            "model": "black-forest-labs/flux-schnell",
            "version": "hidden",
            "input": {"prompt": "boat"},
            "logs": "",
            "output": ["https://x.test/out.webp"] if status == "succeeded" else None,
            "error": "boom" if status == "failed" else None,
            "status": status,
            "created_at": "2026-03-12T11:27:18.258Z",
            "urls": {"get": "https://x.test/p1", "cancel": "https://x.test/p1/cancel"},
        }
    )


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("failed", PredictionFailed),
        ("canceled", PredictionCanceled),
        ("aborted", PredictionAborted),
        ("starting", UnexpectedStatus),
        ("processing", UnexpectedStatus),
        ("queued", UnexpectedStatus),
    ],
)
def test_every_status_but_succeeded_is_a_typed_error_carrying_the_prediction(
    status: str, error: type
) -> None:
    prediction = _prediction(status)
    with pytest.raises(error) as caught:
        outcome(prediction)
    assert caught.value.prediction is prediction
    assert type(caught.value) is error


def test_a_succeeded_prediction_is_returned_as_is() -> None:
    prediction = _prediction("succeeded")
    assert outcome(prediction) is prediction


def test_a_transport_errors_text_is_one_line_of_at_most_300_characters() -> None:
    url = "https://api.example/v1/predictions/p1"
    _, fits = transport_failure(httpx.ReadError("x" * 200), "GET", url)
    assert str(fits).endswith("x" * 200)
    long = "y" * 1000 + "\nsecond line"
    _, cut = transport_failure(httpx.ReadError(long), "GET", url)
    assert len(str(cut)) == 300 and str(cut).endswith("…") and "\n" not in str(cut)
