"""Create, get and cancel: each one request through the retry loop, then the parse.

A create is prepared and validated before anything is sent, sends the optional `Prefer` and
`Cancel-After` headers until the server refuses them once, and is never repeated once it may have
reached the server. Get and cancel are safe to repeat: a 2xx body cut short in transit is fetched
again within the same retry budget.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import httpx

from .. import _generated, _spec
from .._constants import CANCEL_ON_EXIT_TIMEOUT, CANCEL_ON_EXIT_TOTAL, SYNC_MODE_MARGIN
from .._errors import BadRequestError, CometReplicateError, ContractViolation, InputValidationError
from .._generated import CANCEL, CREATE, GET, Operation
from .._inputs import prepare_input, split_model
from .effects import Flow, Reply, Sleep
from .parse import Unreadable, parse_prediction
from .request import request
from .retry import Deadline, Failure, OpKind, cancel_after_header, retry_delay
from .state import State, as_timeout

if TYPE_CHECKING:
    from comet_replicate_api.models import Prediction

__all__ = ["best_effort_cancel", "cancel_raw", "create_raw", "get_raw", "poll", "prediction_path"]

log = logging.getLogger("comet_replicate")
Answer = tuple["Prediction", Reply]


def _timeout(st: State, timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    return st.config.timeout if timeout is None else as_timeout(timeout)


def _retries(st: State, max_retries: int | None) -> int:
    return st.config.max_retries if max_retries is None else max_retries


# --------------------------------------------------------------------------- create


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


def _cancel_after_value(cancel_after: float | str | None) -> str | None:
    if cancel_after is None:
        return None
    if isinstance(cancel_after, str):
        pattern = _spec.load_spec()["components"]["parameters"]["CancelAfter"]["schema"]["pattern"]
        if cancel_after and re.fullmatch(pattern, cancel_after):
            return cancel_after
    elif isinstance(cancel_after, int | float) and not isinstance(cancel_after, bool) and cancel_after > 0:
        return cancel_after_header(float(cancel_after))
    raise InputValidationError(
        f"cancel_after={cancel_after!r} is not allowed; use seconds (a positive number) "
        "or a duration like '5m' or '1h30m'",
        field="cancel_after",
        value=cancel_after,
        allowed="positive seconds, or a duration string such as '90s', '5m', '1h30m45s'",
    )


def _create_body(
    st: State, model: str, input: object, webhook: str | None, events: list[str] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "input": prepare_input(model, input, max_data_url_bytes=st.config.max_data_url_bytes)
    }
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


def _create_headers(wait: int | None, cancel_after: float | str | None) -> dict[str, str]:
    """The optional create headers (both validated even when the server no longer gets them)."""
    prefer = _prefer(wait)
    cancel_header = _cancel_after_value(cancel_after)
    headers: dict[str, str] = {}
    if prefer is not None:
        headers["Prefer"] = prefer  # mutation-point: send-prefer
    if cancel_header is not None:
        headers["Cancel-After"] = cancel_header
    return headers


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
) -> Flow[Answer]:
    """Create a prediction: the input is prepared and validated before anything is sent."""
    owner, name = split_model(model)
    headers = _create_headers(wait, cancel_after)
    body = _create_body(st, model, input, webhook, webhook_events_filter)
    base = _timeout(st, timeout)
    if wait is not None:
        read = max(base.read or 0.0, wait + SYNC_MODE_MARGIN)
        base = httpx.Timeout(connect=base.connect, read=read, write=base.write, pool=base.pool)
    shared = st.shared
    if not shared.optional_headers_ok:
        headers = {}
    path = CREATE.path(model_owner=owner, model_name=name)

    def send() -> Flow[Reply]:
        return request(
            st,
            OpKind.CREATE,
            CREATE.method,
            path,
            json=body,
            headers=headers,
            timeout=base,
            max_retries=_retries(st, max_retries),
            deadline=deadline,
        )

    sent_at = shared.clock()
    try:
        reply = yield from send()
    except BadRequestError as exc:
        if not headers:
            raise
        # CometAPI does not document Prefer or Cancel-After on this route. A 400 created nothing,
        # so one more try without them is safe; if that one succeeds, this client stops sending them.
        log.warning("create answered 400 with %s sent (%s); retrying once without them", list(headers), exc)
        headers = {}
        sent_at = shared.clock()
        reply = yield from send()
        shared.optional_headers_ok = False
    try:
        prediction = parse_prediction(
            reply, CREATE, st.config.base_url + path, validate=st.config.validate_responses
        )
    except Unreadable as exc:
        raise ContractViolation(
            f"the create answer ({reply.status}) was cut short: a prediction was probably created, "
            "but its id is unknown; not retried, since a second create is a second paid image",
            path="$",
            rule="type",
        ) from exc
    shared.remember_created(prediction.id, sent_at)
    return prediction, reply


# --------------------------------------------------------------------------- get and cancel


def _checked_id(prediction_id: str) -> str:
    if not isinstance(prediction_id, str) or not prediction_id:
        raise InputValidationError(
            f"prediction id must be a non-empty string, got {prediction_id!r}",
            field="prediction_id",
            value=prediction_id,
            allowed="the id returned by create",
        )
    return prediction_id


def prediction_path(prediction_id: str) -> str:
    """`/predictions/{id}`, refusing an id that is not a non-empty string."""
    return GET.path(prediction_id=_checked_id(prediction_id))


def _safe_call(
    st: State,
    kind: OpKind,
    operation: Operation,
    path: str,
    *,
    timeout: httpx.Timeout,
    max_retries: int,
    deadline: Deadline | None = None,
    total: float | None = None,
    priority: bool = False,
) -> Flow[Answer]:
    """A safe-to-repeat call: the request with its retries, then the parse; a 2xx body cut short in
    transit is fetched again (within the same retry budget) instead of ending the call."""
    url = st.config.base_url + path
    retry_index = 0
    while True:
        reply = yield from request(
            st,
            kind,
            operation.method,
            path,
            timeout=timeout,
            max_retries=max_retries,
            deadline=deadline,
            total=total,
            priority=priority,
        )
        try:
            return parse_prediction(reply, operation, url, validate=st.config.validate_responses), reply
        except Unreadable:
            delay = retry_delay(
                kind,
                Failure.NETWORK,
                retry_index=retry_index,
                max_retries=max_retries,
                rng=st.shared.rng,
                remaining=None if deadline is None else deadline.remaining(st.shared.clock()),
            )
            if delay is None:
                raise
            log.info("%s %s answered with a body that is not JSON; fetching it again", operation.method, path)
            retry_index += 1
            yield Sleep(delay)


def get_raw(
    st: State,
    prediction_id: str,
    *,
    timeout: float | httpx.Timeout | None = None,
    max_retries: int | None = None,
    deadline: Deadline | None = None,
) -> Flow[Answer]:
    """GET /predictions/{id} on our own base URL (never `urls.get`, which points at Replicate)."""
    try:
        return (
            yield from _safe_call(
                st,
                OpKind.GET,
                GET,
                prediction_path(prediction_id),
                timeout=_timeout(st, timeout),
                max_retries=_retries(st, max_retries),
                deadline=deadline,
            )
        )
    except CometReplicateError as exc:
        exc.attach(prediction_id)
        raise


def cancel_raw(
    st: State,
    prediction_id: str,
    *,
    timeout: float | httpx.Timeout | None = None,
    max_retries: int | None = None,
    total: float | None = None,
    priority: bool = False,
) -> Flow[Answer]:
    """POST /predictions/{id}/cancel on our own base URL."""
    try:
        return (
            yield from _safe_call(
                st,
                OpKind.CANCEL,
                CANCEL,
                CANCEL.path(prediction_id=_checked_id(prediction_id)),
                timeout=_timeout(st, timeout),
                max_retries=_retries(st, max_retries),
                total=total,
                priority=priority,
            )
        )
    except CometReplicateError as exc:
        exc.attach(prediction_id)
        raise


def best_effort_cancel(st: State, prediction_id: str) -> Flow[bool]:
    """Cancel on the way out (deadline, Ctrl-C, task cancellation): one try, never raises.

    Bounded by `CANCEL_ON_EXIT_TOTAL` as a property of its effect, so both drivers hold it to that,
    and it skips the queue for a connection slot. 404 and 405 are expected against CometAPI, which
    does not document cancel.
    """
    try:
        yield from cancel_raw(
            st,
            prediction_id,
            timeout=CANCEL_ON_EXIT_TIMEOUT,
            max_retries=0,
            total=CANCEL_ON_EXIT_TOTAL,
            priority=True,
        )
    except Exception as exc:  # best effort: whatever went wrong, the original error matters more
        log.info("best-effort cancel of %s did not go through: %s", prediction_id, exc)
        return False
    log.info("canceled prediction %s on the way out", prediction_id)
    return True


def poll(st: State, prediction_id: str, deadline: Deadline) -> Flow[Answer]:
    """One poll of a wait: GET with the client's timeout and retries, bounded by the deadline.

    A body that is not JSON is not fetched again here (the wait polls again on its own schedule);
    an answer about another prediction is a ContractViolation.
    """
    path = prediction_path(prediction_id)
    reply = yield from request(
        st,
        OpKind.GET,
        GET.method,
        path,
        timeout=st.config.timeout,
        max_retries=st.config.max_retries,
        deadline=deadline,
    )
    fresh = parse_prediction(reply, GET, st.config.base_url + path, validate=st.config.validate_responses)
    if fresh.id != prediction_id:
        raise ContractViolation(
            f"GET /predictions/{prediction_id} answered with prediction {fresh.id}",
            path="$.id",
            rule="const",
            prediction_id=prediction_id,
        )
    return fresh, reply
