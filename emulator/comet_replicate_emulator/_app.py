"""The Starlette application: CometAPI's `/replicate/v1` routes and Replicate's `/v1` routes.

Rules come from openapi.yaml (path, header and body schemas, each model's input schema and output
shape); behaviour follows what CometAPI and Replicate document: Bearer auth, 201/202 on create,
`Prefer: wait`, `Cancel-After`, RFC 7807 problem details for invalid input, data removal after an hour.

The API routes are declared once and mounted under each prefix with that API's dialect; every
operation runs through the same middleware (`_middleware.guarded`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Receive, Scope, Send

from . import _handlers, _listing, _pages
from ._config import EmulatorConfig
from ._dialects import DIALECTS
from ._middleware import UseDialect, guarded
from ._operations import CANCEL, CREATE, GET, LIST
from ._responses import DROP
from ._spec import Spec
from ._state import Emulator

API_ROUTES: list[BaseRoute] = [
    Route("/webhooks/default/secret", _handlers.webhook_secret, methods=["GET"]),
    Route(CREATE.template, _handlers.create, methods=["POST"], middleware=guarded(CREATE)),
    Route(LIST.template, _listing.list_predictions, methods=["GET"], middleware=guarded(LIST)),
    Route(GET.template, _handlers.get, methods=["GET"], middleware=guarded(GET)),
    Route(CANCEL.template, _handlers.cancel, methods=["POST"], middleware=guarded(CANCEL)),
]

OTHER_ROUTES: list[BaseRoute] = [
    Route("/files/{prediction_id}/{name}", _pages.files, methods=["GET"]),
    Route("/stream/{prediction_id}", _pages.stream, methods=["GET"]),
    Route("/p/{prediction_id}", _pages.web, methods=["GET"]),
    Route("/_emulator/stats", _pages.stats, methods=["GET"]),
    Route("/_emulator/reset", _pages.reset, methods=["POST"]),
    Route("/openapi.yaml", _pages.openapi, methods=["GET"]),
    Route("/", _pages.index, methods=["GET"]),
]


def build_starlette(emulator: Emulator) -> Starlette:
    """The routes of both APIs over one emulator state (`app.state.emulator`)."""
    mounts: list[BaseRoute] = [
        Mount(
            dialect.prefix,
            app=Router(API_ROUTES, redirect_slashes=False, middleware=[Middleware(UseDialect, dialect)]),
        )
        for dialect in DIALECTS
    ]
    app = Starlette(
        routes=[*mounts, *OTHER_ROUTES],
        exception_handlers={404: _pages.http_404, HTTPException: _pages.http_error},
    )
    app.router.redirect_slashes = False
    app.state.emulator = emulator
    return app


def create_app(config: EmulatorConfig | None = None, *, spec: Spec | None = None) -> EmulatorApp:
    """The emulator as an ASGI app; serve it with uvicorn or call it through httpx.ASGITransport."""
    return EmulatorApp(Emulator(config or EmulatorConfig(), spec))


class EmulatorApp:
    """ASGI entry point. Closes the socket for a dropped-connection fault (raises in process)."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.config = emulator.config
        self.starlette = build_starlette(emulator)

    def stats(self) -> dict[str, Any]:
        return self.emulator.stats.snapshot()

    def reset(self) -> None:
        self.emulator.reset()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.starlette(scope, receive, send)
        if scope["type"] == "http" and scope.get(DROP):
            # uvicorn hands the app its request cycle's bound `send`; the cycle owns the socket.
            cycle = getattr(send, "__self__", None)
            transport = getattr(cycle, "transport", None)
            if transport is None:
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            transport.close()
            # Let the server notice the disconnect so it does not try to answer on a closed socket.
            for _ in range(3):
                await asyncio.sleep(0)
