"""verify_webhook against hostile requests (issue 13 item 8): whatever the headers and body hold, the
outcome is a Prediction, a WebhookVerificationError or (for a verified body that is not a prediction) a
ContractViolation — never an OverflowError, RecursionError or UnicodeEncodeError."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from typing import Any

import pytest
from comet_replicate import ContractViolation, WebhookVerificationError, verify_webhook
from hypothesis import given, settings
from hypothesis import strategies as st

KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
NOW = 1_773_314_838


def _signed(body: bytes, *, ts: str = str(NOW), msg_id: str = "msg_1") -> dict[str, str]:
    mac = hmac.new(KEY, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": ts,
        "webhook-signature": f"v1,{base64.b64encode(mac).decode()}",
    }


@pytest.mark.parametrize("tolerance", [300, None])
def test_a_4000_digit_timestamp_is_refused_before_any_arithmetic(tolerance: float | None) -> None:
    huge = "9" * 4000
    with pytest.raises(WebhookVerificationError, match="not a Unix time"):
        verify_webhook(_signed(b"{}", ts=huge), b"{}", SECRET, tolerance=tolerance, now=NOW)


@pytest.mark.parametrize("stamp", ["-5", "1.5", "١٧٧٣٣١٤٨٣٨", " 1773314838", "1e9", ""])
def test_timestamps_that_are_not_plain_unix_seconds_are_refused(stamp: str) -> None:
    with pytest.raises(WebhookVerificationError):
        verify_webhook(_signed(b"{}", ts=stamp), b"{}", SECRET, now=NOW)


def test_a_signed_deeply_nested_body_is_a_verification_error_not_a_recursion_error() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(WebhookVerificationError, match="nests"):
        verify_webhook(_signed(body), body, SECRET, now=NOW)


def test_a_body_with_a_lone_surrogate_is_a_verification_error() -> None:
    with pytest.raises(WebhookVerificationError, match="UTF-8"):
        verify_webhook(_signed(b"{}"), '{"id": "\ud800"}', SECRET, now=NOW)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
PREDICTION_KEYS = [
    "id",
    "model",
    "input",
    "output",
    "status",
    "created_at",
    "metrics",
    "urls",
    "logs",
    "error",
]


@settings(max_examples=200)
@given(
    body=st.dictionaries(st.sampled_from(PREDICTION_KEYS), JSON, max_size=10) | JSON,
    stamp=st.one_of(st.just(str(NOW)), st.text(max_size=30)),
)
def test_any_signed_body_and_timestamp_gives_only_the_documented_outcomes(body: Any, stamp: str) -> None:
    raw = json.dumps(body).encode()
    with contextlib.suppress(WebhookVerificationError, ContractViolation):
        verify_webhook(_signed(raw, ts=stamp), raw, SECRET, now=NOW)
