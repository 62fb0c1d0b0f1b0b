"""The create: prepared and validated before anything is sent, never repeated once it may have
reached the server, and never ending in a parsing error once the server answered with an id.

It sends the optional `Prefer` and `Cancel-After` headers until the server refuses them once (a
400 created nothing, so one retry without them is safe, and the client family stops sending them).
When the create may have reached the server but no id came back — a read timeout or a dropped
connection after sending, a 5xx or 524, a 2xx cut short or without a usable id — it raises
`CreateOutcomeUnknown`: the prediction may exist and be billed, and only the caller can decide.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from typing import TYPE_CHECKING, Any

import httpx

from .. import _generated, core  # core.reconcile loads only after a lost answer
from .._constants import DEFAULT_BASE_URL, MIN_CANCEL_AFTER, REPLICATE_BASE_URL, SYNC_MODE_MARGIN
from .._errors import (
    APIConnectionError,
    APIStatusError,
    BadRequestError,
    CometReplicateError,
    ContractViolation,
    CreateOutcomeUnknown,
    InputValidationError,
    InternalServerError,
)
from .._generated import CREATE
from .._inputs import input_sha256, parse_cancel_after, prepare_input, split_model
from .effects import Flow, Reply
from .operations import Answer
from .parse import Unreadable, parse_prediction
from .request import request
from .retry import Deadline, Failure, OpKind, cancel_after_header, failure_of
from .state import State

if TYPE_CHECKING:
    from comet_replicate_api.models import Prediction

__all__ = ["create_raw"]

log = logging.getLogger("comet_replicate")


def _prefer(wait: int | None) -> str | None:
    if wait is None:
        return None
    if isinstance(wait, bool) or not isinstance(wait, int) or not 1 <= wait <= 60:
        raise InputValidationError(
            f"wait={wait!r} is not allowed; use whole seconds from 1 to 60 (Prefer: wait=N), or None",
            field="wait",
            value=wait,
            allowed="an integer from 1 to 60, or None",
        )
    return f"wait={wait}"


def cancel_after_value(cancel_after: float | str | None) -> str | None:
    """The `Cancel-After` header: Replicate's documented form (seconds, or h/m/s units), never less
    than its 5 s minimum — a shorter deadline is rounded up to 5 s rather than refused."""
    if cancel_after is None:
        return None
    if isinstance(cancel_after, str):
        seconds = parse_cancel_after(cancel_after)
        return cancel_after.strip() if seconds >= MIN_CANCEL_AFTER else cancel_after_header(seconds)
    if (
        isinstance(cancel_after, int | float)
        and not isinstance(cancel_after, bool)
        and math.isfinite(cancel_after)
        and cancel_after > 0
    ):
        return cancel_after_header(float(cancel_after))
    raise InputValidationError(
        f"cancel_after={cancel_after!r} is not allowed; use seconds (a positive finite number) "
        "or a duration like '5m' or '1h30m'",
        field="cancel_after",
        value=cancel_after,
        allowed="positive finite seconds, or a duration string such as '90s', '5m', '1h30m45s'",
    )


def _create_headers(wait: int | None, cancel_after: float | str | None) -> dict[str, str]:
    """The optional create headers (both validated even when the server no longer gets them)."""
    prefer = _prefer(wait)
    cancel_header = cancel_after_value(cancel_after)
    headers: dict[str, str] = {}
    headers.update({} if prefer is None else {"Prefer": prefer})  # mutation-point: send-prefer
    headers.update({} if cancel_header is None else {"Cancel-After": cancel_header})
    return headers


def _create_body(
    st: State, model: str, input: object, webhook: str | None, events: list[str] | None
) -> dict[str, Any]:
    config = st.config
    prepared = prepare_input(
        model, input, validation=config.input_validation, max_data_url_bytes=config.max_data_url_bytes
    )
    body: dict[str, Any] = {"input": prepared}
    if webhook is None and events is None:
        return body  # nothing the generated PredictionRequest would check: `prepare_input` made it
    if webhook is not None:
        body["webhook"] = webhook
    if events is not None:
        body["webhook_events_filter"] = list(events)
    try:
        return _generated.create_body(body)
    except ValueError as exc:
        raise InputValidationError(
            f"webhook_events_filter={events!r} is not allowed ({exc}); "
            "allowed events: 'start', 'output', 'logs', 'completed'",
            field="webhook_events_filter",
            value=events,
            allowed="a list of 'start', 'output', 'logs', 'completed'",
        ) from exc


def _usable_id(reply: Reply) -> str | None:
    try:
        body = json.loads(reply.content)
    except (ValueError, RecursionError):
        return None
    found = body.get("id") if isinstance(body, dict) else None
    return found if isinstance(found, str) and found else None


class _Create:
    """One create: what was sent, when, and what its failures mean."""

    def __init__(self, st: State, model: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        self.st = st
        self.model = model
        self.body = body
        self.headers = headers
        self.sent_at = st.shared.clock()
        self.sent_epoch = st.shared.wall_clock()

    def sending(self) -> None:
        shared = self.st.shared
        self.sent_at, self.sent_epoch = shared.clock(), shared.wall_clock()

    def unknown(self, reason: str, status: int | None = None) -> CreateOutcomeUnknown:
        return CreateOutcomeUnknown(
            self.model,
            input_sha256=input_sha256(self.body["input"]),
            sent_at=self.sent_epoch,
            reason=reason,
            status=status,
        )

    def failed(self, exc: CometReplicateError) -> CometReplicateError:
        """The error a failed create raises: `CreateOutcomeUnknown` if it may have reached the server."""
        if isinstance(exc, APIConnectionError) and failure_of(exc.__cause__) is not Failure.NOT_SENT:
            return self.unknown(str(exc))
        if isinstance(exc, InternalServerError) and exc.code != "invalid_request":
            return self.unknown(str(exc), exc.status)
        if isinstance(exc, APIStatusError):
            hint = route_hint(self.st.config.base_url, self.model, exc)
            if hint is not None:
                exc.message = f"{exc.message} ({hint})"
                exc.args = (exc.message,)
        return exc

    def parsed(self, reply: Reply, url: str) -> Prediction:
        """The created prediction; with a usable id a broken answer is a ContractViolation naming it."""
        try:
            return parse_prediction(reply, CREATE, url, validate=self.st.config.validate_responses)
        except Unreadable as exc:
            raise self.unknown(f"the {reply.status} answer was cut short or mangled", reply.status) from exc
        except ContractViolation as exc:
            prediction_id = _usable_id(reply)
            if prediction_id is None:
                raise self.unknown(f"the {reply.status} answer has no usable id", reply.status) from exc
            exc.attach(prediction_id)
            raise


def route_hint(base_url: str, model: str, error: APIStatusError) -> str | None:
    """What a 404/405 or an HTML page on the create route most likely means: a base URL without the
    API's path (`https://api.cometapi.com` instead of `.../replicate/v1`), another site, or no such model."""
    html = "<html" in error.text[:500].lower()
    if error.status not in (404, 405) and not html:
        return None
    if not httpx.URL(base_url).path.rstrip("/").endswith("/v1"):
        return (
            f"the base URL {base_url} is probably missing /replicate/v1: CometAPI's is "
            f"{DEFAULT_BASE_URL}, Replicate's {REPLICATE_BASE_URL}"
        )
    if html:
        return f"an HTML page answered, not the API: check the base URL {base_url}"
    if error.status == 404 and error.code is None:
        return f"no model {model} at {base_url}, or the base URL is wrong"
    return None


def _route(model: str) -> str:
    """The create route of `model`, checked by `split_model` (which refuses anything but `owner/name`)."""
    owner, name = split_model(model)
    return CREATE.path(model_owner=owner, model_name=name)


_create_path = functools.lru_cache(maxsize=256)(_route)
"""`_route` kept per model name (every create of a model asks for the same one; a refused name
raises and nothing is kept for it)."""


def create_raw(
    st: State,
    model: str,
    input: object,
    *,
    wait: int | None = None,
    cancel_after: float | str | None = None,
    webhook: str | None = None,
    webhook_events_filter: list[str] | None = None,
    timeout: float | httpx.Timeout | None = None,
    max_retries: int | None = None,
    deadline: Deadline | None = None,
    held: bool = False,
) -> Flow[Answer]:
    """Create a prediction: the input is prepared and validated before anything is sent.

    `held`: `run` holds this sync-mode create in one of its own slots (see `effects.Http`)."""
    path = _create_path(model) if type(model) is str else _route(model)
    headers = _create_headers(wait, cancel_after)
    shared = st.shared
    create = _Create(
        st,
        model,
        _create_body(st, model, input, webhook, webhook_events_filter),
        headers if shared.optional_headers_ok else {},
    )
    base = st.request_timeout(timeout)
    if wait is not None:
        read = max(base.read or 0.0, wait + SYNC_MODE_MARGIN)
        base = httpx.Timeout(connect=base.connect, read=read, write=base.write, pool=base.pool)

    def send() -> Flow[Reply]:
        create.sending()
        return request(
            st,
            OpKind.CREATE,
            CREATE.method,
            path,
            json=create.body,
            headers=create.headers,
            timeout=base,
            max_retries=st.retries(max_retries),
            deadline=deadline,
            shield=True,
            held=held and wait is not None,
        )

    try:
        try:
            try:
                reply = yield from send()
            except BadRequestError as exc:
                if not create.headers:
                    raise
                # CometAPI does not document Prefer or Cancel-After on this route. A 400 created nothing,
                # so one more try without them is safe; if that one succeeds, this client stops sending them.
                log.warning(
                    "create answered 400 with %s sent (%s); retrying once without them",
                    list(create.headers),
                    exc,
                )
                create.headers = {}
                reply = yield from send()
                shared.optional_headers_ok = False
        except CometReplicateError as exc:
            failure = create.failed(exc)
            if failure is exc:
                raise
            raise failure from exc
        prediction = create.parsed(reply, st.config.base_url + path)
    except CreateOutcomeUnknown as unknown:
        if not st.config.reconcile_unknown_creates:
            raise
        # The answer was lost after the server may have acted: look for the prediction it made.
        prediction, reply = yield from core.reconcile.reconcile(st, unknown, deadline=deadline)
    shared.remember_created(prediction.id, create.sent_at)
    return prediction, reply
