"""Checking a live endpoint against openapi.yaml, and recording exchanges for the contract suite.

Both work on the exchanges an ordinary `Client` makes, captured with an httpx response hook, so what
is checked or recorded is exactly what the client sent and received. Only jsonschema and the bundled
spec are used (no test dependencies): every rule comes from openapi.yaml.

- `contract_check(base_url, api_key)` runs a bounded probe (one unknown-id poll, one poll with a wrong
  key, one flux-schnell prediction created and polled to the end) and lists every response that
  breaks the spec: an undocumented status or content type, a body that fails its schema, a status
  value the spec does not list, or an output that does not match the model's x-models schema.
- `Recorder` writes each exchange as one JSON file in the format of `contract_tests/recordings/`
  (see its README), with the key redacted as `Bearer <redacted>`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "DEFAULT_CHECK_INPUT",
    "DEFAULT_CHECK_MODEL",
    "ContractReport",
    "Exchange",
    "Recorder",
    "check_exchange",
    "contract_check",
]

DEFAULT_CHECK_MODEL = "black-forest-labs/flux-schnell"
DEFAULT_CHECK_INPUT: Mapping[str, Any] = {
    "prompt": "A paper boat floating on calm water at sunrise.",
    "num_outputs": 1,
    "output_format": "webp",
}
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


# --------------------------------------------------------------------------- checking one exchange


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _operation_for(method: str, rel_path: str) -> tuple[str, str, Mapping[str, Any]] | None:
    """(path template, JSON pointer of the operation, operation) matching a request, if any."""
    from ._spec import load_spec

    path = rel_path.split("?", 1)[0]
    for template, item in load_spec().get("paths", {}).items():
        regex = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        op = item.get(method.lower()) if isinstance(item, dict) else None
        if isinstance(op, dict) and re.match(regex, path):
            return template, f"#/paths/{_escape(template)}/{method.lower()}", op
    return None


def _follow(pointer: str, node: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """Follow a `$ref` chain, keeping the JSON pointer of where the node really lives."""
    from ._spec import load_spec

    while "$ref" in node:
        pointer = str(node["$ref"])
        target: Any = load_spec()
        for part in pointer.removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return pointer, node


def _violations(validator: Any, instance: Any, where: str) -> list[str]:
    out = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))[:5]:
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        out.append(f"{where}: {path}: {error.message[:200]} (rule {error.validator})")
    return out


def check_exchange(exchange: Exchange) -> list[str]:
    """Everything in one response that openapi.yaml does not allow (empty list: it conforms)."""
    from ._spec import load_spec, schema_validator

    where = exchange.summary()
    found = _operation_for(exchange.method, exchange.url)
    if found is None:
        return [f"{where}: no operation in openapi.yaml matches {exchange.method} {exchange.url}"]
    template, op_pointer, operation = found
    responses = operation.get("responses", {})
    code = str(exchange.status)
    key = code if code in responses else ("default" if "default" in responses else None)
    if key is None:
        return [f"{where}: status {code} is not documented for {exchange.method} {template}"]
    pointer, response = _follow(f"{op_pointer}/responses/{key}", responses[key])
    content = response.get("content") or {}
    media = exchange.response_headers.get("Content-Type", "").split(";")[0].strip().lower()
    if not content:
        return []
    if media not in content:
        return [f"{where}: content type {media or '(none)'!r} is not documented (allowed: {sorted(content)})"]
    if "json" not in media:
        return []
    try:
        body = exchange.json()
    except ValueError:
        return [f"{where}: the body is not valid JSON although the content type is {media}"]
    schema_pointer = f"{pointer}/content/{_escape(media)}/schema"
    problems = _violations(schema_validator(schema_pointer), body, where)
    if problems or not 200 <= exchange.status < 300 or not isinstance(body, dict):
        return problems
    spec = load_spec()
    statuses = spec["components"]["schemas"]["PredictionStatus"]["enum"]
    if "status" in body and body["status"] not in statuses:
        problems.append(
            f"{where}: $.status: {body['status']!r} is not a status the spec lists {statuses} "
            "(clients fail closed on it)"
        )
    entry = spec.get("x-models", {}).get(body.get("model"))
    if entry and body.get("status") == "succeeded" and body.get("output") is not None:
        problems += _violations(schema_validator(entry["output"]), body["output"], f"{where} output")
    return problems


# --------------------------------------------------------------------------- the probe


@dataclass
class ContractReport:
    """What `contract_check` saw: each exchange, each violation, and notes that are not violations."""

    base_url: str
    exchanges: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations and bool(self.exchanges)

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "ok": self.ok,
            "exchanges": self.exchanges,
            "violations": self.violations,
            "notes": self.notes,
        }


def _capturing_http(on_response: Callable[[httpx.Response], None], timeout: httpx.Timeout) -> httpx.Client:
    from ._version import __version__

    def hook(response: httpx.Response) -> None:
        response.read()
        on_response(response)

    return httpx.Client(
        timeout=timeout,
        follow_redirects=False,
        headers={"User-Agent": f"comet-replicate/{__version__} contract-check"},
        event_hooks={"response": [hook]},
    )


def contract_check(
    base_url: str | None,
    api_key: str,
    *,
    model: str = DEFAULT_CHECK_MODEL,
    input: Mapping[str, Any] | None = None,
    timeout: float = 180.0,
    create: bool = True,
    on_exchange: Callable[[Exchange], None] | None = None,
) -> ContractReport:
    """Probe an endpoint and validate every response against openapi.yaml.

    Bounded: at most one prediction is created (`create=False` skips it: no cost), it is polled until
    terminal or `timeout` seconds, and no request is retried. Errors the client raises on the way
    are notes; the verdict comes from the responses themselves. `on_exchange` sees each exchange
    (the contract suite's live mode validates them once more with openapi-core).
    """
    from . import Client, CometReplicateError
    from ._client import _resolve_base_url

    resolved = _resolve_base_url(base_url)
    report = ContractReport(resolved)
    exchanges: list[Exchange] = []
    lock = threading.Lock()

    def on_response(response: httpx.Response) -> None:
        with lock:
            exchanges.append(Exchange.capture(response, resolved, api_key))

    per_request = httpx.Timeout(60.0, connect=10.0)
    with _capturing_http(on_response, per_request) as http:
        with Client(api_key, base_url=resolved, http_client=http, max_retries=0) as client:
            _attempt(
                report,
                "poll of an unknown id",
                lambda: client.predictions.get("contract-check-unknown-id"),
                CometReplicateError,
            )
        with Client(
            "sk-contract-check-invalid-key", base_url=resolved, http_client=http, max_retries=0
        ) as wrong:
            _attempt(
                report,
                "poll with an invalid key",
                lambda: wrong.predictions.get("contract-check-unknown-id"),
                CometReplicateError,
            )
        if create:
            with Client(api_key, base_url=resolved, http_client=http, max_retries=0) as client:
                created = _attempt(
                    report,
                    f"create {model}",
                    lambda: client.predictions.create(model, dict(input or DEFAULT_CHECK_INPUT), wait=5),
                    CometReplicateError,
                )
                if created is not None:
                    pid = str(created.id)
                    # At least one poll of the new id, even when sync mode already finished it.
                    _attempt(report, f"poll {pid}", lambda: client.predictions.get(pid), CometReplicateError)
                    _attempt(
                        report,
                        f"wait for {pid}",
                        lambda: client.predictions.wait(pid, timeout=timeout),
                        CometReplicateError,
                    )
    for exchange in exchanges:
        if on_exchange is not None:
            on_exchange(exchange)
        report.exchanges.append(exchange.summary())
        report.violations += check_exchange(exchange)
    return report


def _attempt(report: ContractReport, label: str, call: Callable[[], Any], errors: type[Exception]) -> Any:
    try:
        return call()
    except errors as exc:
        report.notes.append(f"{label}: {type(exc).__name__}: {exc}")
        return None


# --------------------------------------------------------------------------- recording


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
    from ._errors import status_error

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
