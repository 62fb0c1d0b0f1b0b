"""The statuses and body shapes of issue 12: 402, 413, 524, bare `{"error"}`/`{"message"}` bodies, and the
two errors a flow raises without a status (`CreateOutcomeUnknown`, `OutputExpired`)."""

from __future__ import annotations

import hashlib
import json

import pytest
from comet_replicate import (
    APIStatusError,
    CometReplicateError,
    CreateOutcomeUnknown,
    InternalServerError,
    OriginTimeoutError,
    OutputExpired,
    PayloadTooLargeError,
    PaymentRequiredError,
)
from comet_replicate._errors import status_error

CLOUDFLARE_524 = (
    "<!DOCTYPE html><html><head><title>api.cometapi.com | 524: A timeout occurred</title></head>"
    "<body><h1>A timeout occurred</h1><span>Error code 524</span></body></html>"
)


def _err(status: int, body: object = None, *, text: str | None = None) -> APIStatusError:
    content = (text if text is not None else json.dumps(body)).encode()
    return status_error(status, method="POST", url="https://h/x", headers={}, content=content)


def test_402_insufficient_credit_is_a_payment_required_error_with_the_problem_fields() -> None:
    body = {
        "title": "Insufficient credit",
        "detail": "You have insufficient credit to run this model.",
        "status": 402,
    }
    error = _err(402, body)
    assert type(error) is PaymentRequiredError and error.status == 402
    assert error.title == "Insufficient credit" and error.detail == body["detail"]
    assert "Insufficient credit: You have insufficient credit" in str(error)
    assert "retrying will not help" in str(error)


def test_413_is_a_payload_too_large_error_pointing_at_max_data_url_bytes() -> None:
    error = _err(413, text="<html><body>413 Request Entity Too Large</body></html>")
    assert type(error) is PayloadTooLargeError and error.status == 413
    assert "max_data_url_bytes" in str(error) and "https://" in str(error)


@pytest.mark.parametrize(
    "content",
    [
        CLOUDFLARE_524,
        json.dumps({"error": {"message": "origin timeout", "type": "comet_api_error", "code": ""}}),
        json.dumps({"error": "origin timeout"}),
    ],
    ids=["html", "envelope", "bare-error"],
)
def test_524_html_or_json_is_an_origin_timeout_that_is_still_a_5xx(content: str) -> None:
    error = _err(524, text=content)
    assert type(error) is OriginTimeoutError and isinstance(error, InternalServerError)
    assert error.status == 524
    assert "timeout" in error.message.lower()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"error": "upstream request failed"}, "upstream request failed"),
        ({"message": "the image could not be generated"}, "the image could not be generated"),
        ({"error": {"message": "bad key", "code": "invalid_api_key"}}, "bad key"),
        ({"detail": "Request was throttled. Expected available in 1 second."}, "Request was throttled"),
    ],
)
def test_every_error_body_shape_gives_the_typed_error_its_message(body: object, message: str) -> None:
    error = _err(500, body)
    assert message in error.message and message in str(error)
    assert "non-JSON" not in error.message and "HTTP 500 with an empty body" not in error.message


def test_bare_error_and_message_bodies_fill_error_message() -> None:
    assert _err(400, {"error": "no prompt"}).error_message == "no prompt"
    assert _err(400, {"message": "no prompt"}).error_message == "no prompt"
    assert _err(400, {"error": ""}).error_message is None


def test_create_outcome_unknown_carries_model_hash_time_and_says_not_to_retry_blindly() -> None:
    digest = hashlib.sha256(b'{"prompt":"x"}').hexdigest()
    error = CreateOutcomeUnknown(
        "black-forest-labs/flux-schnell",
        input_sha256=digest,
        sent_at=1_773_314_838.258,
        reason="read timeout after the request was sent",
    )
    assert isinstance(error, CometReplicateError) and error.prediction_id is None
    assert error.model == "black-forest-labs/flux-schnell" and error.input_sha256 == digest
    assert error.sent_at == 1_773_314_838.258 and error.sent_at_iso == "2026-03-12T11:27:18.258Z"
    assert error.candidate_ids == []
    text = str(error)
    assert "list recent predictions" in text and "never blindly retry" in text and "read timeout" in text
    error.set_candidates(["q4chw5rey9rmt0cww76t4h3ma4", "j5byag9d29rma0cnjba84vxdzc"])
    assert error.candidate_ids == ["q4chw5rey9rmt0cww76t4h3ma4", "j5byag9d29rma0cnjba84vxdzc"]
    assert "q4chw5rey9rmt0cww76t4h3ma4, j5byag9d29rma0cnjba84vxdzc" in str(error)


def test_output_expired_names_the_prediction_and_url_and_the_one_hour_retention() -> None:
    error = OutputExpired("j5byag9d29rma0cnjba84vxdzc", "https://replicate.delivery/x/out-0.webp", status=410)
    assert error.prediction_id == "j5byag9d29rma0cnjba84vxdzc"
    assert error.url == "https://replicate.delivery/x/out-0.webp" and error.status == 410
    assert "about an hour after" in str(error) and "HTTP 410" in str(error)
    removed = OutputExpired("j5byag9d29rma0cnjba84vxdzc", None)
    assert removed.url is None and "data_removed" in str(removed)
