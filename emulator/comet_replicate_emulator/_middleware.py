"""What happens around every API operation, as ASGI middleware, outermost first.

`UseDialect` (per prefix) tells the request which API it speaks; per route, `Counted` names the
operation and counts its answer, `Delayed` adds the configured latency, `Authenticated` checks the
Bearer token, `Limited` applies the rate limits, `Faulted` injects faults (before the operation, or
after it took effect by replacing its answer) and `ParametersChecked` holds the parameters to the spec.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._dialects import Dialect
from ._faults import fault_answer
from ._operations import Operation
from ._params import parameter_problem
from ._responses import DIALECT, DROP, OPERATION, Call, bearer_token, emulator_of


class UseDialect:
    """Marks every request under one prefix with that API's dialect."""

    def __init__(self, app: ASGIApp, dialect: Dialect) -> None:
        self.app = app
        self.dialect = dialect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[DIALECT] = self.dialect
        await self.app(scope, receive, send)


class Counted:
    """Names the operation and counts its answer by status ("dropped" when the connection is cut).

    A client that goes away before its request body arrived (its deadline passed while the request
    waited here) gets no answer: nothing was done, and the request counts as "client_disconnected"
    instead of ending as an exception inside the app.
    """

    def __init__(self, app: ASGIApp, operation: Operation) -> None:
        self.app = app
        self.operation = operation

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[OPERATION] = self.operation
        status: int | None = None
        counted = False

        def count() -> None:
            nonlocal counted
            counted = True
            outcome: int | str = "dropped" if scope.get(DROP) else (status if status is not None else "none")
            emulator_of(scope).stats.request(self.operation.name, outcome)

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body") and not counted:
                count()  # before the last byte leaves: a client holding the whole answer finds it counted
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except ClientDisconnect:
            if not counted:
                counted = True
                emulator_of(scope).stats.request(self.operation.name, "client_disconnected")
            return
        if not counted:
            count()


class _Layer(ABC):
    """A middleware that either answers itself or passes the request on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = await self.answer(Call.of(scope), scope)
        if answer is None:
            await self.app(scope, receive, send)
        else:
            await answer(scope, receive, send)

    @abstractmethod
    async def answer(self, call: Call, scope: Scope) -> Response | None:
        """The answer that ends the request here, or None to go on."""


class Delayed(_Layer):
    """The configured latency, before anything else is decided."""

    async def answer(self, call: Call, scope: Scope) -> Response | None:
        await call.emulator.faults.delay(call.operation.name)
        return None


class Authenticated(_Layer):
    """401 without a Bearer token, or with another token than the configured one."""

    async def answer(self, call: Call, scope: Scope) -> Response | None:
        token = bearer_token(scope)
        expected = call.emulator.config.token
        if token is not None and (expected is None or token == expected):
            return None
        return call.reply(401, *call.dialect.unauthorized(call.emulator.request_id))


class Limited(_Layer):
    """429 above a rate limit: first the per-operation `rpm_limit` fault, then the account limits."""

    async def answer(self, call: Call, scope: Scope) -> Response | None:
        emulator, name = call.emulator, call.operation.name
        now = emulator.clock.now()
        if emulator.faults.applies(name):
            wait = emulator.limits.per_operation(name, now)
            if wait is not None:
                emulator.stats.fault("rpm_limit", name, "before")
                return call.throttled(emulator.wall_seconds(wait))
        wait = emulator.limits.account(name, now)
        return call.throttled(emulator.wall_seconds(wait)) if wait is not None else None


class ParametersChecked(_Layer):
    """404 for a path parameter the spec refuses, 400 for a header or query parameter."""

    async def answer(self, call: Call, scope: Scope) -> Response | None:
        problem = parameter_problem(call.emulator.spec, call.operation, Request(scope))
        if problem is None:
            return None
        where, name = problem
        if where == "path":
            return call.not_found()
        what = f"{name} header" if where == "header" else f"query parameter {name}"
        return call.error(400, f"invalid {what}", "invalid_request")


@dataclass
class _Captured:
    """An answer held back, so a fault can replace it after the operation took effect."""

    messages: list[Message] = field(default_factory=list)

    async def send(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"]) if self.messages else 0

    def truncated(self) -> Response:
        """The same answer with its body cut in half (never to nothing)."""
        start = self.messages[0]
        media = dict(start.get("headers", ())).get(b"content-type", b"application/json").decode()
        body = b"".join(m.get("body", b"") for m in self.messages[1:])
        return Response(body[: max(1, len(body) // 2)], status_code=self.status, media_type=media)

    async def replay(self, send: Send) -> None:
        for message in self.messages:
            await send(message)


class Faulted:
    """Injects the fault the dice choose; "after" faults let the operation act, then lose its answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        call = Call.of(scope)
        name = call.operation.name
        stats = call.emulator.stats
        fault = call.emulator.faults.draw(name)
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.when == "before":
            stats.fault(fault.kind, name, "before")
            await fault_answer(call, fault)(scope, receive, send)
            return
        captured = _Captured()
        await self.app(scope, receive, captured.send)
        if not 200 <= captured.status < 300:
            await captured.replay(send)
            return
        # The operation took effect (a paid prediction exists), but the answer is lost.
        stats.fault(fault.kind, name, "after", scope.get("state", {}).get("prediction_id"))
        answer = captured.truncated() if fault.kind == "truncate" else fault_answer(call, fault)
        await answer(scope, receive, send)


def guarded(operation: Operation) -> list[Middleware]:
    """The middleware every API operation runs through, outermost first."""
    return [
        Middleware(Counted, operation=operation),
        Middleware(Delayed),
        Middleware(Authenticated),
        Middleware(Limited),
        Middleware(Faulted),
        Middleware(ParametersChecked),
    ]
