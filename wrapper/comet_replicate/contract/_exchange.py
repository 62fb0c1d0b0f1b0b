"""One captured API exchange (request and response), as the checker and the recorder see it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["REDACTED_AUTH", "Exchange"]

REDACTED_AUTH = "Bearer <redacted>"
_KEPT_REQUEST_HEADERS = ("content-type", "prefer", "cancel-after")
_KEPT_RESPONSE_HEADERS = ("content-type", "retry-after", "location", "x-request-id")


@dataclass
class Exchange:
    """One request and its response, with the URL relative to the API base URL."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_json: Any
    status: int
    response_headers: dict[str, str]
    content: bytes

    @classmethod
    def capture(cls, response: httpx.Response, base_url: str, secret: str | None = None) -> Exchange:
        request = response.request
        base_path = httpx.URL(base_url).raw_path.decode("ascii").rstrip("/")
        raw = request.url.raw_path.decode("ascii")
        rel = raw[len(base_path) :] if base_path and raw.startswith(base_path) else raw
        req_headers = {"Authorization": REDACTED_AUTH} if "authorization" in request.headers else {}
        for name in _KEPT_REQUEST_HEADERS:
            if name in request.headers:
                req_headers[_title(name)] = request.headers[name]
        body: Any = None
        if request.content:
            try:
                body = json.loads(_scrub(request.content.decode("utf-8", "replace"), secret))
            except ValueError:
                body = None
        resp_headers = {
            _title(n): response.headers[n] for n in _KEPT_RESPONSE_HEADERS if n in response.headers
        }
        content = response.content
        if secret and secret.encode() in content:
            content = content.replace(secret.encode(), b"<redacted>")
        return cls(request.method, rel, req_headers, body, response.status_code, resp_headers, content)

    def json(self) -> Any:
        """The response body as JSON, or raises ValueError."""
        return json.loads(self.content.decode("utf-8"))

    def summary(self) -> str:
        return f"{self.method} {self.url} -> {self.status}"


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "<redacted>") if secret and len(secret) >= 4 else text
