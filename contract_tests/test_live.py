"""Live mode: the conformance checks against the real endpoint (opt-in, one flux-schnell prediction).

Runs only with COMETAPI_KEY and COMET_REPLICATE_LIVE=1 (COMETAPI_BASE_URL picks another endpoint);
otherwise it is skipped with the reason shown in pytest's summary (-ra). Every response is validated
twice — by the wrapper's own `contract_check` (jsonschema) and by openapi-core here — and every
violation is listed in the failure message.
"""

from __future__ import annotations

import json
import os

import httpx
import pytest
from comet_replicate.contract import Exchange, contract_check

from contract_tests._spec import API_KEY, SPEC, response_errors

LIVE = bool(os.environ.get("COMETAPI_KEY")) and os.environ.get("COMET_REPLICATE_LIVE") == "1"
pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not LIVE, reason="live contract check: set COMETAPI_KEY and COMET_REPLICATE_LIVE=1 to run it"
    ),
]


def _as_httpx(exchange: Exchange, base_url: str) -> tuple[httpx.Request, httpx.Response]:
    headers = {
        k: (f"Bearer {API_KEY}" if k == "Authorization" else v) for k, v in exchange.request_headers.items()
    }
    kwargs = {"json": exchange.request_json} if exchange.request_json is not None else {}
    request = httpx.Request(exchange.method, base_url + exchange.url, headers=headers, **kwargs)
    return request, httpx.Response(
        exchange.status, headers=exchange.response_headers, content=exchange.content, request=request
    )


def test_live_endpoint_conforms_to_the_spec() -> None:
    base_url = os.environ.get("COMETAPI_BASE_URL") or SPEC["servers"][0]["url"]
    independent: list[str] = []

    def validate(exchange: Exchange) -> None:
        request, response = _as_httpx(exchange, base_url.rstrip("/"))
        independent.extend(f"{exchange.summary()}: {p}" for p in response_errors(request, response))

    report = contract_check(base_url, os.environ["COMETAPI_KEY"], timeout=180.0, on_exchange=validate)
    print(json.dumps(report.to_dict(), indent=2))  # shown with -s or on failure
    violations = report.violations + independent
    assert report.exchanges, "no response received"
    assert not violations, "\n".join(violations)
