"""Create, get and cancel flows (`core.operations`), driven with scripted answers."""

from __future__ import annotations

import json

import httpx
import pytest
from comet_replicate import (
    BadRequestError,
    ContractViolation,
    CreateOutcomeUnknown,
    InputValidationError,
    NotFoundError,
)
from comet_replicate._constants import CANCEL_ON_EXIT_TIMEOUT, CANCEL_ON_EXIT_TOTAL, SYNC_MODE_MARGIN
from comet_replicate.core.create import create_raw
from comet_replicate.core.operations import best_effort_cancel, cancel_raw, get_raw, poll
from comet_replicate.core.parse import Unreadable
from comet_replicate.core.retry import Deadline

from ._script import MODEL, Script, prediction, reply

CREATE = f"POST /models/{MODEL}/predictions"


def test_create_sends_the_body_and_optional_headers_and_remembers_when() -> None:
    script = Script.of(reply(201, prediction()))
    st = script.state()
    created, answer = script.run(create_raw(st, MODEL, {"prompt": "boat"}, wait=10, cancel_after=90))
    assert created.id == "p1" and answer.status == 201
    (sent,) = script.requests
    assert script.paths() == [CREATE]
    assert sent.json == {"input": {"prompt": "boat"}}
    assert sent.headers["prefer"] == "wait=10" and sent.headers["cancel-after"] == "90s"
    assert sent.timeout.read == 60.0  # the client's read timeout already covers a 10 s hold
    assert st.shared.created_local == {"p1": script.clock.now}


def test_a_long_hold_extends_the_read_timeout_beyond_the_hold() -> None:
    script = Script.of(reply(201, prediction()))
    script.run(create_raw(script.state(), MODEL, {"prompt": "b"}, wait=60))
    assert script.requests[0].timeout.read == 60 + SYNC_MODE_MARGIN


def test_create_with_webhook_sends_the_generated_request_body() -> None:
    script = Script.of(reply(201, prediction()))
    st = script.state()
    script.run(
        create_raw(
            st, MODEL, {"prompt": "b"}, webhook="https://hook.test/x", webhook_events_filter=["completed"]
        )
    )
    assert script.requests[0].json == {
        "input": {"prompt": "b"},
        "webhook": "https://hook.test/x",
        "webhook_events_filter": ["completed"],
    }


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"wait": 61}, "wait"),
        ({"wait": True}, "wait"),
        ({"cancel_after": "soon"}, "cancel_after"),
        ({"cancel_after": -1}, "cancel_after"),
        ({"webhook_events_filter": ["never"]}, "webhook_events_filter"),
    ],
)
def test_bad_create_options_are_refused_before_anything_is_sent(
    options: dict[str, object], field: str
) -> None:
    script = Script.of()
    with pytest.raises(InputValidationError) as info:
        script.run(create_raw(script.state(), MODEL, {"prompt": "b"}, **options))  # type: ignore[arg-type]
    assert info.value.field == field
    assert script.requests == []


def test_a_short_cancel_after_is_rounded_up_to_the_minimum() -> None:
    script = Script.of(reply(201, prediction()))
    script.run(create_raw(script.state(), MODEL, {"prompt": "b"}, cancel_after=2.5))
    assert script.requests[0].headers["cancel-after"] == "5s"


def test_a_400_to_the_optional_headers_retries_once_without_them_and_the_family_remembers() -> None:
    refused = reply(400, {"error": {"message": "unknown header", "type": "comet_api_error"}})
    script = Script.of(refused, reply(201, prediction()), reply(201, prediction(id="p2")))
    st = script.state()
    script.run(create_raw(st, MODEL, {"prompt": "b"}, wait=5))
    assert "prefer" in script.requests[0].headers and "prefer" not in script.requests[1].headers
    assert st.shared.optional_headers_ok is False
    copy = st.with_options(timeout=3, max_retries=0)
    script.run(create_raw(copy, MODEL, {"prompt": "b"}, wait=5, cancel_after=30))
    assert "prefer" not in script.requests[2].headers and "cancel-after" not in script.requests[2].headers


def test_a_400_without_optional_headers_is_the_callers_error() -> None:
    script = Script.of(reply(400, {"detail": "bad prompt"}))
    with pytest.raises(BadRequestError):
        script.run(create_raw(script.state(), MODEL, {"prompt": "b"}))
    assert len(script.requests) == 1


def test_a_create_answer_cut_short_is_an_unknown_outcome_and_not_repeated() -> None:
    script = Script.of(reply(201, raw=b'{"id": "p1", "sta'))
    with pytest.raises(CreateOutcomeUnknown, match="cut short"):
        script.run(create_raw(script.state(), MODEL, {"prompt": "b"}))
    assert len(script.requests) == 1


def test_get_returns_the_prediction_and_its_reply() -> None:
    script = Script.of(reply(200, prediction("processing"), headers={"x-request-id": "r1"}))
    got, answer = script.run(get_raw(script.state(), "p1"))
    assert got.status == "processing" and answer.headers["x-request-id"] == "r1"
    assert script.paths() == ["GET /predictions/p1"]


def test_get_escapes_the_id_into_one_segment() -> None:
    script = Script.of(reply(200, prediction(id="a/b c")))
    script.run(get_raw(script.state(), "a/b c"))
    assert script.paths() == ["GET /predictions/a%2Fb%20c"]


@pytest.mark.parametrize("bad", ["", None, 5])
def test_get_refuses_an_id_that_is_not_a_non_empty_string(bad: object) -> None:
    script = Script.of()
    with pytest.raises(InputValidationError):
        script.run(get_raw(script.state(), bad))  # type: ignore[arg-type]
    assert script.requests == []


def test_a_get_body_cut_short_is_fetched_again() -> None:
    script = Script.of(reply(200, raw=b'{"id": "p1"'), reply(200, prediction("processing")))
    got, _ = script.run(get_raw(script.state(), "p1"))
    assert got.id == "p1" and len(script.requests) == 2 and len(script.sleeps) == 1


def test_a_get_body_cut_short_every_time_ends_unreadable() -> None:
    script = Script.of(*(reply(200, raw=b"{") for _ in range(3)))
    with pytest.raises(Unreadable) as info:
        script.run(get_raw(script.state(), "p1"))
    assert info.value.prediction_id == "p1"


@pytest.mark.parametrize(
    ("answer", "rule"),
    [
        (reply(202, prediction()), "type"),  # a status the spec does not document for GET
        (reply(200, {"status": "starting"}), "required"),
        (reply(200, prediction(id="")), "type"),
        (reply(200, [1, 2]), "type"),
        (reply(200, raw=b'{"n": ' + b"9" * 5000 + b"}"), "type"),
    ],
)
def test_a_2xx_that_is_not_a_prediction_is_a_contract_violation(answer: object, rule: str) -> None:
    script = Script.of(answer)  # type: ignore[arg-type]
    with pytest.raises(ContractViolation) as info:
        script.run(get_raw(script.state(), "p1"))
    assert info.value.rule == rule


def test_validate_responses_holds_bodies_to_the_spec() -> None:
    script = Script.of(reply(200, prediction(status="starting", logs=5)))
    with pytest.raises(ContractViolation, match="breaks Prediction"):
        script.run(get_raw(script.state(validate_responses=True), "p1"))


def test_cancel_posts_to_the_cancel_route() -> None:
    script = Script.of(reply(200, prediction("canceled")))
    got, _ = script.run(cancel_raw(script.state(), "p1"))
    assert got.status == "canceled" and script.paths() == ["POST /predictions/p1/cancel"]


def test_errors_of_get_and_cancel_carry_the_id() -> None:
    script = Script.of(reply(404, {"detail": "Not found."}), reply(404, {"detail": "Not found."}))
    with pytest.raises(NotFoundError) as got:
        script.run(get_raw(script.state(), "p9"))
    with pytest.raises(NotFoundError) as canceled:
        script.run(cancel_raw(script.state(), "p9"))
    assert got.value.prediction_id == canceled.value.prediction_id == "p9"


def test_the_cancel_on_exit_is_one_bounded_priority_try() -> None:
    script = Script.of(reply(200, prediction("canceled")))
    assert script.run(best_effort_cancel(script.state(), "p1")) is True
    (sent,) = script.requests
    assert sent.total == CANCEL_ON_EXIT_TOTAL and sent.priority is True
    assert sent.timeout.read == CANCEL_ON_EXIT_TIMEOUT.read


@pytest.mark.parametrize(
    "answer", [reply(405, {"detail": "no"}), httpx.ReadTimeout("slow"), reply(503, raw=b"")]
)
def test_the_cancel_on_exit_never_raises_and_never_retries(answer: object) -> None:
    script = Script.of(answer)  # type: ignore[arg-type]
    assert script.run(best_effort_cancel(script.state(), "p1")) is False
    assert len(script.requests) == 1


def test_a_poll_answered_about_another_prediction_is_a_contract_violation() -> None:
    script = Script.of(reply(200, prediction(id="other")))
    with pytest.raises(ContractViolation, match="answered with prediction other"):
        script.run(poll(script.state(), "p1", Deadline(script.clock.now, 10.0)))


def test_the_create_request_body_is_json_serialisable() -> None:
    script = Script.of(reply(201, prediction()))
    script.run(create_raw(script.state(), MODEL, {"prompt": "b", "seed": 3}))
    assert json.loads(json.dumps(script.requests[0].json)) == {"input": {"prompt": "b", "seed": 3}}
