"""Every non-2xx body shape becomes one typed error with its fields, a request id and a one-line str."""

from __future__ import annotations

import json

import pytest
from comet_replicate import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from comet_replicate._errors import status_error


def _err(
    status: int, body: object = None, *, text: str | None = None, headers: dict[str, str] | None = None
) -> APIStatusError:
    content = (text if text is not None else json.dumps(body)).encode()
    return status_error(status, method="POST", url="https://h/x", headers=headers or {}, content=content)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, InternalServerError),
        (502, InternalServerError),
        (503, InternalServerError),
        (504, InternalServerError),
        (418, APIStatusError),
    ],
)
def test_each_status_maps_to_its_class(status: int, cls: type[APIStatusError]) -> None:
    error = _err(status, {"detail": "x"})
    assert type(error) is cls
    assert error.status == status


def test_comet_envelope_fields_and_request_id_from_the_message() -> None:
    error = _err(
        500,
        {
            "error": {
                "message": "field input is required (request id: 2026031211)",
                "type": "comet_api_error",
                "param": "",
                "code": "invalid_request",
            }
        },
    )
    assert error.error_message == "field input is required (request id: 2026031211)"
    assert error.error_type == "comet_api_error"
    assert error.code == "invalid_request"
    assert error.param is None
    assert error.request_id == "2026031211"
    assert "invalid_request: field input is required" in str(error)


def test_problem_details_fields() -> None:
    error = _err(
        422,
        {
            "title": "Input validation failed",
            "detail": "- input.output_format: must be jpg or png",
            "status": 422,
            "type": "https://replicate.com/errors/validation",
            "instance": "/x",
            "invalid_fields": [{"type": "enum", "field": "input.output_format", "description": "d"}],
        },
        headers={"X-Request-Id": "req-9"},
    )
    assert error.title == "Input validation failed"
    assert error.detail and "output_format" in error.detail
    assert error.problem_type == "https://replicate.com/errors/validation"
    assert error.instance == "/x"
    assert error.invalid_fields[0]["field"] == "input.output_format"
    assert error.request_id == "req-9"
    assert "[request id req-9]" in str(error)


def test_throttle_body_retry_after_is_kept() -> None:
    error = _err(
        429,
        {"detail": "Request was throttled. Expected available in 1 second.", "status": 429, "retry_after": 1},
    )
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 1.0


@pytest.mark.parametrize(
    "text",
    [
        "<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>",
        '{"error": {"message": "trunc',
        "",
        "plain words\nover lines",
        "[1, 2]",
    ],
)
def test_non_json_truncated_or_empty_bodies_become_one_line_errors(text: str) -> None:
    error = _err(502, text=text)
    assert isinstance(error, InternalServerError)
    assert "\n" not in str(error)
    assert str(error).startswith("502 POST https://h/x:")
    assert error.text == text


def test_long_messages_are_cut() -> None:
    error = _err(400, {"detail": "x" * 5000})
    assert len(str(error)) < 400


def test_attach_sets_the_prediction_id_once() -> None:
    error = _err(404, {"detail": "not found"})
    error.attach("p1")
    error.attach("p2")
    assert error.prediction_id == "p1"
    assert "(prediction p1)" in str(error)
