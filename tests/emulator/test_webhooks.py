"""Webhooks: the emulator POSTs the prediction to `webhook`, signed as Replicate signs it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from comet_replicate_emulator import EmulatorConfig, ManualClock

SCHNELL = "/replicate/v1/models/black-forest-labs/flux-schnell/predictions"


class Receiver:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        received = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    async def wait_for(self, count: int) -> None:
        for _ in range(500):
            if len(self.requests) >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{len(self.requests)} webhook requests, wanted {count}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def expected_signature(secret: str, headers: dict[str, str], body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


async def test_start_and_completed_events_are_posted_and_signed(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    clock: ManualClock,
    receiver: Receiver,
) -> None:
    config = make_config()
    api = make_client(config)
    created = await api.post(
        SCHNELL,
        json={
            "input": {"prompt": "x"},
            "webhook": receiver.url,
            "webhook_events_filter": ["start", "completed"],
        },
    )
    pid = created.json()["id"]
    await asyncio.sleep(0.05)
    assert receiver.requests == []  # nothing has happened yet on the emulator clock
    clock.advance(0.5)
    await receiver.wait_for(1)
    clock.advance(10)
    await receiver.wait_for(2)
    statuses = [json.loads(body)["status"] for _, body in receiver.requests]
    assert statuses == ["processing", "succeeded"]
    for headers, body in receiver.requests:
        assert json.loads(body)["id"] == pid
        assert headers["webhook-signature"] == expected_signature(config.webhook_secret, headers, body)
    secret = await api.get("/replicate/v1/webhooks/default/secret")
    assert secret.json() == {"key": config.webhook_secret}
    for _ in range(500):  # the emulator records a delivery once the receiver has answered
        if len(api.emulator_app.stats()["webhooks"]) == 2:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.01)
    assert api.emulator_app.stats()["webhooks"] == {"start_delivered": 1, "completed_delivered": 1}  # type: ignore[attr-defined]


async def test_the_client_verifies_what_the_emulator_signs(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    clock: ManualClock,
    receiver: Receiver,
) -> None:
    from comet_replicate import verify_webhook

    config = make_config()
    api = make_client(config)
    await api.post(SCHNELL, json={"input": {"prompt": "x"}, "webhook": receiver.url})
    clock.advance(10)
    await receiver.wait_for(1)
    headers, body = receiver.requests[0]
    prediction = verify_webhook(headers, body, config.webhook_secret)
    assert prediction.status == "succeeded"


async def test_a_cancel_delivers_the_completed_event_at_once(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    receiver: Receiver,
) -> None:
    api = make_client(make_config())
    pid = (await api.post(SCHNELL, json={"input": {"prompt": "x"}, "webhook": receiver.url})).json()["id"]
    await asyncio.sleep(0.02)
    await api.post(f"/replicate/v1/predictions/{pid}/cancel")
    await receiver.wait_for(1)
    assert json.loads(receiver.requests[0][1])["status"] == "canceled"
