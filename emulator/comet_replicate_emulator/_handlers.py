"""The prediction operations: create, get and cancel, one handler each for both prefixes.

Handlers read the emulator's state from the app and the request's dialect from its scope
(`Call.of`); auth, limits, faults and parameter checks already ran as middleware.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._input_errors import Field, invalid_fields
from ._params import MAX_CANCEL_AFTER_S, parse_cancel_after, parse_prefer_wait
from ._predictions import TERMINAL, Prediction
from ._responses import DIALECT, Call, bearer_token, emulator_of
from ._spec import ModelInfo, Spec
from ._state import Emulator
from ._webhooks import DEFAULT_EVENTS, deliver

REQUEST_SCHEMA = "#/components/schemas/PredictionRequest"
CANCEL_AFTER_PROBLEM = {
    "type": "format",
    "field": "Cancel-After",
    "description": "Cancel-After must be a number of seconds or a duration such as 90s, 5m or 1h30m45s",
}


def base_url(request: Request) -> str:
    """Where clients reach this emulator: the configured public URL or the request's own."""
    return (emulator_of(request.scope).config.public_base_url or str(request.base_url)).rstrip("/")


def input_problems(spec: Spec, info: ModelInfo | None, payload: Any) -> list[Field] | None:
    """Replicate's `invalid_fields` for a create body, or None when it is valid."""
    errors = spec.errors(REQUEST_SCHEMA, payload)
    if not errors and info is not None:
        errors = spec.errors(info.input_ref, payload["input"])
        fields = invalid_fields(errors, "input")
    else:
        fields = invalid_fields(errors, "")
    return fields if errors else None


def _deliver_webhooks(emulator: Emulator, prediction: Prediction) -> None:
    task = asyncio.ensure_future(
        deliver(
            prediction,
            prediction.webhook_events,
            emulator.config.webhook_secret,
            emulator.clock.now,
            emulator.clock.sleep_until,
            emulator.stats.webhook,
        )
    )
    emulator.tasks.add(task)
    task.add_done_callback(emulator.tasks.discard)


def _register(
    call: Call, request: Request, model: str, payload: dict[str, Any], cancel_after: float | None
) -> Prediction:
    """Create and store the prediction: from here on it exists (and would be billed)."""
    emulator = call.emulator
    config = emulator.config
    now = emulator.clock.now()
    fails = emulator.faults.prediction_fails()
    prediction = emulator.builder.build(
        model,
        dict(payload["input"]),
        base_url=base_url(request),
        prefix=call.dialect.prefix,
        now=now,
        taken=emulator.predictions,
        fail_message=config.faults.failed_message if fails else None,
    )
    if cancel_after is not None:
        # Below the documented minimum counts as the minimum; beyond a century as a century.
        prediction.deadline = now + min(max(cancel_after, config.min_cancel_after_s), MAX_CANCEL_AFTER_S)
    prediction.webhook = payload.get("webhook")
    prediction.webhook_events = tuple(payload.get("webhook_events_filter") or DEFAULT_EVENTS)
    emulator.predictions.add(prediction, bearer_token(request.scope))
    emulator.stats.created(prediction.id)
    if prediction.fail_message is not None:
        # An outcome, not a lost answer: the client sees the prediction and its error.
        emulator.stats.fault("failed", "prediction", "outcome", prediction.id)
    if prediction.webhook and config.deliver_webhooks:
        _deliver_webhooks(emulator, prediction)
    return prediction


async def _hold(emulator: Emulator, prediction: Prediction, prefer: str | None) -> int:
    """`Prefer: wait`: keep the answer until the prediction ends or the wait runs out; 201 or 202."""
    if prefer is None:
        return 201
    limit = prediction.created_at + parse_prefer_wait(prefer)
    while True:
        current = emulator.clock.now()
        end, _ = prediction.ending()
        if current >= end or current >= limit:
            break
        await prediction.wait_until(min(end, limit), emulator.clock.sleep_until)
    return 201 if prediction.status_at(emulator.clock.now()) in TERMINAL else 202


async def create(request: Request) -> Response:
    call = Call.of(request.scope)
    emulator = call.emulator
    model = f"{request.path_params['model_owner']}/{request.path_params['model_name']}"
    info = emulator.spec.models.get(model)
    if info is None and not emulator.config.accept_unknown_models:
        return call.reply(404, *call.dialect.unknown_model(model, emulator.request_id))
    try:
        payload = json.loads(await request.body())
    except ValueError:
        return call.error(400, "invalid JSON in request body", "invalid_request")
    fields = input_problems(emulator.spec, info, payload)
    if fields is not None:
        return call.reply(422, *call.dialect.invalid_input(fields))
    header = request.headers.get("cancel-after")
    try:
        cancel_after = parse_cancel_after(header) if header is not None else None
    except ValueError:
        # The spec sets no pattern (Replicate documents none), so the value is well-formed for it and
        # only its meaning is wrong: a 422 naming the header, as for any input Replicate cannot use.
        return call.reply(422, *call.dialect.invalid_input([CANCEL_AFTER_PROBLEM]))
    prediction = _register(call, request, model, payload, cancel_after)
    status = await _hold(emulator, prediction, request.headers.get("prefer"))
    view = prediction.view(emulator.clock.now())
    if emulator.config.create_without_output:
        del view["output"]  # as older Replicate examples answer a create
    request.state.prediction_id = prediction.id
    return call.reply(status, view, headers={"Location": view["urls"]["get"]})


async def get(request: Request) -> Response:
    call = Call.of(request.scope)
    prediction = call.emulator.predictions.get(request.path_params["prediction_id"])
    if prediction is None:
        return call.not_found()
    request.state.prediction_id = prediction.id
    return call.reply(200, prediction.view(call.emulator.clock.now()))


async def cancel(request: Request) -> Response:
    call = Call.of(request.scope)
    prediction = call.emulator.predictions.get(request.path_params["prediction_id"])
    if prediction is None:
        return call.not_found()
    now = call.emulator.clock.now()
    if prediction.status_at(now) not in TERMINAL:
        prediction.cancel_at = now
        prediction.notify()
    request.state.prediction_id = prediction.id
    return call.reply(200, prediction.view(now))


async def webhook_secret(request: Request) -> Response:
    """Replicate's `GET /webhooks/default/secret` (not in the spec, so not self-checked)."""
    emulator = emulator_of(request.scope)
    token = bearer_token(request.scope)
    if token is None or (emulator.config.token is not None and token != emulator.config.token):
        body, media = request.scope[DIALECT].error(401, "Invalid token", "", emulator.request_id)
        return JSONResponse(body, 401, media_type=media)
    return JSONResponse({"key": emulator.config.webhook_secret})
