"""Recording API exchanges as files of `contract_tests/recordings/` (see its README).

A `Recorder` is an httpx response hook: give it to the httpx client passed to
`Client(http_client=...)` and every API exchange is written as one JSON file, the key redacted.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import httpx

from .._errors import status_error
from ._exchange import Exchange

__all__ = ["Recorder", "recording_document"]


class Recorder:
    """An httpx response hook that writes each API exchange as a recording file.

    `Recorder(directory, base_url, api_key)`; pass `recorder.hook` (or `recorder.async_hook`) in
    `event_hooks={"response": [...]}` of the httpx client given to `Client(http_client=...)` (or
    `AsyncClient(http_client=...)`): a client option that records every exchange. Files are named
    `<prefix><NNN>-<method>-<status>.json`; the key never reaches a file.
    """

    def __init__(self, directory: Path, base_url: str, api_key: str | None, *, prefix: str = "") -> None:
        self.directory = Path(directory)
        self.base_url = base_url
        self._secret = api_key
        self._prefix = prefix
        self._lock = threading.Lock()
        self.paths: list[Path] = []

    def hook(self, response: httpx.Response) -> None:
        """For `httpx.Client(event_hooks={"response": [recorder.hook]})`."""
        response.read()
        self._record(response)

    async def async_hook(self, response: httpx.Response) -> None:
        """For `httpx.AsyncClient(event_hooks={"response": [recorder.async_hook]})`."""
        await response.aread()
        self._record(response)

    def _record(self, response: httpx.Response) -> None:
        if response.request.url.host != httpx.URL(self.base_url).host:
            return  # downloads of output files are not API exchanges
        self.write(Exchange.capture(response, self.base_url, self._secret))

    def write(self, exchange: Exchange) -> Path:
        with self._lock:
            index = len(self.paths) + 1
            name = f"{self._prefix}{index:03d}-{exchange.method.lower()}-{exchange.status}"
            path = self.directory / f"{name}.json"
            self.paths.append(path)
        self.directory.mkdir(parents=True, exist_ok=True)
        document = recording_document(exchange, name=name, base_url=self.base_url)
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path


def recording_document(exchange: Exchange, *, name: str, base_url: str) -> dict[str, Any]:
    """One exchange in the recordings format (contract_tests/recordings/README.md)."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    request: dict[str, Any] = {
        "method": exchange.method,
        "url": exchange.url,
        "headers": exchange.request_headers,
    }
    if exchange.request_json is not None:
        request["json"] = exchange.request_json
    response: dict[str, Any] = {"status": exchange.status, "headers": exchange.response_headers}
    non_json = False
    try:
        body = exchange.json() if exchange.content else None
        response["json"] = body
    except ValueError:
        non_json = True
        response["text"] = exchange.content.decode("utf-8", "replace")
    expect: dict[str, Any]
    if 200 <= exchange.status < 300 and isinstance(response.get("json"), dict):
        expect = {"kind": "prediction", "status": response["json"].get("status")}
    else:
        error = status_error(
            exchange.status, method=exchange.method, url=exchange.url, headers={}, content=exchange.content
        )
        expect = {"kind": "error", "error": type(error).__name__, "fields": {"status": exchange.status}}
    document: dict[str, Any] = {
        "name": name,
        "description": f"Recorded {exchange.summary()}",
        "source": f"comet-replicate record against {httpx.URL(base_url).host} at {now}",
    }
    if non_json:
        document["non_json"] = True
    document.update(request=request, response=response, expect=expect)
    return document
