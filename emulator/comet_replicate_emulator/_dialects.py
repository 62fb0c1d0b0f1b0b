"""How each API words its errors: CometAPI's `{"error": {...}}` envelope, Replicate's problem details.

One object per prefix; handlers and middleware ask the request's dialect instead of comparing prefixes.
Where both APIs answer alike (404 for an unknown prediction, 422 input problems, 402 from upstream
credit), the base class answers for both.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from ._operations import COMET_PREFIX, REPLICATE_PREFIX

PROBLEM = "application/problem+json"
JSON = "application/json"

Body = tuple[dict[str, Any], str]
RequestId = Callable[[], str]

_TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    402: "Insufficient credit",
    404: "Not found",
    429: "Too many requests",
}


class Dialect(ABC):
    """Error bodies shared by both APIs; subclasses word the rest."""

    name = ""
    prefix = ""

    @abstractmethod
    def error(self, status: int, message: str, code: str, request_id: RequestId) -> Body:
        """A generic error with a message and (CometAPI) a machine code."""

    @abstractmethod
    def unauthorized(self, request_id: RequestId) -> Body:
        """A missing or wrong token."""

    @abstractmethod
    def unknown_model(self, model: str, request_id: RequestId) -> Body:
        """A model this API does not serve."""

    @abstractmethod
    def throttled(self, retry_after: float, request_id: RequestId) -> Body:
        """A 429 saying when to come back."""

    def not_found(self) -> Body:
        """An unknown prediction or path: both answer Replicate's problem details."""
        return {"title": "Not found", "detail": "Not found.", "status": 404}, PROBLEM

    def no_route(self, method: str, path: str, request_id: RequestId) -> Body:
        """A route this API does not offer (the list route, when configured so)."""
        return self.not_found()

    def insufficient_credit(self) -> Body:
        """Replicate's 402; CometAPI passes the upstream body through."""
        detail = (
            "You have insufficient credit to run this model. "
            "Go to your account's billing page to purchase credit."
        )
        return {"title": _TITLES[402], "detail": detail, "status": 402}, PROBLEM

    def invalid_input(self, fields: list[dict[str, str]]) -> Body:
        """422 with Replicate's `invalid_fields`; CometAPI forwards it unchanged."""
        detail = "".join(f"- {f['field']}: {f['description']}\n" for f in fields)
        body = {"title": "Input validation failed", "detail": detail, "status": 422, "invalid_fields": fields}
        return body, PROBLEM


class CometDialect(Dialect):
    """CometAPI (`/replicate/v1`): its own envelope, with a request id in every message."""

    name = "cometapi"
    prefix = COMET_PREFIX

    def error(self, status: int, message: str, code: str, request_id: RequestId) -> Body:
        body = {
            "error": {
                "message": f"{message} (request id: {request_id()})",
                "type": "comet_api_error",
                "param": "",
                "code": code,
            }
        }
        return body, JSON

    def unauthorized(self, request_id: RequestId) -> Body:
        return self.error(401, "Invalid token", "", request_id)

    def unknown_model(self, model: str, request_id: RequestId) -> Body:
        return self.error(404, f"model {model} not found", "model_not_found", request_id)

    def throttled(self, retry_after: float, request_id: RequestId) -> Body:
        return self.error(429, "rate limit exceeded, please try again later", "", request_id)

    def no_route(self, method: str, path: str, request_id: RequestId) -> Body:
        return self.error(404, f"Invalid URL ({method} {path})", "", request_id)


class ReplicateDialect(Dialect):
    """Replicate (`/v1`): RFC 7807 problem details."""

    name = "replicate"
    prefix = REPLICATE_PREFIX

    def error(self, status: int, message: str, code: str, request_id: RequestId) -> Body:
        return {"title": _TITLES.get(status, "Error"), "detail": message, "status": status}, PROBLEM

    def unauthorized(self, request_id: RequestId) -> Body:
        body = {
            "title": "Unauthenticated",
            "detail": "You did not pass a valid authentication token",
            "status": 401,
        }
        return body, PROBLEM

    def unknown_model(self, model: str, request_id: RequestId) -> Body:
        return self.not_found()

    def throttled(self, retry_after: float, request_id: RequestId) -> Body:
        wait = max(1, math.ceil(retry_after))
        unit = "second" if wait == 1 else "seconds"
        body = {
            "detail": f"Request was throttled. Expected available in {wait} {unit}.",
            "status": 429,
            "retry_after": retry_after,
        }
        return body, PROBLEM


COMET = CometDialect()
REPLICATE = ReplicateDialect()
DIALECTS: tuple[Dialect, ...] = (COMET, REPLICATE)
