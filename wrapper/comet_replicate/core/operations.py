"""Get and cancel (and the poll a wait makes): each one request through the retry loop, then the parse.

They are safe to repeat: a 2xx body cut short in transit is fetched again within the same retry
budget. The create, which is not, lives in `core.create`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import httpx

from .._constants import CANCEL_ON_EXIT_TIMEOUT, CANCEL_ON_EXIT_TOTAL
from .._errors import CometReplicateError, ContractViolation, InputValidationError
from .._generated import CANCEL, GET, Operation
from .effects import Flow, Reply, Sleep
from .parse import Unreadable, parse_prediction
from .request import request
from .retry import Deadline, Failure, OpKind, retry_delay
from .state import State

if TYPE_CHECKING:
    from comet_replicate_api.models import Prediction

__all__ = ["Answer", "best_effort_cancel", "cancel_raw", "get_raw", "poll", "prediction_path"]

log = logging.getLogger("comet_replicate")
Answer = tuple["Prediction", Reply]


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
                timeout=st.request_timeout(timeout),
                max_retries=st.retries(max_retries),
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
                timeout=st.request_timeout(timeout),
                max_retries=st.retries(max_retries),
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
