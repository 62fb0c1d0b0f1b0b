"""Fuzzing: malformed answers fed through respx into get, wait and run (sync and async).

Whatever the server sends — wrong types, missing fields, unknown statuses, non-JSON, HTML, truncated
or huge bodies, odd content types and Retry-After values, at any status — only our typed errors come
out (subclasses of CometReplicateError), never a ValueError/KeyError/TypeError/JSONDecodeError from
generated code, and nothing hangs: the clock is fake, so a wait ends by its deadline, and a watchdog
fails the test if a call does not return.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import respx
from comet_replicate import AsyncClient, Client, CometReplicateError, FileOutput
from hypothesis import given
from hypothesis import strategies as st

from tests.reliability._support import FakeTime, on_fake_time, prediction_body

BASE = "https://api.fuzz.test/replicate/v1"
KEY = "sk-fuzz-0123456789"
MODEL = "black-forest-labs/flux-schnell"
CREATE = "/models/black-forest-labs/flux-schnell/predictions"
WATCHDOG_S = 30.0

STATUSES = ["starting", "processing", "succeeded", "failed", "canceled", "aborted"]
ODD_STATUSES = ["queued", "", "SUCCEEDED", "running", "succeeded ", "null"]
FIELDS = [
    "id",
    "model",
    "version",
    "input",
    "logs",
    "output",
    "error",
    "status",
    "created_at",
    "started_at",
    "completed_at",
    "metrics",
    "urls",
    "data_removed",
]
HTTP_STATUSES = [200, 201, 202, 204, 302, 304, 400, 401, 403, 404, 405, 409, 410, 418, 422, 429]
HTTP_STATUSES += [500, 502, 503, 504, 520, 599]
CONTENT_TYPES = [
    "application/json",
    "application/problem+json",
    "application/json; charset=latin-1",
    "text/html; charset=utf-8",
    "text/plain",
    "application/octet-stream",
    None,
]
RETRY_AFTER = [
    None,
    "0",
    "1",
    "2.5",
    "-1",
    "abc",
    "1e308",
    "inf",
    "nan",
    "Wed, 21 Oct 2015 07:28:00 GMT",
    "99999",
]
HTML = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(STATUSES + ODD_STATUSES),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _huge_bodies() -> list[bytes]:
    """Bodies of a few megabytes: padding JSON, a prediction with enormous logs/status/output, and text."""
    big_logs = prediction_body("processing")
    big_logs["logs"] = "x" * 3_000_000
    big_status = prediction_body()
    big_status["status"] = "s" * 1_000_000
    many_outputs = prediction_body(output=[f"https://delivery.test/p1/{i}.webp" for i in range(50_000)])
    return [
        json.dumps(["pad"] * 300_000).encode(),
        json.dumps(big_logs).encode(),
        json.dumps(big_status).encode(),
        json.dumps(many_outputs).encode(),
        b"A" * 4_000_000,
    ]


HUGE = _huge_bodies()
SPECIAL = [
    b"",
    b"null",
    b"[]",
    b"{}",
    b'"succeeded"',
    b"[" * 100_000,  # nesting deeper than the JSON parser's recursion limit
    b'{"id": "p1", "status": ' + b"1" * 5000 + b"}",  # an integer longer than int() accepts
    b"\xff\xfe\x00{not utf-8",
    b'{"id": NaN, "status": Infinity}',
    b'{"id": "p1", "id": 7}',
]


@st.composite
def broken_prediction(draw: st.DrawFn) -> dict[str, Any]:
    """A valid prediction with one to three fields dropped or replaced by any JSON value."""
    body = prediction_body(draw(st.sampled_from(STATUSES + ODD_STATUSES)))
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(FIELDS))
        if draw(st.booleans()):
            body.pop(name, None)
        else:
            body[name] = draw(json_values)
    return body


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(
        st.sampled_from(
            ["valid", "broken", "any_json", "truncated", "html", "text", "binary", "huge", "special"]
        )
    )
    if kind == "valid":
        return json.dumps(prediction_body(draw(st.sampled_from(STATUSES)))).encode()
    if kind == "broken":
        return json.dumps(draw(broken_prediction())).encode()
    if kind == "any_json":
        return json.dumps(draw(json_values)).encode()
    if kind == "truncated":
        whole = json.dumps(draw(st.one_of(broken_prediction(), st.just(prediction_body())))).encode()
        return whole[: draw(st.integers(0, len(whole) - 1))]
    if kind == "html":
        return HTML
    if kind == "text":
        return draw(st.text(max_size=200)).encode("utf-8", errors="surrogatepass")
    if kind == "binary":
        return draw(st.binary(max_size=200))
    if kind == "huge":
        return draw(st.sampled_from(HUGE))
    return draw(st.sampled_from(SPECIAL))


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str | None
    retry_after: str | None

    def response(self) -> httpx.Response:
        headers = {}
        if self.content_type is not None:
            headers["content-type"] = self.content_type
        if self.retry_after is not None:
            headers["retry-after"] = self.retry_after
        return httpx.Response(self.status, content=self.body, headers=headers)


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    # Mostly 2xx, where the body reaches the generated parser; the rest cover every error path.
    status = draw(st.one_of(st.sampled_from([200, 201, 202]), st.sampled_from(HTTP_STATUSES)))
    return Answer(
        status, draw(bodies()), draw(st.sampled_from(CONTENT_TYPES)), draw(st.sampled_from(RETRY_AFTER))
    )


# A script: the answers to successive requests (the last one repeats for ever).
scripts = st.lists(answers(), min_size=1, max_size=4)


def _replay(script: list[Answer]) -> Callable[[httpx.Request], httpx.Response]:
    calls = iter(range(10**9))

    def answer(request: httpx.Request) -> httpx.Response:
        index = next(calls)
        return script[min(index, len(script) - 1)].response()

    return answer


@dataclass
class Seen:
    created_id: object = None


def _check_outcome(op: str, outcome: object, seen: Seen) -> None:
    """A call either returned what it promises or raised one of our typed errors, told in one line."""
    if isinstance(outcome, BaseException):
        if not isinstance(outcome, CometReplicateError):
            raise AssertionError(f"{op} let {type(outcome).__name__} escape: {outcome!r}") from outcome
        text = str(outcome)
        assert "\n" not in text, f"{type(outcome).__name__} message is not one line: {text[:300]!r}"
        assert len(text) <= 1000, f"{type(outcome).__name__} message is {len(text)} characters long"
        repr(outcome)
        if op in ("get", "wait", "cancel", "resume"):
            assert outcome.prediction_id == "p1", f"{type(outcome).__name__} lost the id: {outcome!r}"
        elif seen.created_id is not None:
            assert outcome.prediction_id == seen.created_id, f"{type(outcome).__name__} lost the id"
        return
    if op in ("get", "cancel", "create"):
        from comet_replicate_api.models import Prediction

        assert isinstance(outcome, Prediction)
    elif op == "wait":
        assert str(outcome.status) == "succeeded"  # type: ignore[attr-defined]
    else:
        assert isinstance(outcome, list) and outcome
        assert all(isinstance(f, FileOutput) and isinstance(f.url, str) for f in outcome)


def _router(script: list[Answer]) -> respx.MockRouter:
    router = respx.mock(base_url=BASE, assert_all_called=False, assert_all_mocked=True)
    replay = _replay(script)
    router.route().mock(side_effect=replay)
    return router


def _sync_call(op: str, validate: bool, script: list[Answer]) -> None:
    ft = FakeTime()
    seen = Seen()
    result: list[object] = []

    def call() -> None:
        with _router(script), Client(api_key=KEY, base_url=BASE, validate_responses=validate) as client:
            on_fake_time(client, ft)
            try:
                if op == "get":
                    result.append(client.predictions.get("p1"))
                elif op == "wait":
                    result.append(client.predictions.wait("p1", timeout=30))
                elif op == "cancel":
                    result.append(client.predictions.cancel("p1"))
                elif op == "create":
                    result.append(client.predictions.create(MODEL, {"prompt": "boat"}, wait=5))
                elif op == "resume":
                    result.append(client.resume("p1", timeout=30))
                else:

                    def on_created(p: Any) -> None:
                        seen.created_id = p.id

                    result.append(client.run(MODEL, {"prompt": "boat"}, timeout=30, on_created=on_created))
            except BaseException as exc:
                result.append(exc)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(WATCHDOG_S)
    assert not worker.is_alive(), f"sync {op} did not return within {WATCHDOG_S} s (hang)"
    _check_outcome(op, result[0], seen)


async def _async_call(op: str, validate: bool, script: list[Answer]) -> None:
    ft = FakeTime()
    seen = Seen()

    async def call() -> object:
        async with AsyncClient(api_key=KEY, base_url=BASE, validate_responses=validate) as client:
            on_fake_time(client, ft)
            if op == "get":
                return await client.predictions.get("p1")
            if op == "wait":
                return await client.predictions.wait("p1", timeout=30)

            def on_created(p: Any) -> None:
                seen.created_id = p.id

            return await client.run(MODEL, {"prompt": "boat"}, timeout=30, on_created=on_created)

    with _router(script):
        try:
            outcome: object = await asyncio.wait_for(call(), WATCHDOG_S)
        except TimeoutError:
            pytest.fail(f"async {op} did not return within {WATCHDOG_S} s (hang)")
        except BaseException as exc:
            outcome = exc
    _check_outcome(op, outcome, seen)


@pytest.mark.parametrize("op", ["get", "wait", "run", "create", "cancel", "resume"])
@given(script=scripts, validate=st.booleans())
def test_sync_calls_raise_only_typed_errors_on_malformed_answers(
    op: str, script: list[Answer], validate: bool
) -> None:
    _sync_call(op, validate, script)


@pytest.mark.parametrize("op", ["get", "wait", "run"])
@given(script=scripts, validate=st.booleans())
def test_async_calls_raise_only_typed_errors_on_malformed_answers(
    op: str, script: list[Answer], validate: bool
) -> None:
    asyncio.run(_async_call(op, validate, script))


@pytest.mark.parametrize("body", SPECIAL + HUGE, ids=lambda b: f"{b[:12]!r}…{len(b)}B")
@pytest.mark.parametrize("status", [200, 201, 404, 500, 502])
def test_every_special_and_huge_body_ends_in_a_typed_error_or_a_result(body: bytes, status: int) -> None:
    """The fixed catalogue of nasty bodies, at every status class, through get (hypothesis may skip some)."""
    for content_type in ("application/json", "text/html"):
        script = [Answer(status, body, content_type, None)]
        for op in ("get", "run"):
            _sync_call(op, False, script)
