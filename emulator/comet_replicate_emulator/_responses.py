"""One API request's context (state, dialect, operation) and the answers it sends, self-checked.

Every JSON or HTML answer to an API operation goes through `Call.reply`/`Call.page`, which checks it
against what openapi.yaml declares for that operation and status when `validate_responses` is on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send

from ._dialects import JSON, Dialect
from ._operations import Operation

if TYPE_CHECKING:
    from ._state import Emulator

DROP = "comet_emulator.drop"
DIALECT = "comet_emulator.dialect"
OPERATION = "comet_emulator.operation"
_CALL = "comet_emulator.call"


class Drop(Response):
    """Marks the request for a dropped connection; the outer ASGI layer closes the socket."""

    def __init__(self) -> None:
        super().__init__(status_code=599)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[DROP] = True


def emulator_of(scope: Scope) -> Emulator:
    """The app's state: set on the Starlette app when it is built."""
    emulator: Emulator = scope["app"].state.emulator
    return emulator


def bearer_token(scope: Scope) -> str | None:
    """The token of an `Authorization: Bearer ...` header, or None."""
    for key, value in scope.get("headers", ()):
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


def format_seconds(value: float) -> str:
    """A `Retry-After` value: whole seconds without a decimal point."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Call:
    """What an API request is: which emulator, which dialect (prefix) and which operation."""

    emulator: Emulator
    dialect: Dialect
    operation: Operation

    @classmethod
    def of(cls, scope: Scope) -> Call:
        """The context of the request in `scope` (built once, then cached in the scope)."""
        call = scope.get(_CALL)
        if call is None:
            call = cls(emulator_of(scope), scope[DIALECT], scope[OPERATION])
            scope[_CALL] = call
        assert isinstance(call, Call)
        return call

    def _check(self, status: int, media_type: str, content: bytes) -> None:
        self.emulator.check_response(self.operation, status, media_type, content)

    def reply(
        self, status: int, body: Any, media_type: str = JSON, headers: Mapping[str, str] | None = None
    ) -> Response:
        """A JSON answer, checked against the spec when the self-check is on."""
        content = json.dumps(body, separators=(",", ":")).encode()
        self._check(status, media_type, content)
        return Response(content, status_code=status, media_type=media_type, headers=dict(headers or {}))

    def page(self, status: int, html: str) -> Response:
        """An HTML answer (what a proxy or CDN sends), checked like the JSON ones."""
        self._check(status, "text/html", html.encode())
        return HTMLResponse(html, status_code=status)

    def error(
        self, status: int, message: str, code: str = "", headers: Mapping[str, str] | None = None
    ) -> Response:
        """An error worded in this request's dialect."""
        body, media = self.dialect.error(status, message, code, self.emulator.request_id)
        return self.reply(status, body, media, headers)

    def throttled(self, retry_after: float) -> Response:
        """429 with `Retry-After` (wall seconds) in this dialect."""
        body, media = self.dialect.throttled(retry_after, self.emulator.request_id)
        return self.reply(429, body, media, {"Retry-After": format_seconds(retry_after)})

    def not_found(self) -> Response:
        return self.reply(404, *self.dialect.not_found())
