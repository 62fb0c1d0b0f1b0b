"""The Starlette application: CometAPI's `/replicate/v1` routes and Replicate's `/v1` routes.

Rules come from openapi.yaml (path, header and body schemas, each model's input schema and output
shape); behaviour follows what CometAPI and Replicate document: Bearer auth, 201/202 on create,
`Prefer: wait`, `Cancel-After`, RFC 7807 problem details for invalid input, data removal after an hour.
"""

from __future__ import annotations

import asyncio
import html
import json
import math
import os
import random
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import httpx
from jsonschema.exceptions import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ._clock import Clock, ScaledClock
from ._config import ERROR_KINDS, EmulatorConfig
from ._images import FORMATS, ImageCache, ImageSpec, output_size, render
from ._predictions import TERMINAL, Prediction
from ._spec import Spec, default_spec
from ._stats import Stats
from ._webhooks import DEFAULT_EVENTS, deliver

COMET_PREFIX = "/replicate/v1"
REPLICATE_PREFIX = "/v1"
CREATE_PATH = "/models/{model_owner}/{model_name}/predictions"
GET_PATH = "/predictions/{prediction_id}"
CANCEL_PATH = "/predictions/{prediction_id}/cancel"
PROBLEM = "application/problem+json"
MAX_CANCEL_AFTER_S = 100 * 365.25 * 86400
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_DROP = "comet_emulator.drop"
HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
    "</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def parse_cancel_after(value: str) -> float:
    """Seconds in a `Cancel-After` value (`90`, `5m`, `1h30m45s`); the spec's pattern was checked before."""
    if value.isdigit():
        return float(value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(value)
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


def parse_prefer_wait(value: str) -> float:
    """Seconds in a `Prefer: wait[=N]` value; bare `wait` means 60, as Replicate documents."""
    _, _, number = value.partition("=")
    return float(number) if number else 60.0


# Replicate reports input errors with gojsonschema's error type names.
_ERROR_TYPES = {
    "required": "required",
    "enum": "enum",
    "const": "const",
    "type": "invalid_type",
    "maximum": "number_lte",
    "minimum": "number_gte",
    "exclusiveMaximum": "number_lt",
    "exclusiveMinimum": "number_gt",
    "additionalProperties": "additional_property_not_allowed",
    "maxItems": "array_max_items",
    "minItems": "array_min_items",
    "maxLength": "string_lte",
    "minLength": "string_gte",
    "pattern": "pattern",
    "format": "format",
    "multipleOf": "multiple_of",
}


def _quote(value: Any) -> str:
    return json.dumps(value)


def _describe(error: ValidationError, name: str) -> str:
    """A gojsonschema-style sentence, which is what Replicate puts in `invalid_fields[].description`."""
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    kind = error.validator
    if kind == "enum":
        allowed = error.validator_value if isinstance(error.validator_value, list) else []
        return f"{name} must be one of the following: " + ", ".join(_quote(v) for v in allowed)
    if kind == "type":
        expected = error.validator_value
        expected = "/".join(expected) if isinstance(expected, list) else expected
        given = type(error.instance).__name__
        given = {
            "str": "string",
            "int": "integer",
            "float": "number",
            "bool": "boolean",
            "NoneType": "null",
        }.get(given, {"dict": "object", "list": "array"}.get(given, given))
        return f"Invalid type. Expected: {expected}, given: {given}"
    if kind == "maximum":
        return f"Must be less than or equal to {schema.get('maximum')}"
    if kind == "minimum":
        return f"Must be greater than or equal to {schema.get('minimum')}"
    if kind == "format":
        return f"Does not match format '{error.validator_value}'"
    if kind == "maxItems":
        return f"Array must have at most {error.validator_value} items"
    return error.message


def invalid_fields(errors: list[ValidationError], prefix: str) -> list[dict[str, str]]:
    """Map jsonschema errors to Replicate's `invalid_fields` entries (field paths like `input.seed`)."""
    fields: list[dict[str, str]] = []
    for error in errors:
        path = [str(p) for p in error.absolute_path]
        if error.validator == "required" and isinstance(error.instance, Mapping):
            required = error.validator_value if isinstance(error.validator_value, list) else []
            for name in (r for r in required if r not in error.instance):
                field = ".".join(filter(None, [prefix, *path, str(name)]))
                fields.append({"type": "required", "field": field, "description": f"{name} is required"})
            continue
        if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            schema = error.schema if isinstance(error.schema, Mapping) else {}
            known = schema.get("properties", {})
            patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
            extras = [k for k in error.instance if k not in known and not any(p.search(k) for p in patterns)]
            for name in extras:
                field = ".".join(filter(None, [prefix, *path])) or "(root)"
                fields.append(
                    {
                        "type": "additional_property_not_allowed",
                        "field": field,
                        "description": f"Additional property {name} is not allowed",
                    }
                )
            continue
        field = ".".join(filter(None, [prefix, *path])) or "(root)"
        name = path[-1] if path else (prefix or "(root)")
        fields.append(
            {
                "type": _ERROR_TYPES.get(str(error.validator), str(error.validator)),
                "field": field,
                "description": _describe(error, name),
            }
        )
    unique: list[dict[str, str]] = []
    for entry in fields:  # one jsonschema error per missing property would repeat the others
        if entry not in unique:
            unique.append(entry)
    return unique


class _Fault:
    def __init__(self, kind: str, when: str) -> None:
        self.kind = kind
        self.when = when


class _Drop(Response):
    """Marks the request for a dropped connection; the outer ASGI layer closes the socket."""

    def __init__(self) -> None:
        super().__init__(status_code=599)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[_DROP] = True


class Emulator:
    """State shared by every request: predictions, counters, RNGs, the clock and the spec."""

    def __init__(self, config: EmulatorConfig, spec: Spec | None = None) -> None:
        self.config = config
        self.spec = spec or default_spec()
        self.clock: Clock = config.clock or ScaledClock(config.speed)
        self.speed = 1.0 if config.clock is not None else config.speed
        self.stats = Stats()
        self.images = ImageCache(config.image_cache_bytes)
        # Drawing is CPU and memory heavy (an ultra image is 12 MB raw): a few at a time, whatever
        # the number of downloads in flight.
        self._render_slots = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))
        self.predictions: dict[str, Prediction] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._seed_rngs()

    def render(self, spec: ImageSpec) -> bytes:
        """Encode one output file (runs in a worker thread)."""
        with self._render_slots:
            return render(spec)

    def _seed_rngs(self) -> None:
        seed = self.config.seed
        self.rng: random.Random = random.Random(seed) if seed is not None else random.SystemRandom()
        self.fault_rng: random.Random = (
            random.Random(seed ^ 0x5EED) if seed is not None else random.SystemRandom()
        )
        self._windows: dict[str, deque[float]] = {}
        self._request_seq = 0

    def reset(self) -> None:
        """Forget predictions, counters and cached files; reseed, so a run can be repeated."""
        for task in list(self.tasks):
            task.get_loop().call_soon_threadsafe(task.cancel)
        self.tasks.clear()
        self.predictions.clear()
        self.stats.reset()
        self.images.clear()
        self._seed_rngs()

    # -- helpers --------------------------------------------------------------------------------

    def request_id(self) -> str:
        self._request_seq += 1
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(self.clock.now()))
        return f"{stamp}{self._request_seq:09d}"

    def new_id(self) -> str:
        while True:
            pid = "".join(self.rng.choice(_ID_ALPHABET) for _ in range(26))
            if pid not in self.predictions:
                return pid

    def durations(self, model: str, inp: Mapping[str, Any]) -> tuple[float, float]:
        if self.config.duration_fn is not None:
            queue_s, run_s = self.config.duration_fn(model, inp)
            return max(0.0, float(queue_s)), max(0.0, float(run_s))
        timing = self.config.timing(model)
        if self.config.durations == "fixed":
            return timing.queue_s, timing.run_s
        sigma = timing.spread

        # Mean-preserving lognormal: the average stays at the model's typical time.
        def factor() -> float:
            return self.rng.lognormvariate(-sigma * sigma / 2, sigma)

        return timing.queue_s * factor(), timing.run_s * factor()

    def error_body(
        self, prefix: str, status: int, message: str, code: str = ""
    ) -> tuple[dict[str, Any], str]:
        """CometAPI's envelope on its own routes, Replicate's problem details on `/v1`."""
        if prefix == COMET_PREFIX:
            body = {
                "error": {
                    "message": f"{message} (request id: {self.request_id()})",
                    "type": "comet_api_error",
                    "param": "",
                    "code": code,
                }
            }
            return body, "application/json"
        titles = {400: "Bad request", 401: "Unauthenticated", 404: "Not found", 429: "Too many requests"}
        return {"title": titles.get(status, "Error"), "detail": message, "status": status}, PROBLEM

    # -- responses ------------------------------------------------------------------------------

    def respond(
        self,
        op: str,
        template: str,
        method: str,
        status: int,
        body: Any,
        media_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        content = json.dumps(body, separators=(",", ":")).encode()
        if self.config.validate_responses:
            try:
                self.spec.validate_response(template, method, status, media_type, content)
            except AssertionError as exc:
                self.stats.violation(str(exc))
                raise
        return Response(content, status_code=status, media_type=media_type, headers=dict(headers or {}))

    def fault_response(self, fault: _Fault, op: str, template: str, method: str, prefix: str) -> Response:
        kind = fault.kind
        if kind == "drop":
            return _Drop()
        if kind == "html_502":
            if self.config.validate_responses:
                self.spec.validate_response(template, method, 502, "text/html", HTML_502.encode())
            return HTMLResponse(HTML_502, status_code=502)
        if kind == "rate_limit":
            return self.throttled(op, template, method, prefix, self.config.faults.retry_after)
        status = int(kind.rsplit("_", 1)[1])
        messages = {
            500: ("internal server error", ""),
            502: ("upstream error: bad gateway", "bad_response_status_code"),
            503: ("no available channel for this model, please try again later", "model_not_found"),
        }
        message, code = messages[status]
        body, media = self.error_body(prefix, status, message, code)
        headers = {"Retry-After": _seconds(self.config.faults.retry_after)} if status == 503 else None
        return self.respond(op, template, method, status, body, media, headers)

    def throttled(self, op: str, template: str, method: str, prefix: str, retry_after: float) -> Response:
        if prefix == COMET_PREFIX:
            body, media = self.error_body(prefix, 429, "rate limit exceeded, please try again later", "")
        else:
            wait = max(1, math.ceil(retry_after))
            unit = "second" if wait == 1 else "seconds"
            body = {
                "detail": f"Request was throttled. Expected available in {wait} {unit}.",
                "status": 429,
                "retry_after": retry_after,
            }
            media = PROBLEM
        return self.respond(op, template, method, 429, body, media, {"Retry-After": _seconds(retry_after)})

    # -- faults ---------------------------------------------------------------------------------

    def over_rpm(self, op: str) -> float | None:
        """Seconds (wall) until a slot frees when `op` is above the requests-per-minute limit."""
        limit = self.config.faults.rpm_limit
        if limit is None:
            return None
        now = self.clock.now()
        window = self._windows.setdefault(op, deque())
        while window and window[0] <= now - 60.0:
            window.popleft()
        if len(window) >= limit:
            return max(0.0, (window[0] + 60.0 - now) / self.speed)
        window.append(now)
        return None

    def draw_fault(self, op: str) -> _Fault | None:
        faults = self.config.faults
        if op not in faults.operations or not any(getattr(faults, k) for k in ERROR_KINDS):
            return None
        roll = self.fault_rng.random()
        timing_roll = self.fault_rng.random()
        total = 0.0
        for kind in ERROR_KINDS:
            total += getattr(faults, kind)
            if roll < total:
                if kind == "truncate":  # cuts a real answer short, so the operation runs first
                    return _Fault(kind, "after")
                if kind == "rate_limit" or op == "get":
                    return _Fault(kind, "before")
                return _Fault(kind, "after" if timing_roll < faults.after_create else "before")
        return None

    async def latency(self, op: str) -> None:
        faults = self.config.faults
        low, high = faults.latency
        if op in faults.operations and high > 0:
            await asyncio.sleep(self.fault_rng.uniform(low, high))

    # -- prediction building ----------------------------------------------------------------------

    def build(self, model: str, inp: dict[str, Any], base_url: str, prefix: str, now: float) -> Prediction:
        info = self.spec.models.get(model)
        effective: dict[str, Any] = dict(inp)
        if info is not None:
            for name, prop in info.properties.items():
                if name not in effective and isinstance(prop, Mapping) and "default" in prop:
                    effective[name] = prop["default"]
        seed = effective.get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool):
            seed = self.rng.randrange(2**31)
        fmt = effective.get("output_format")
        if fmt not in FORMATS:
            fmt = "webp"
        quality = effective.get("output_quality")
        if not isinstance(quality, int) or isinstance(quality, bool):
            quality = 80
        count = effective.get("num_outputs", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            count = 1
        count = min(count, 16)
        if info is not None:
            width, height = output_size(model, effective)
        else:
            width, height = 1024, 1024
        prompt = str(effective.get("prompt", ""))
        images = [
            ImageSpec(width, height, fmt, max(0, min(100, quality)), prompt, seed, i) for i in range(count)
        ]
        steps = effective.get("num_inference_steps")
        queue_s, run_s = self.durations(model, inp)
        pid = self.new_id()
        failed = self.config.faults.failed > 0 and self.fault_rng.random() < self.config.faults.failed
        return Prediction(
            id=pid,
            model=model,
            input=inp,
            effective=effective,
            created_at=now,
            queue_s=queue_s,
            run_s=run_s,
            seed=seed,
            images=images,
            output_is_list=info.output_is_list if info is not None else True,
            base_url=base_url,
            api_prefix=prefix,
            retention_s=self.config.retention(),
            steps=steps if isinstance(steps, int) and not isinstance(steps, bool) else None,
            fail_message=self.config.faults.failed_message if failed else None,
        )


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _param_errors(emulator: Emulator, template: str, method: str, request: Request) -> tuple[str, str] | None:
    """The first path or header parameter that breaks the spec, as (location, name)."""
    for param, pointer in emulator.spec.parameters(template, method):
        name, where = param["name"], param["in"]
        if where == "path":
            value: Any = request.path_params.get(name)
        elif where == "header":
            value = request.headers.get(name)
        else:  # pragma: no cover - the spec has only path and header parameters
            continue
        if value is None:
            if param.get("required"):
                return where, name
            continue
        if not emulator.spec.validator(pointer).is_valid(value):
            return where, name
    return None


def create_app(config: EmulatorConfig | None = None, *, spec: Spec | None = None) -> EmulatorApp:
    """The emulator as an ASGI app; serve it with uvicorn or call it through httpx.ASGITransport."""
    return EmulatorApp(Emulator(config or EmulatorConfig(), spec))


class EmulatorApp:
    """ASGI entry point. Closes the socket for a dropped-connection fault (raises in process)."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.config = emulator.config
        self.starlette = _build_starlette(emulator)

    def stats(self) -> dict[str, Any]:
        return self.emulator.stats.snapshot()

    def reset(self) -> None:
        self.emulator.reset()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.starlette(scope, receive, send)
        if scope["type"] == "http" and scope.get(_DROP):
            # uvicorn hands the app its request cycle's bound `send`; the cycle owns the socket.
            cycle = getattr(send, "__self__", None)
            transport = getattr(cycle, "transport", None)
            if transport is None:
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            transport.close()
            # Let the server notice the disconnect so it does not try to answer on a closed socket.
            for _ in range(3):
                await asyncio.sleep(0)


def _build_starlette(emu: Emulator) -> Starlette:
    config = emu.config

    def base_url(request: Request) -> str:
        return (config.public_base_url or str(request.base_url)).rstrip("/")

    def authorized(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        return config.token is None or token == config.token

    def api(
        op: str, template: str, method: str, prefix: str
    ) -> Callable[[Callable[[Request, Callable[..., Response]], Awaitable[Response]]], Any]:
        """Wrap an operation with latency, auth, parameter checks and fault injection."""

        def decorate(handler: Callable[[Request, Callable[..., Response]], Awaitable[Response]]) -> Any:
            async def endpoint(request: Request) -> Response:
                response = await guarded(request)
                emu.stats.request(op, "dropped" if isinstance(response, _Drop) else response.status_code)
                return response

            async def guarded(request: Request) -> Response:
                await emu.latency(op)
                fault = emu.draw_fault(op)

                def reply(status: int, body: Any, media: str = "application/json", **kw: Any) -> Response:
                    return emu.respond(op, template, method, status, body, media, kw.get("headers"))

                if not authorized(request):
                    if prefix == COMET_PREFIX:
                        body, media = emu.error_body(prefix, 401, "Invalid token")
                    else:
                        body = {
                            "title": "Unauthenticated",
                            "detail": "You did not pass a valid authentication token",
                            "status": 401,
                        }
                        media = PROBLEM
                    return reply(401, body, media)
                if op in config.faults.operations:
                    wait = emu.over_rpm(op)
                    if wait is not None:
                        emu.stats.fault("rpm_limit", op, "before")
                        return emu.throttled(op, template, method, prefix, wait)
                if fault is not None and fault.when == "before":
                    emu.stats.fault(fault.kind, op, "before")
                    return emu.fault_response(fault, op, template, method, prefix)
                bad = _param_errors(emu, template, method, request)
                if bad is not None:
                    where, name = bad
                    if where == "path":
                        return reply(404, *not_found())
                    body, media = emu.error_body(prefix, 400, f"invalid {name} header", "invalid_request")
                    return reply(400, body, media)
                response = await handler(request, reply)
                if fault is not None and fault.when == "after" and 200 <= response.status_code < 300:
                    # The operation took effect (a paid prediction exists), but the answer is lost.
                    emu.stats.fault(fault.kind, op, "after", getattr(request.state, "prediction_id", None))
                    if fault.kind == "truncate":
                        data = bytes(response.body)
                        return Response(
                            data[: max(1, len(data) // 2)],
                            status_code=response.status_code,
                            media_type=response.media_type,
                        )
                    return emu.fault_response(fault, op, template, method, prefix)
                return response

            return endpoint

        return decorate

    def not_found() -> tuple[dict[str, Any], str]:
        return {"title": "Not found", "detail": "Not found.", "status": 404}, PROBLEM

    def make_routes(prefix: str) -> list[Route]:
        @api("create", CREATE_PATH, "post", prefix)
        async def create(request: Request, reply: Callable[..., Response]) -> Response:
            model = f"{request.path_params['model_owner']}/{request.path_params['model_name']}"
            info = emu.spec.models.get(model)
            if info is None and not config.accept_unknown_models:
                if prefix == COMET_PREFIX:
                    body, media = emu.error_body(prefix, 404, f"model {model} not found", "model_not_found")
                else:
                    body, media = not_found()
                return reply(404, body, media)
            raw = await request.body()
            try:
                payload = json.loads(raw)
            except ValueError:
                body, media = emu.error_body(prefix, 400, "invalid JSON in request body", "invalid_request")
                return reply(400, body, media)
            errors = emu.spec.errors("#/components/schemas/PredictionRequest", payload)
            if not errors and info is not None:
                errors = emu.spec.errors(info.input_ref, payload["input"])
                fields = invalid_fields(errors, "input")
            else:
                fields = invalid_fields(errors, "")
            if errors:
                detail = "".join(f"- {f['field']}: {f['description']}\n" for f in fields)
                problem: dict[str, Any] = {
                    "title": "Input validation failed",
                    "detail": detail,
                    "status": 422,
                }
                problem["invalid_fields"] = fields
                return reply(422, problem, PROBLEM)
            now = emu.clock.now()
            prediction = emu.build(model, dict(payload["input"]), base_url(request), prefix, now)
            cancel_after = request.headers.get("cancel-after")
            if cancel_after is not None:
                # Below the documented minimum counts as the minimum; beyond a century (the spec's
                # pattern admits any number of digits) as a century, so the deadline stays a date.
                seconds = min(
                    max(parse_cancel_after(cancel_after), config.min_cancel_after_s), MAX_CANCEL_AFTER_S
                )
                prediction.deadline = now + seconds
            prediction.webhook = payload.get("webhook")
            prediction.webhook_events = tuple(payload.get("webhook_events_filter") or DEFAULT_EVENTS)
            emu.predictions[prediction.id] = prediction
            emu.stats.created(prediction.id)
            if prediction.fail_message is not None:
                # An outcome, not a lost answer: the client sees the prediction and its error.
                emu.stats.fault("failed", "prediction", "outcome", prediction.id)
            if prediction.webhook and config.deliver_webhooks:
                task = asyncio.ensure_future(
                    deliver(
                        prediction,
                        prediction.webhook_events,
                        config.webhook_secret,
                        emu.clock.now,
                        emu.clock.sleep_until,
                        emu.stats.webhook,
                    )
                )
                emu.tasks.add(task)
                task.add_done_callback(emu.tasks.discard)
            status = 201
            prefer = request.headers.get("prefer")
            if prefer is not None:
                limit = now + parse_prefer_wait(prefer)
                while True:
                    current = emu.clock.now()
                    end, _ = prediction.ending()
                    if current >= end or current >= limit:
                        break
                    await prediction.wait_until(min(end, limit), emu.clock.sleep_until)
                if prediction.status_at(emu.clock.now()) not in TERMINAL:
                    status = 202
            view = prediction.view(emu.clock.now())
            request.state.prediction_id = prediction.id
            return reply(status, view, headers={"Location": view["urls"]["get"]})

        @api("get", GET_PATH, "get", prefix)
        async def get(request: Request, reply: Callable[..., Response]) -> Response:
            prediction = emu.predictions.get(request.path_params["prediction_id"])
            if prediction is None:
                body, media = not_found()
                return reply(404, body, media)
            request.state.prediction_id = prediction.id
            return reply(200, prediction.view(emu.clock.now()))

        @api("cancel", CANCEL_PATH, "post", prefix)
        async def cancel(request: Request, reply: Callable[..., Response]) -> Response:
            prediction = emu.predictions.get(request.path_params["prediction_id"])
            if prediction is None:
                body, media = not_found()
                return reply(404, body, media)
            now = emu.clock.now()
            if prediction.status_at(now) not in TERMINAL:
                prediction.cancel_at = now
                prediction.notify()
            request.state.prediction_id = prediction.id
            return reply(200, prediction.view(now))

        async def webhook_secret(request: Request) -> Response:
            if not authorized(request):
                body, media = emu.error_body(prefix, 401, "Invalid token")
                return JSONResponse(body, 401, media_type=media)
            return JSONResponse({"key": config.webhook_secret})

        return [
            Route(prefix + "/webhooks/default/secret", webhook_secret, methods=["GET"]),
            Route(prefix + CREATE_PATH, create, methods=["POST"]),
            Route(prefix + GET_PATH, get, methods=["GET"]),
            Route(prefix + CANCEL_PATH, cancel, methods=["POST"]),
        ]

    async def files(request: Request) -> Response:
        prediction = emu.predictions.get(request.path_params["prediction_id"])
        name = request.path_params["name"]
        now = emu.clock.now()
        index = None
        servable = prediction is not None and prediction.status_at(now) == "succeeded"
        if prediction is not None and servable and not prediction.data_removed_at(now):
            names = [prediction.file_name(i) for i in range(len(prediction.images))]
            index = names.index(name) if name in names else None
        if prediction is None or index is None:
            emu.stats.request("files", 404)
            return Response("Not found", status_code=404, media_type="text/plain")
        spec = prediction.images[index]
        key = (prediction.id, index)
        data = emu.images.get(key)
        if data is None:
            data = await run_in_threadpool(emu.render, spec)
            emu.images.put(key, data)
        emu.stats.request("files", 200)
        return Response(
            data,
            media_type=spec.media_type,
            headers={
                "Cache-Control": "public, max-age=3600",
                "Content-Disposition": f'inline; filename="{name}"',
            },
        )

    async def stream(request: Request) -> Response:
        prediction = emu.predictions.get(request.path_params["prediction_id"])
        if prediction is None:
            return Response("Not found", status_code=404, media_type="text/plain")

        async def events() -> AsyncIterator[bytes]:
            while True:
                end, _ = prediction.ending()
                if emu.clock.now() >= end:
                    break
                await prediction.wait_until(end, emu.clock.sleep_until)
            view = prediction.view(emu.clock.now())
            if view["status"] == "succeeded":
                outputs = view["output"] if isinstance(view["output"], list) else [view["output"]]
                for url in outputs:
                    if url is not None:
                        yield f"event: output\nid: {prediction.id}\ndata: {url}\n\n".encode()
            elif view["status"] == "failed":
                yield f"event: error\ndata: {json.dumps({'detail': view['error']})}\n\n".encode()
            yield b"event: done\ndata: {}\n\n"

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    async def web(request: Request) -> Response:
        prediction = emu.predictions.get(request.path_params["prediction_id"])
        if prediction is None:
            return HTMLResponse("<h1>Not found</h1>", status_code=404)
        view = prediction.view(emu.clock.now())
        outputs = view["output"] if isinstance(view["output"], list) else [view["output"]]
        images = "".join(f'<img src="{html.escape(u)}" width="256">' for u in outputs if u)
        page = (
            f"<html><head><title>Prediction {html.escape(prediction.id)}</title></head><body>"
            f"<h1>{html.escape(prediction.model)}</h1><p>Status: {html.escape(view['status'])}</p>"
            f"<pre>{html.escape(json.dumps(view, indent=2))}</pre>{images}</body></html>"
        )
        return HTMLResponse(page)

    async def stats(request: Request) -> Response:
        return JSONResponse(emu.stats.snapshot())

    async def reset(request: Request) -> Response:
        emu.reset()
        return JSONResponse({"reset": True})

    async def openapi(request: Request) -> Response:
        return Response(emu.spec.text, media_type="application/yaml")

    async def index(request: Request) -> Response:
        return JSONResponse(
            {
                "service": "comet-replicate emulator",
                "cometapi_base_url": base_url(request) + COMET_PREFIX,
                "replicate_base_url": base_url(request) + REPLICATE_PREFIX,
                "models": sorted(emu.spec.models),
            }
        )

    async def http_404(request: Request, exc: Exception) -> Response:
        return JSONResponse(
            {"title": "Not found", "detail": "Not found.", "status": 404}, 404, media_type=PROBLEM
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return Response(exc.detail, status_code=exc.status_code, headers=exc.headers, media_type="text/plain")

    routes = [
        *make_routes(COMET_PREFIX),
        *make_routes(REPLICATE_PREFIX),
        Route("/files/{prediction_id}/{name}", files, methods=["GET"]),
        Route("/stream/{prediction_id}", stream, methods=["GET"]),
        Route("/p/{prediction_id}", web, methods=["GET"]),
        Route("/_emulator/stats", stats, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/openapi.yaml", openapi, methods=["GET"]),
        Route("/", index, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: http_404, HTTPException: http_error})
    app.router.redirect_slashes = False
    return app
