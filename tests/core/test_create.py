"""The create's promises (issue 12 items 5, 6, 8): never a parsing error once an id came back, and
`CreateOutcomeUnknown` whenever the create may have reached the server but no id did."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest
from comet_replicate import (
    APIConnectionError,
    APITimeoutError,
    ContractViolation,
    CreateOutcomeUnknown,
    InputValidationError,
    InternalServerError,
    PaymentRequiredError,
    UnknownInputFieldWarning,
)
from comet_replicate.core.create import create_raw
from comet_replicate.core.wait import CANCEL_AFTER_FROM_TIMEOUT, run

from ._script import CREATED_EPOCH, MODEL, Script, done, prediction, reply

INPUT = {"prompt": "a boat", "num_outputs": 1}


def _create(script: Script, **options: object) -> object:
    return script.run(create_raw(script.state(), MODEL, dict(INPUT), **options))  # type: ignore[arg-type]


def _sha(data: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@pytest.mark.parametrize(
    "answer",
    [
        httpx.ReadTimeout("held too long"),
        httpx.RemoteProtocolError("peer closed the connection"),
        httpx.ReadError("reset"),
        httpx.WriteTimeout("slow upload"),
        reply(500, {"detail": "boom"}),
        reply(502, raw=b"<html>bad gateway</html>", headers={"content-type": "text/html"}),
        reply(524, raw=b"<html>A timeout occurred</html>", headers={"content-type": "text/html"}),
        reply(201, raw=b'{"id": "p1", "sta'),
        reply(201, raw=b""),
        reply(201, {"status": "starting"}),
        reply(201, {"id": 5, "status": "starting"}),
    ],
    ids=[
        "read-timeout",
        "dropped",
        "reset",
        "write-timeout",
        "500",
        "502-html",
        "524-html",
        "cut",
        "empty",
        "no-id",
        "bad-id",
    ],
)
def test_a_create_that_may_have_reached_the_server_without_an_id_is_an_unknown_outcome(
    answer: object,
) -> None:
    script = Script.of(answer)  # type: ignore[arg-type]
    with pytest.raises(CreateOutcomeUnknown) as info:
        _create(script)
    error = info.value
    assert len(script.requests) == 1  # never repeated
    assert error.model == MODEL
    assert error.input_sha256 == _sha(INPUT)
    assert error.sent_at == pytest.approx(CREATED_EPOCH)
    assert "never blindly retry" in str(error) or "before creating again" in str(error)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (httpx.ConnectError("refused"), APIConnectionError),
        (httpx.ConnectTimeout("slow"), APITimeoutError),
        (
            reply(402, {"title": "Insufficient credit", "detail": "add credit", "status": 402}),
            PaymentRequiredError,
        ),
        (
            reply(500, {"error": {"message": "bad", "type": "comet_api_error", "code": "invalid_request"}}),
            InternalServerError,
        ),
    ],
)
def test_a_create_that_provably_made_nothing_keeps_its_own_error(
    answer: object, error: type[Exception]
) -> None:
    script = Script.of(answer, answer, answer)  # type: ignore[arg-type]
    with pytest.raises(error) as info:
        _create(script)
    assert not isinstance(info.value, CreateOutcomeUnknown)


def test_a_524_on_a_create_has_its_status_on_the_unknown_outcome() -> None:
    script = Script.of(reply(524, raw=b"<html>timeout</html>", headers={"content-type": "text/html"}))
    with pytest.raises(CreateOutcomeUnknown) as info:
        _create(script)
    assert info.value.status == 524


@pytest.mark.parametrize(
    "body",
    [
        {k: v for k, v in prediction("starting").items() if k != "output"},
        prediction("starting", metrics=None, urls=None),
        prediction("starting", created_at="2026-03-12T11:27:18.258123Z"),
        prediction("starting", created_at="2026-03-12T11:27:18.258123456Z"),
        prediction("starting", version="dp-4d0e8a7f6f7f4a8e9c1b2a3d4e5f6a7b"),
    ],
    ids=["no-output", "null-metrics-urls", "6-digit-fraction", "9-digit-fraction", "dp-version"],
)
def test_every_documented_create_answer_parses(body: dict[str, object]) -> None:
    script = Script.of(reply(201, body))
    created, _ = _create(script)  # type: ignore[misc]
    assert created.id == "p1"


def test_a_create_answer_with_an_id_but_a_broken_body_names_the_id() -> None:
    script = Script.of(reply(201, {"id": "p1", "status": "starting"}))  # no model, input, created_at
    with pytest.raises(ContractViolation) as info:
        _create(script)
    assert info.value.prediction_id == "p1"


def test_run_goes_on_waiting_for_a_create_answered_without_output_or_with_a_broken_body() -> None:
    script = Script.of(
        reply(201, {"id": "p1", "status": "starting"}), reply(200, prediction("processing")), done()
    )
    st = script.state()
    flow = run(
        st,
        MODEL,
        dict(INPUT),
        timeout=60,
        wait=None,
        cancel_after=CANCEL_AFTER_FROM_TIMEOUT,
        on_created=None,
        on_update=None,
    )
    assert script.run(flow).status == "succeeded"
    assert script.paths()[1:] == ["GET /predictions/p1", "GET /predictions/p1"]


@pytest.mark.parametrize(
    ("given", "sent"), [("2s", "5s"), ("0", "5s"), (2.5, "5s"), ("90", "90"), ("5m", "5m"), (90.2, "91s")]
)
def test_cancel_after_is_sent_in_the_documented_form_never_below_five_seconds(
    given: object, sent: str
) -> None:
    script = Script.of(reply(201, prediction()))
    _create(script, cancel_after=given)
    assert script.requests[0].headers["cancel-after"] == sent


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), -1, 0, True, "soon", "5 minutes"])
def test_a_cancel_after_that_is_no_duration_is_refused_by_name(bad: object) -> None:
    with pytest.raises(InputValidationError) as info:
        _create(Script.of(), cancel_after=bad)
    assert info.value.field == "cancel_after"


@pytest.mark.parametrize("mode", ["warn", "strict", "off"])
def test_the_client_validation_mode_reaches_input_preparation(mode: str) -> None:
    typo = {"prompt": "b", "aspect_ration": "16:9"}
    script = Script.of(reply(201, prediction()))
    st = script.state(input_validation=mode)
    if mode == "strict":
        with pytest.raises(InputValidationError, match="aspect_ratio"):
            script.run(create_raw(st, MODEL, typo))
        assert script.requests == []
    elif mode == "warn":
        with pytest.warns(UnknownInputFieldWarning, match="aspect_ratio"):
            script.run(create_raw(st, MODEL, typo))
        assert script.requests[0].json["input"] == typo
    else:
        script.run(create_raw(st, MODEL, typo))
        assert script.requests[0].json["input"] == typo
