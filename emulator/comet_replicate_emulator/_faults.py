"""Injected faults: which one strikes a request (seeded dice), when, and what the client then sees.

The dice are read in `ERROR_KINDS` order from their own RNG, apart from the one that draws ids and
durations, so turning faults on does not change which predictions a seed makes.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from starlette.responses import Response

from ._config import ERROR_KINDS, Faults
from ._responses import Call, Drop, format_seconds

HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
    "</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
HTML_524 = (
    '<!DOCTYPE html>\n<html lang="en-US">\n<head><title>524: A timeout occurred</title></head>\n'
    '<body>\n<div id="cf-error-details">\n<h1>A timeout occurred</h1>\n<span>Error code 524</span>\n'
    "<p>The origin web server timed out responding to this request.</p>\n"
    "<p>Cloudflare Ray ID: 0000000000000000</p>\n</div>\n</body>\n</html>\n"
)
TEXT_ERROR = "upstream image service error, please try again later"

# (message, CometAPI code) of the JSON 5xx faults.
_SERVER_ERRORS = {
    500: ("internal server error", ""),
    502: ("upstream error: bad gateway", "bad_response_status_code"),
    503: ("no available channel for this model, please try again later", "model_not_found"),
}
# Kinds the server refuses before acting, whatever the operation.
_ALWAYS_BEFORE = frozenset({"rate_limit", "error_402"})


@dataclass(frozen=True)
class Fault:
    """A fault that strikes one request: `when` is "before" or "after" the operation takes effect."""

    kind: str
    when: str


class FaultInjector:
    """Draws faults, latency and failed outcomes from one seeded RNG."""

    def __init__(self, faults: Faults, seed: int | None) -> None:
        self.faults = faults
        self.rng: random.Random = random.Random(seed ^ 0x5EED) if seed is not None else random.SystemRandom()

    def applies(self, operation: str) -> bool:
        return operation in self.faults.operations

    def draw(self, operation: str) -> Fault | None:
        """The fault striking this request, if any."""
        faults = self.faults
        if not self.applies(operation) or not any(getattr(faults, k) for k in ERROR_KINDS):
            return None
        roll = self.rng.random()
        timing_roll = self.rng.random()
        total = 0.0
        for kind in ERROR_KINDS:
            total += getattr(faults, kind)
            if roll < total:
                return Fault(kind, self._when(kind, operation, timing_roll))
        return None

    def _when(self, kind: str, operation: str, timing_roll: float) -> str:
        if kind == "truncate":  # cuts a real answer short, so the operation runs first
            return "after"
        if kind in _ALWAYS_BEFORE or operation == "get":
            return "before"
        return "after" if timing_roll < self.faults.after_create else "before"

    async def delay(self, operation: str) -> None:
        """The configured latency (wall seconds) before the request is handled."""
        low, high = self.faults.latency
        if self.applies(operation) and high > 0:
            await asyncio.sleep(self.rng.uniform(low, high))

    def prediction_fails(self) -> bool:
        """Whether a new prediction ends `failed` (an outcome the client sees, not a lost answer)."""
        rate = self.faults.failed
        return rate > 0 and self.rng.random() < rate


def fault_answer(call: Call, fault: Fault) -> Response:
    """What the client receives instead of the real answer (truncation is handled by the caller)."""
    kind = fault.kind
    faults = call.emulator.config.faults
    if kind == "drop":
        return Drop()
    if kind == "html_502":
        return call.page(502, HTML_502)
    if kind == "error_524":
        return call.page(524, HTML_524)
    if kind == "rate_limit":
        return call.throttled(faults.retry_after)
    if kind == "error_402":
        return call.reply(402, *call.dialect.insufficient_credit())
    if kind in ("error_text", "message_text"):
        field = "error" if kind == "error_text" else "message"
        return call.reply(faults.text_error_status, {field: TEXT_ERROR})
    status = int(kind.rsplit("_", 1)[1])
    message, code = _SERVER_ERRORS[status]
    headers = {"Retry-After": format_seconds(faults.retry_after)} if status == 503 else None
    return call.error(status, message, code, headers)
