"""Responses drawn from the spec's schemas: the generated models parse them, `to_dict`/`from_dict`
round-trip the known fields, and the wrapper classifies them (status → outcome, error body →
the APIStatusError subclass for the HTTP status, with the body's fields)."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import httpx
import pytest
import respx
from comet_replicate import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    Client,
    ContractViolation,
    InternalServerError,
    NotFoundError,
    OriginTimeoutError,
    PayloadTooLargeError,
    PaymentRequiredError,
    PermissionDeniedError,
    PredictionAborted,
    PredictionCanceled,
    PredictionFailed,
    RateLimitError,
    UnexpectedStatus,
    UnprocessableEntityError,
)
from comet_replicate_api import AuthenticatedClient
from comet_replicate_api.api.predictions import cancel_prediction, create_prediction, get_prediction
from comet_replicate_api.models import Prediction, PredictionStatus
from hypothesis import assume, given
from hypothesis import strategies as st

from contract_tests._spec import API_KEY, BASE_URL, SPEC, from_schema_strategy, schema_errors

DOCUMENTED = list(SPEC["components"]["schemas"]["PredictionStatus"]["enum"])
TERMINAL_ERRORS = {"failed": PredictionFailed, "canceled": PredictionCanceled, "aborted": PredictionAborted}
# The wrapper's promised mapping (brief and README): which class each HTTP status raises.
STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    524: OriginTimeoutError,
}
DATETIMES = ("created_at", "started_at", "completed_at", "deadline")
OPERATIONS = {
    "createPrediction": ("POST", "/models/black-forest-labs/flux-schnell/predictions", create_prediction),
    "getPrediction": ("GET", "/predictions/p1", get_prediction),
    "cancelPrediction": ("POST", "/predictions/p1/cancel", cancel_prediction),
}


@functools.cache
def client() -> Client:
    c = Client(api_key=API_KEY, base_url=BASE_URL, max_retries=0)
    c._driver.sleep = lambda seconds: None  # polls answer instantly from respx
    return c


def predictions() -> st.SearchStrategy[dict[str, Any]]:
    return from_schema_strategy("Prediction")


def parse_dt(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def documented_responses(operation_id: str) -> dict[int, dict[str, Any]]:
    """status → response object (refs resolved) of one operation in the spec."""
    from contract_tests._spec import inlined

    for item in SPEC["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and op.get("operationId") == operation_id:
                return {int(code): inlined(resp) for code, resp in op["responses"].items()}
    raise KeyError(operation_id)


# --- generated models ---------------------------------------------------------------------------


@given(doc=predictions())
def test_generated_prediction_parses_every_document_the_schema_allows(doc: dict[str, Any]) -> None:
    assume(all(parse_dt_ok(doc.get(k)) for k in DATETIMES))
    parsed = Prediction.from_dict(doc)
    assert parsed.id == doc["id"] and parsed.model == doc["model"]
    if doc["status"] in DOCUMENTED:
        assert parsed.status == PredictionStatus(doc["status"])
    else:
        assert isinstance(parsed.status, str) and not isinstance(parsed.status, PredictionStatus)
        assert parsed.status == doc["status"]


def parse_dt_ok(value: Any) -> bool:
    """Python 3.11's fromisoformat (what the generated code uses) handles RFC 3339 strings with
    fractional seconds of 1-6 digits or more; years 0000 and leap seconds are outside its range."""
    if not isinstance(value, str):
        return True
    try:
        parse_dt(value)
    except ValueError:
        return False
    return True


@given(doc=predictions())
def test_to_dict_from_dict_round_trip_keeps_every_known_field(doc: dict[str, Any]) -> None:
    assume(all(parse_dt_ok(doc.get(k)) for k in DATETIMES))
    again = Prediction.from_dict(doc).to_dict()
    assert not schema_errors("Prediction", again), schema_errors("Prediction", again)
    assert set(again) == set(doc)
    for key, value in doc.items():
        if key in DATETIMES and isinstance(value, str):
            # to_dict re-serialises with isoformat(): compare instants, not strings.
            assert parse_dt(again[key]) == parse_dt(value), key
        else:
            assert again[key] == value, key


@pytest.mark.parametrize("operation_id", sorted(OPERATIONS))
@given(data=st.data())
def test_generated_parser_handles_every_documented_json_response(
    operation_id: str, data: st.DataObject
) -> None:
    """For each documented status with a JSON body, `_parse_response` of a schema-valid body does not
    raise: 2xx become Prediction, error bodies a CometError or the raw dict."""
    responses = documented_responses(operation_id)
    status = data.draw(
        st.sampled_from(sorted(c for c, r in responses.items() if "application/json" in r.get("content", {})))
    )
    name = "Prediction" if status < 300 else "ErrorBody"
    body = data.draw(from_schema_strategy(name), label=name)
    if name == "Prediction":
        assume(all(parse_dt_ok(body.get(k)) for k in DATETIMES))
    method, path, module = OPERATIONS[operation_id]
    request = httpx.Request(method, BASE_URL + path)
    response = httpx.Response(status, json=body, request=request)
    parsed = module._parse_response(
        client=AuthenticatedClient(base_url=BASE_URL, token=API_KEY), response=response
    )
    if status < 300:
        assert isinstance(parsed, Prediction)
    else:
        assert parsed is not None


# --- the wrapper's classification ---------------------------------------------------------------


UNKNOWN_STATUSES = st.text(st.characters(categories=["Ll", "Lu", "Nd"]), min_size=1, max_size=12).filter(
    lambda s: s not in DOCUMENTED
)


@given(doc=predictions(), status=st.sampled_from(DOCUMENTED) | UNKNOWN_STATUSES)
def test_wrapper_classifies_every_status(doc: dict[str, Any], status: str) -> None:
    """succeeded → returned; failed/canceled/aborted → their PredictionError with the id; pending →
    polled again; anything the spec does not list → UnexpectedStatus (fail closed)."""
    assume(all(parse_dt_ok(doc.get(k)) for k in DATETIMES))
    pid = "p1"
    doc = {**doc, "id": pid, "status": status}
    done = {**doc, "status": "succeeded"}
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        route = router.get(f"/predictions/{pid}").mock(
            side_effect=[httpx.Response(200, json=doc), httpx.Response(200, json=done)]
        )
        if status == "succeeded":
            assert client().predictions.wait(pid, timeout=30).status == PredictionStatus.SUCCEEDED
            assert route.call_count == 1
        elif status in ("starting", "processing"):
            assert client().predictions.wait(pid, timeout=30).status == PredictionStatus.SUCCEEDED
            assert route.call_count == 2
        elif status in TERMINAL_ERRORS:
            with pytest.raises(TERMINAL_ERRORS[status]) as excinfo:
                client().predictions.wait(pid, timeout=30)
            assert excinfo.value.prediction_id == pid
            assert route.call_count == 1
        else:
            with pytest.raises(UnexpectedStatus) as unexpected:
                client().predictions.wait(pid, timeout=30)
            assert unexpected.value.prediction_id == pid
            assert repr(status) in str(unexpected.value)


def error_status_strategy() -> st.SearchStrategy[int]:
    codes = {
        code
        for op in OPERATIONS
        for code, resp in documented_responses(op).items()
        if code >= 400 and "application/json" in resp.get("content", {})
    }
    return st.sampled_from(sorted(codes))


@given(status=error_status_strategy(), body=from_schema_strategy("ErrorBody"))
def test_wrapper_turns_every_documented_error_body_into_the_typed_error(status: int, body: Any) -> None:
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as router:
        router.get("/predictions/p1").respond(status, json=body)
        with pytest.raises(APIStatusError) as excinfo:
            client().predictions.get("p1", max_retries=0)
    error = excinfo.value
    expected = STATUS_CLASSES.get(status, InternalServerError if status >= 500 else APIStatusError)
    assert type(error) is expected, (status, type(error))
    assert error.status == status
    envelope = body.get("error") if isinstance(body, dict) else None
    if isinstance(envelope, dict):
        assert error.error_message == (envelope["message"] or None)
        assert error.code == (envelope.get("code") or None)
    elif isinstance(envelope, str) or "message" in body:
        # the bare {"error": "text"} / {"message": "text"} of CometAPI's image endpoints
        text = envelope if isinstance(envelope, str) and envelope.strip() else body.get("message")
        if isinstance(text, str) and text.strip():
            assert error.error_message == text
            assert " ".join(text.split())[:100] in " ".join(error.message.split())
    else:
        assert error.title == (body.get("title") or None)
        assert error.detail == (body.get("detail") or None)
        assert error.invalid_fields == [f for f in body.get("invalid_fields", []) if isinstance(f, dict)]


@pytest.mark.parametrize("status", [404, 502, 503, 504])
def test_wrapper_turns_a_documented_html_error_into_the_typed_error(status: int) -> None:
    html = "<html><head><title>Bad Gateway</title></head><body>upstream</body></html>"
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as router:
        router.get("/predictions/p1").respond(status, text=html, headers={"Content-Type": "text/html"})
        with pytest.raises(APIStatusError) as excinfo:
            client().predictions.get("p1", max_retries=0)
    assert type(excinfo.value) is STATUS_CLASSES.get(status, InternalServerError)
    assert excinfo.value.body is None and "Bad Gateway" in excinfo.value.text


@given(doc=predictions())
def test_validating_client_accepts_every_schema_valid_prediction(doc: dict[str, Any]) -> None:
    assume(all(parse_dt_ok(doc.get(k)) for k in DATETIMES))
    assume(doc["id"] != "")  # the one known disagreement: see the empty-id test below
    with (
        Client(api_key=API_KEY, base_url=BASE_URL, max_retries=0, validate_responses=True) as strict,
        respx.mock(base_url=BASE_URL, assert_all_called=True) as router,
    ):
        router.get("/predictions/p1").respond(200, json=doc)
        assert strict.predictions.get("p1").id == doc["id"]


def test_validating_client_accepts_a_prediction_without_output() -> None:
    """Older Replicate create examples have no `output` key: not a contract violation (issue 12)."""
    doc = dict(SPEC["components"]["examples"]["PredictionStarting"]["value"])
    del doc["output"]
    with (
        Client(api_key=API_KEY, base_url=BASE_URL, max_retries=0, validate_responses=True) as strict,
        respx.mock(base_url=BASE_URL, assert_all_called=True) as router,
    ):
        router.get("/predictions/p1").respond(200, json={**doc, "metrics": None, "urls": None})
        assert strict.predictions.get("p1").id == doc["id"]


@pytest.mark.parametrize("drop", ["id", "model", "input", "status", "created_at"])
def test_validating_client_rejects_a_prediction_missing_a_required_field(drop: str) -> None:
    doc = dict(SPEC["components"]["examples"]["PredictionStarting"]["value"])
    del doc[drop]
    with (
        Client(api_key=API_KEY, base_url=BASE_URL, max_retries=0, validate_responses=True) as strict,
        respx.mock(base_url=BASE_URL, assert_all_called=True) as router,
    ):
        router.get("/predictions/p1").respond(200, json=doc)
        with pytest.raises(ContractViolation):
            strict.predictions.get("p1")


def test_spec_and_wrapper_agree_on_an_empty_prediction_id() -> None:
    doc = dict(SPEC["components"]["examples"]["PredictionStarting"]["value"], id="")
    spec_accepts = not schema_errors("Prediction", doc)
    with (
        Client(api_key=API_KEY, base_url=BASE_URL, max_retries=0, validate_responses=True) as strict,
        respx.mock(base_url=BASE_URL, assert_all_called=True) as router,
    ):
        router.get("/predictions/p1").respond(200, json=doc)
        try:
            strict.predictions.get("p1")
            wrapper_accepts = True
        except ContractViolation:
            wrapper_accepts = False
    assert spec_accepts == wrapper_accepts, (
        f"spec accepts: {spec_accepts}, wrapper accepts: {wrapper_accepts}"
    )
