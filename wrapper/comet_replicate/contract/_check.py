"""Checking a live endpoint against openapi.yaml.

`contract_check(base_url, api_key)` runs a bounded probe (one unknown-id poll, one poll with a wrong
key, one flux-schnell prediction created and polled to the end) with an ordinary `Client` whose
exchanges an httpx response hook captures, and lists every response that breaks the spec: an
undocumented status or content type, a body that fails its schema, a status value the spec does not
list, or an output that does not match the model's x-models schema. Every rule comes from
openapi.yaml through `comet_replicate._spec`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from .._client import Client
from .._errors import CometReplicateError
from .._http import api_client, resolve_base_url
from .._spec import follow_refs, load_spec, violations
from ._exchange import Exchange

__all__ = ["DEFAULT_CHECK_INPUT", "DEFAULT_CHECK_MODEL", "ContractReport", "check_exchange", "contract_check"]

DEFAULT_CHECK_MODEL = "black-forest-labs/flux-schnell"
DEFAULT_CHECK_INPUT: Mapping[str, Any] = {
    "prompt": "A paper boat floating on calm water at sunrise.",
    "num_outputs": 1,
    "output_format": "webp",
}


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _operation_for(method: str, rel_path: str) -> tuple[str, str, Mapping[str, Any]] | None:
    """(path template, JSON pointer of the operation, operation) matching a request, if any."""
    path = rel_path.split("?", 1)[0]
    for template, item in load_spec().get("paths", {}).items():
        regex = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        op = item.get(method.lower()) if isinstance(item, dict) else None
        if isinstance(op, dict) and re.match(regex, path):
            return template, f"#/paths/{_escape(template)}/{method.lower()}", op
    return None


def _violations(pointer: str, instance: Any, where: str) -> list[str]:
    return [f"{where}: {v.path}: {v.message} (rule {v.rule})" for v in violations(pointer, instance)]


def check_exchange(exchange: Exchange) -> list[str]:
    """Everything in one response that openapi.yaml does not allow (empty list: it conforms)."""
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
    pointer, response = follow_refs(f"{op_pointer}/responses/{key}", responses[key])
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
    problems = _violations(schema_pointer, body, where)
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
        problems += _violations(entry["output"], body["output"], f"{where} output")
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
    def hook(response: httpx.Response) -> None:
        response.read()
        on_response(response)

    return api_client(timeout=timeout, event_hooks={"response": [hook]}, agent="contract-check")


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
    resolved = resolve_base_url(base_url)
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
