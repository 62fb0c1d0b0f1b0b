"""Webhook delivery, as Replicate does it: a POST of the prediction, signed (Standard Webhooks scheme).

The signed content is `"{webhook-id}.{webhook-timestamp}.{body}"`, HMAC-SHA256 under the base64 key
after `whsec_`; `webhook-signature` is `v1,<base64>`. Timestamps are wall-clock Unix seconds (a
receiver compares them with its own clock), whatever the emulator clock's speed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ._predictions import Prediction

# Replicate's default when no filter is given: new outputs and completion.
DEFAULT_EVENTS = ("output", "completed")
ATTEMPTS = 3


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one delivery."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def delivery_points(prediction: Prediction, events: Sequence[str]) -> list[tuple[float, str]]:
    """(emulator time, event) pairs to deliver, given what is known about the prediction now."""
    end, status = prediction.ending()
    points: list[tuple[float, str]] = []
    if prediction.started < end and ("start" in events or "logs" in events):
        points.append((prediction.started, "start" if "start" in events else "logs"))
    if status == "succeeded" and "output" in events and "completed" not in events:
        points.append((end, "output"))
    if "completed" in events:
        points.append((end, "completed"))
    return points


async def deliver(
    prediction: Prediction,
    events: Sequence[str],
    secret: str,
    now: Callable[[], float],
    sleep_until: Callable[[float, asyncio.Event | None], Awaitable[None]],
    record: Callable[[str, bool], None],
) -> None:
    """Send each event when it happens on the emulator clock; a cancel moves the end earlier."""
    import httpx

    sent: set[str] = set()
    async with httpx.AsyncClient(timeout=5.0, follow_redirects=False) as client:
        while True:
            pending = [(t, e) for t, e in delivery_points(prediction, events) if e not in sent]
            if not pending:
                return
            when, event = min(pending)
            if now() < when:
                await prediction.wait_until(when, sleep_until)
                continue
            sent.add(event)
            await _post(client, prediction, event, secret, now(), record)


async def _post(
    client: Any,
    prediction: Prediction,
    event: str,
    secret: str,
    at: float,
    record: Callable[[str, bool], None],
) -> None:
    body = json.dumps(prediction.view(at), separators=(",", ":")).encode()
    webhook_id = "msg_" + secrets.token_hex(12)
    for attempt in range(ATTEMPTS):
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, webhook_id, timestamp, body),
        }
        try:
            response = await client.post(prediction.webhook, content=body, headers=headers)
        except Exception:  # any transport failure counts as a failed attempt
            ok = False
        else:
            ok = 200 <= response.status_code < 300
        if ok:
            record(event, True)
            return
        if attempt + 1 < ATTEMPTS:
            await asyncio.sleep(0.2 * 2**attempt)
    record(event, False)
