"""The one retry loop (`core.request.request`), driven with scripted answers on a fake clock."""

from __future__ import annotations

import httpx
import pytest
from comet_replicate import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    ContractViolation,
    InternalServerError,
    NotFoundError,
    RateLimitError,
)
from comet_replicate._constants import DEFAULT_MAX_RESPONSE_BYTES, MAX_RETRY_AFTER
from comet_replicate.core.effects import OverCap
from comet_replicate.core.request import bounded, request
from comet_replicate.core.retry import Deadline, OpKind

from ._script import BASE, KEY, Script, reply


def _get(script: Script, **options: object) -> object:
    names = ("max_retries", "validate_responses", "max_response_bytes")
    st = script.state(**{k: v for k, v in options.items() if k in names})
    flow = request(
        st,
        OpKind.GET,
        "GET",
        "/predictions/p1",
        timeout=st.config.timeout,
        max_retries=st.config.max_retries,
        deadline=options.get("deadline"),  # type: ignore[arg-type]
    )
    return script.run(flow)


def test_a_2xx_answer_is_returned_after_one_request() -> None:
    script = Script.of(reply(200, {"id": "p1"}))
    got = _get(script)
    assert got is not None and got.status == 200  # type: ignore[attr-defined]
    assert script.paths() == ["GET /predictions/p1"] and script.sleeps == []
    assert script.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert script.requests[0].url == BASE + "/predictions/p1"


def test_a_5xx_is_retried_with_backoff_then_succeeds() -> None:
    script = Script.of(reply(503, raw=b"busy"), reply(502, raw=b"bad"), reply(200, {"id": "p1"}))
    _get(script)
    assert len(script.requests) == 3
    assert len(script.sleeps) == 2 and 0.375 <= script.sleeps[0] <= 0.5 and 0.75 <= script.sleeps[1] <= 1.0


def test_retries_end_with_the_typed_error_of_the_last_answer() -> None:
    script = Script.of(*(reply(503, raw=b"busy") for _ in range(3)))
    with pytest.raises(InternalServerError):
        _get(script)
    assert len(script.requests) == 3  # the first try and max_retries=2 retries


def test_retry_after_is_honoured_and_attached_when_retries_run_out() -> None:
    limited = reply(
        429, {"detail": "slow down"}, headers={"retry-after": "7", "content-type": "application/json"}
    )
    script = Script.of(limited, limited)
    with pytest.raises(RateLimitError) as info:
        # A 429 is tried again while the deadline allows (issue 16), whatever max_retries says:
        # after one wait of 7 s, 3 s are left, too little for the next.
        _get(script, max_retries=1, deadline=Deadline(script.clock.now, 10.0))
    assert script.sleeps == [7.0]
    assert info.value.retry_after == 7.0


def test_a_retry_after_beyond_the_maximum_gives_up_at_once() -> None:
    long_wait = str(int(MAX_RETRY_AFTER) + 1)
    script = Script.of(reply(429, {"detail": "x"}, headers={"retry-after": long_wait}))
    with pytest.raises(RateLimitError):
        _get(script)
    assert script.sleeps == []


def test_a_retry_that_would_overrun_the_deadline_is_not_taken() -> None:
    script = Script.of(reply(429, {"detail": "x"}, headers={"retry-after": "5"}))
    with pytest.raises(RateLimitError):
        _get(script, deadline=Deadline(script.clock.now, 3.0))
    assert script.sleeps == []


def test_each_attempt_is_bounded_by_what_is_left_of_the_deadline() -> None:
    script = Script.of(reply(200, {}))
    script.clock.now = 1000.0
    _get(script, deadline=Deadline(999.0, 3.0))  # 2 s left
    timeout = script.requests[0].timeout
    assert timeout.read == 2.0 and timeout.connect == 2.0 and timeout.write == 2.0


def test_bounded_leaves_a_timeout_alone_without_a_deadline_and_never_goes_below_a_floor() -> None:
    timeout = httpx.Timeout(10.0)
    assert bounded(timeout, None) is timeout
    assert bounded(timeout, 0.0).read == 0.05
    assert bounded(httpx.Timeout(10.0, pool=None), 3.0).pool == 3.0


def test_a_cometapi_invalid_request_500_is_not_retried() -> None:
    body = {"error": {"message": "bad", "type": "comet_api_error", "code": "invalid_request"}}
    script = Script.of(reply(500, body))
    with pytest.raises(InternalServerError):
        _get(script)
    assert len(script.requests) == 1


def test_a_4xx_is_never_retried() -> None:
    script = Script.of(reply(404, {"detail": "Not found."}))
    with pytest.raises(NotFoundError):
        _get(script)
    assert len(script.requests) == 1


@pytest.mark.parametrize(
    ("error", "typed"),
    [
        (httpx.ConnectError("refused"), APIConnectionError),
        (httpx.ReadTimeout("slow"), APITimeoutError),
        (httpx.RemoteProtocolError("dropped"), APIConnectionError),
        (httpx.PoolTimeout("full"), APITimeoutError),
    ],
)
def test_transport_failures_of_a_get_are_retried_then_typed(error: httpx.TransportError, typed: type) -> None:
    script = Script.of(error, error, error)
    with pytest.raises(typed) as info:
        _get(script)
    assert len(script.requests) == 3
    assert info.value.__cause__ is error


def _create(script: Script) -> object:
    st = script.state()
    flow = request(
        st,
        OpKind.CREATE,
        "POST",
        "/models/o/n/predictions",
        json={},
        timeout=st.config.timeout,
        max_retries=2,
    )
    return script.run(flow)


@pytest.mark.parametrize(
    "error", [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("x")]
)
def test_a_create_that_never_reached_the_server_is_retried(error: httpx.TransportError) -> None:
    script = Script.of(error, reply(201, {"id": "p1"}))
    _create(script)
    assert len(script.requests) == 2


@pytest.mark.parametrize(
    "answer",
    [
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("dropped"),
        httpx.WriteTimeout("w"),
        reply(503, raw=b"busy"),
    ],
)
def test_a_create_that_may_have_reached_the_server_is_never_repeated(answer: object) -> None:
    script = Script.of(answer)  # type: ignore[arg-type]
    with pytest.raises((APIConnectionError, InternalServerError)):
        _create(script)
    assert len(script.requests) == 1


def test_a_create_answered_429_is_retried() -> None:
    script = Script.of(reply(429, {"detail": "x"}, headers={"retry-after": "1"}), reply(201, {"id": "p1"}))
    _create(script)
    assert script.sleeps == [1.0]


def test_a_key_callable_is_asked_again_on_every_attempt() -> None:
    keys = iter(["a", "b"])
    script = Script.of(reply(503, raw=b""), reply(200, {}))
    st = script.state(auth=lambda: httpx.Headers({"Authorization": f"Bearer {next(keys)}"}))
    script.run(request(st, OpKind.GET, "GET", "/predictions/p1", timeout=st.config.timeout, max_retries=2))
    assert [r.headers["authorization"] for r in script.requests] == ["Bearer a", "Bearer b"]


def test_validated_error_bodies_that_break_the_spec_are_contract_violations() -> None:
    script = Script.of(reply(400, {"error": 42}))
    with pytest.raises(ContractViolation, match="ErrorBody"):
        _get(script, validate_responses=True)


def test_validated_error_bodies_that_conform_keep_their_typed_error() -> None:
    script = Script.of(reply(400, {"detail": "bad input"}))
    with pytest.raises(BadRequestError):
        _get(script, validate_responses=True)


def test_total_and_priority_travel_on_the_effect() -> None:
    script = Script.of(reply(200, {}))
    st = script.state()
    flow = request(
        st,
        OpKind.CANCEL,
        "POST",
        "/predictions/p1/cancel",
        timeout=st.config.timeout,
        max_retries=0,
        total=5.0,
        priority=True,
    )
    script.run(flow)
    assert script.requests[0].total == 5.0 and script.requests[0].priority is True


def test_each_attempt_is_bounded_as_a_whole_by_the_deadline() -> None:
    script = Script.of(reply(200, {}))
    script.clock.now = 1000.0
    _get(script, deadline=Deadline(999.0, 3.0))
    assert script.requests[0].total == 2.0


def test_without_a_deadline_an_attempt_has_no_total_bound_but_its_body_has_a_cap() -> None:
    script = Script.of(reply(200, {}))
    _get(script)
    assert script.requests[0].total is None
    assert script.requests[0].max_bytes == DEFAULT_MAX_RESPONSE_BYTES


def test_a_body_over_the_cap_is_a_typed_error_naming_the_cap_and_not_retried() -> None:
    script = Script.of(OverCap(8))
    with pytest.raises(APIConnectionError, match=r"8-byte cap \(max_response_bytes\)"):
        _get(script, max_response_bytes=8)
    assert len(script.requests) == 1
