"""A server that echoes the API key (in logs, the error, an output URL): `get`, `wait` and `cancel`
print the key in none of their outputs, text or JSON (issue 13 item 9, the CLI's part)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from comet_replicate._cli._errors import ExitCode

from tests.reliability._support import CANARY_KEY, RawServer, http_head

from .conftest import SCHNELL, TOKEN


@pytest.fixture
def echoing_server(serve_emulator) -> Iterator[RawServer]:  # type: ignore[no-untyped-def]
    """Answers every request with a real (emulator-made) failed prediction that quotes the key."""
    emulator = serve_emulator(speed=50)
    created = httpx.post(
        f"{emulator.cometapi_base_url}/models/{SCHNELL}/predictions",
        json={"input": {"prompt": "a boat"}},
        headers={"Authorization": f"Bearer {TOKEN}", "Prefer": "wait=30"},
        timeout=30,
    ).json()
    document: dict[str, Any] = {
        **created,
        "status": "failed",
        "logs": f"auth header was Bearer {CANARY_KEY}\nstill {CANARY_KEY}",
        "error": f"upstream rejected key {CANARY_KEY}",
        "output": [f"https://files.example/{CANARY_KEY}/out-0.webp"],
    }
    body = json.dumps(document).encode()

    async def echo(request, writer) -> None:  # type: ignore[no-untyped-def]
        head = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        writer.write(http_head("200 OK", head) + body)

    with RawServer({"*": echo}) as server:
        server.prediction_id = created["id"]  # type: ignore[attr-defined]
        yield server


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["get"], ExitCode.OK),
        (["get", "--json"], ExitCode.OK),
        (["wait"], ExitCode.PREDICTION),
        (["wait", "--json"], ExitCode.PREDICTION),
        (["cancel", "--json"], ExitCode.OK),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else str(value),
)
def test_a_key_echoed_by_the_server_is_printed_nowhere(
    cli, echoing_server, args: list[str], code: int
) -> None:
    env = {"COMETAPI_KEY": CANARY_KEY, "COMETAPI_BASE_URL": echoing_server.base_url + "/replicate/v1"}
    result = cli(args[0], echoing_server.prediction_id, *args[1:], env=env)
    assert result.exit_code == code, result.stderr
    assert CANARY_KEY not in result.stdout + result.stderr
    assert "***" in result.stdout + result.stderr  # the server text is shown, with the key redacted


def test_cancel_text_shows_no_echoed_key(cli, echoing_server) -> None:
    env = {"COMETAPI_KEY": CANARY_KEY, "COMETAPI_BASE_URL": echoing_server.base_url + "/replicate/v1"}
    result = cli("cancel", echoing_server.prediction_id, env=env)
    assert result.exit_code == 0
    assert CANARY_KEY not in result.stdout + result.stderr
    assert "had already failed; there was nothing to cancel." in result.stdout
