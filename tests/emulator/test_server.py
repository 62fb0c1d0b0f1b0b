"""The emulator on a real loopback socket: serve(), dropped connections, 1,000 concurrent predictions."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import httpx
import pytest
from comet_replicate_emulator import EmulatorConfig, Faults, serve
from comet_replicate_emulator._server import raise_open_file_limit
from PIL import Image

TOKEN = "sk-socket"
SCHNELL = "/replicate/v1/models/black-forest-labs/flux-schnell/predictions"


def test_serve_answers_on_a_free_loopback_port(checked: Any) -> None:
    config = EmulatorConfig(token=TOKEN, speed=1000.0, validate_responses=True)
    with serve(config) as server:
        assert server.base_url.startswith("http://127.0.0.1:") and server.port > 0
        assert server.config is config
        with httpx.Client(
            base_url=server.cometapi_base_url,
            headers={"Authorization": f"Bearer {TOKEN}"},
            event_hooks={"response": [checked.sync_hook]},
        ) as client:
            created = client.post(
                "/models/black-forest-labs/flux-schnell/predictions",
                json={"input": {"prompt": "x"}},
                headers={"Prefer": "wait=5"},
            )
            assert created.status_code == 201 and created.json()["status"] == "succeeded"
            url = created.json()["output"][0]
            assert url.startswith(server.base_url + "/files/")
            image = Image.open(io.BytesIO(client.get(url).content))
            assert image.size == (1024, 1024)
            assert client.get(f"/predictions/{created.json()['id']}").json()["status"] == "succeeded"
        assert checked.count == 2
        assert server.stats()["predictions_created"] == 1
        server.reset()
        assert server.stats()["predictions_created"] == 0


def test_dropped_connection_closes_the_socket_without_an_answer() -> None:
    faults = Faults(drop=1.0, operations=frozenset({"get"}))
    with (
        serve(EmulatorConfig(token=TOKEN, validate_responses=True, faults=faults)) as server,
        httpx.Client(
            base_url=server.cometapi_base_url, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as client,
    ):
        created = client.post(
            "/models/black-forest-labs/flux-schnell/predictions", json={"input": {"prompt": "x"}}
        )
        assert created.status_code == 201
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(f"/predictions/{created.json()['id']}")
        again = client.post(
            "/models/black-forest-labs/flux-schnell/predictions", json={"input": {"prompt": "y"}}
        )
        assert again.status_code == 201  # the server keeps serving after a drop
        assert server.stats()["requests"]["get"] == {"dropped": 1}


async def _call(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    """One HTTP/1.1 request on a kept-alive connection.

    A bare asyncio client keeps the test about the server: httpx's pool costs milliseconds of CPU per
    request once a thousand requests share it, which would measure the client instead.
    """
    data = json.dumps(body).encode() if body is not None else b""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    writer.write(head.encode() + data)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    payload = await reader.readexactly(int(headers["content-length"]))
    return status, json.loads(payload)


def test_a_thousand_concurrent_predictions_are_served_without_an_error() -> None:
    count = 1000
    if raise_open_file_limit() < 2 * count + 100:  # both ends of every connection live in this process
        pytest.skip("the open-file limit is below what 1,000 loopback connections need")
    config = EmulatorConfig(token=TOKEN, speed=100.0, seed=1, validate_responses=True)

    async def one(port: int, i: int) -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            status, body = await _call(reader, writer, "POST", SCHNELL, {"input": {"prompt": f"boat {i}"}})
            assert status == 201, body
            pid = body["id"]
            while body["status"] in ("starting", "processing"):
                await asyncio.sleep(0.01)
                status, body = await _call(reader, writer, "GET", f"/replicate/v1/predictions/{pid}")
                assert status == 200, body
            assert body["status"] == "succeeded", body
            return str(pid)
        finally:
            writer.close()
            await writer.wait_closed()

    async def run(port: int) -> list[str]:
        return await asyncio.gather(*(one(port, i) for i in range(count)))

    with serve(config) as server:
        ids = asyncio.run(run(server.port))
        report = server.stats()
    assert len(set(ids)) == count
    assert report["predictions_created"] == count
    assert report["requests"]["create"] == {"201": count}
    assert set(report["requests"]["get"]) == {"200"}
    assert report["response_violations"] == []
