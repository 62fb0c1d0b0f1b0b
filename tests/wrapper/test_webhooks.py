"""verify_webhook: Standard Webhooks signatures, replay window on by default, typed result."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from comet_replicate import ContractViolation, WebhookVerificationError, verify_webhook

from .conftest import prediction

KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
NOW = 1_773_314_838
BODY = json.dumps(prediction("succeeded", output=["https://x/y.png"])).encode()


def _headers(body: bytes = BODY, *, ts: int = NOW, msg_id: str = "msg_1", key: bytes = KEY) -> dict[str, str]:
    sig = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
    return {"Webhook-Id": msg_id, "Webhook-Timestamp": str(ts), "Webhook-Signature": f"v1,{sig}"}


def test_valid_webhook_returns_the_prediction() -> None:
    p = verify_webhook(_headers(), BODY, SECRET, now=NOW + 10)
    assert p.id == "p1" and str(p.status) == "succeeded"
    assert verify_webhook(_headers(), BODY.decode(), SECRET, now=NOW).id == "p1"


def test_any_matching_signature_among_several_is_accepted() -> None:
    headers = _headers()
    headers["Webhook-Signature"] = "v1,bm90LWl0 v2,abc " + headers["Webhook-Signature"]
    assert verify_webhook(headers, BODY, SECRET, now=NOW).id == "p1"


@pytest.mark.parametrize(
    ("headers", "body", "match"),
    [
        (_headers(), BODY + b" ", "no webhook-signature"),
        (_headers(key=b"another key"), BODY, "no webhook-signature"),
        ({k: v for k, v in _headers().items() if k != "Webhook-Id"}, BODY, "missing webhook-id"),
        ({**_headers(), "Webhook-Timestamp": "yesterday"}, BODY, "not a Unix time"),
        (_headers(ts=NOW - 301), BODY, "tolerance"),
        (_headers(ts=NOW + 301), BODY, "tolerance"),
    ],
)
def test_bad_webhooks_are_refused(headers: dict[str, str], body: bytes, match: str) -> None:
    with pytest.raises(WebhookVerificationError, match=match):
        verify_webhook(headers, body, SECRET, now=NOW)


def test_replay_check_can_only_be_disabled_explicitly() -> None:
    old = _headers(ts=NOW - 10_000)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(old, BODY, SECRET, now=NOW)
    assert verify_webhook(old, BODY, SECRET, tolerance=None, now=NOW).id == "p1"


def test_bad_secret_and_bad_body() -> None:
    with pytest.raises(WebhookVerificationError, match="base64"):
        verify_webhook(_headers(), BODY, "whsec_***", now=NOW)
    body = b'{"id": "x"}'
    with pytest.raises(ContractViolation):
        verify_webhook(_headers(body), body, SECRET, now=NOW)
