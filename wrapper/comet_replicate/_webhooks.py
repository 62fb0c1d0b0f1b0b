"""Webhook signature verification (Replicate / Standard Webhooks scheme), replay-protected by default.

The signed content is `"{webhook-id}.{webhook-timestamp}.{body}"`, signed with HMAC-SHA256 under the
base64 key that follows `whsec_` in the secret; `webhook-signature` holds one or more space-separated
`v1,<base64 signature>` entries. Timestamps more than `tolerance` seconds old or in the future are
refused, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ._errors import CometReplicateError, ContractViolation
from ._generated import prediction_from_dict

if TYPE_CHECKING:
    from comet_replicate_api.models import Prediction

__all__ = ["WebhookVerificationError", "verify_webhook"]

_MAX_TIMESTAMP_DIGITS = 15
"""A Unix time in seconds has 10 digits until the year 2286; more is not a timestamp (and a huge one
would overflow the float arithmetic of the replay check before the signature is even looked at)."""


class WebhookVerificationError(CometReplicateError):
    """A webhook request failed verification (missing header, bad secret, stale timestamp, bad signature)."""


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise WebhookVerificationError(f"missing {name} header")


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes | str,
    secret: str,
    *,
    tolerance: float | None = 300,
    now: float | None = None,
) -> Prediction:
    """Verify a webhook request and return its body parsed as a `Prediction`.

    `headers` is any mapping of the request's headers (names are matched case-insensitively), `body`
    the raw request body exactly as received, `secret` the signing secret (`whsec_...`).
    `tolerance` is the largest allowed clock difference in seconds (None disables the replay check;
    only do that in tests). Raises WebhookVerificationError on any failure to verify or read the
    request (whatever its headers and body hold), and ContractViolation when a verified JSON body is
    not a prediction.
    """
    webhook_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= _MAX_TIMESTAMP_DIGITS):
        raise WebhookVerificationError(f"webhook-timestamp {timestamp[:40]!r} is not a Unix time")
    sent_at = int(timestamp)
    if tolerance is not None:
        current = time.time() if now is None else now
        if abs(current - sent_at) > tolerance:
            raise WebhookVerificationError(
                f"webhook-timestamp is {current - sent_at:+.0f} s from now, "
                f"outside the {tolerance:g} s tolerance"
            )
    if not isinstance(secret, str) or not secret:
        raise WebhookVerificationError("the webhook secret is empty")
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookVerificationError("the webhook secret is not whsec_ followed by base64") from None
    try:
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        signed = f"{webhook_id}.{timestamp}.".encode() + raw
    except (UnicodeEncodeError, TypeError) as exc:
        raise WebhookVerificationError(
            f"the webhook id or body cannot be read as UTF-8 bytes ({exc})"
        ) from None
    expected = hmac.new(key, signed, hashlib.sha256).digest()
    matched = False
    for entry in signatures.split():
        version, _, value = entry.partition(",")
        if version != "v1":
            continue
        try:
            candidate = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        matched = hmac.compare_digest(candidate, expected) or matched
    if not matched:
        raise WebhookVerificationError("no webhook-signature entry matches the body")
    return _parse(raw)


def _parse(raw: bytes) -> Prediction:
    try:
        data = json.loads(raw)
    except RecursionError:
        raise WebhookVerificationError(
            "webhook body nests deeper than the JSON parser allows; refused unread"
        ) from None
    except ValueError as exc:
        raise ContractViolation("webhook body is not JSON", path="$", rule="type") from exc
    if not isinstance(data, dict):
        raise ContractViolation("webhook body is not a JSON object", path="$", rule="type")
    try:
        return prediction_from_dict(data)
    except RecursionError:
        raise WebhookVerificationError("webhook body nests too deeply to read; refused") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ContractViolation(
            f"webhook body is not a Prediction ({type(exc).__name__}: {exc})",
            path="$",
            rule="required" if isinstance(exc, KeyError) else "type",
        ) from exc
