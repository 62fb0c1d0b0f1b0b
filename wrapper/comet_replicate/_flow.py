"""Every create/get/cancel/wait/run as one generator of effects, shared by both clients.

A flow never does I/O and never sleeps: it yields `Http`, `Sleep` or `Notify` effects, and the
client's driver (sync in `Client`, async in `AsyncClient`) performs them and sends the result back
(or throws the exception in). So retries, polling, deadlines, status handling and the best-effort
cancel on Ctrl-C or task cancellation exist once; the two clients differ only in how they sleep and
do I/O. The policy itself (when to retry, how long to wait) lives in `_policy`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import re
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx

from ._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    CometReplicateError,
    ContractViolation,
    InputValidationError,
    InternalServerError,
    PredictionAborted,
    PredictionCanceled,
    PredictionFailed,
    PredictionTimeout,
    RateLimitError,
    UnexpectedStatus,
    _short,
    status_error,
)
from ._policy import (
    Deadline,
    DurationEstimator,
    Failure,
    OpKind,
    PollSchedule,
    PollTuning,
    StatusClass,
    cancel_after_header,
    classify_status,
    parse_retry_after,
    retry_delay,
)

if TYPE_CHECKING:
    from comet_replicate_api.models import Prediction

__all__ = ["Effect", "Flow", "Http", "Notify", "Settings", "Sleep"]

T = TypeVar("T")
log = logging.getLogger("comet_replicate")

SYNC_MODE_MARGIN = 5.0
"""Extra read time beyond `Prefer: wait=N`, so the client never gives up before the server answers."""
CANCEL_TIMEOUT = httpx.Timeout(2.0, pool=1.0)
"""The best-effort cancel on exit is bounded to a few seconds and never retried."""
MIN_POLL_SLEEP = 0.01
"""A floor on each poll sleep, so a wait always makes progress against its deadline."""


@dataclass(frozen=True, slots=True)
class Http:
    """Send one HTTP request; the driver answers with the fully read `httpx.Response`."""

    kind: OpKind
    method: str
    url: str
    headers: Mapping[str, str] = field(repr=False)  # holds the key: never in a repr
    json: Any
    timeout: httpx.Timeout
    target: httpx.URL | str = field(default="", repr=False, compare=False)
    """`url` already parsed when `request` could build it cheaply (see `_target`); else `url` again."""


@dataclass(frozen=True, slots=True)
class Sleep:
    """Sleep this many seconds (the driver's sleep: time.sleep or asyncio.sleep)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Notify:
    """Call a user callback with a prediction (the async driver awaits an awaitable result)."""

    callback: Callable[[Prediction], object]
    prediction: Prediction


Effect = Http | Sleep | Notify
Flow = Generator[Effect, Any, T]


@dataclass(slots=True)
class Settings:
    """Everything a flow needs to know about its client; shared by `with_options` copies."""

    base_url: str
    auth_headers: Mapping[str, str] = field(repr=False)  # holds the key: never in a repr
    timeout: httpx.Timeout
    max_retries: int
    validate_responses: bool
    max_data_url_bytes: int
    clock: Callable[[], float]
    wall_clock: Callable[[], float]
    rng: random.Random
    tuning: PollTuning = field(default_factory=PollTuning)
    estimator: DurationEstimator = field(default_factory=DurationEstimator)
    auth_provider: Callable[[], Mapping[str, str]] | None = field(default=None, repr=False)
    created_local: dict[str, float] = field(default_factory=dict)
    optional_headers_ok: bool = True  # False once the server rejected Prefer/Cancel-After with a 400
    _gen_client: Any = None
    _base_ref: Any = None  # the base URL as httpx parsed it once (False: cannot be reused)

    def generated_client(self) -> Any:
        """A generated `Client` to hand to the generated parsers (they only read its flags)."""
        if self._gen_client is None:
            from comet_replicate_api import Client as GeneratedClient

            self._gen_client = GeneratedClient(base_url=self.base_url, raise_on_unexpected_status=True)
        return self._gen_client

    def remember_created(self, prediction_id: str, at: float) -> None:
        """Keep the local creation time of recent predictions (bounded) for the learned schedule."""
        if len(self.created_local) >= 4096:
            # threads may race here; losing one timing entry is harmless
            with contextlib.suppress(RuntimeError, StopIteration):
                self.created_local.pop(next(iter(self.created_local)), None)
        self.created_local[prediction_id] = at


# --------------------------------------------------------------------------- one HTTP call

_ESCAPED_PATH = re.compile(
    r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@-]*(?:%[0-9A-F]{2}[A-Za-z0-9._~!$&'()*+,;=:@-]*)*)+"
)
"""A path httpx would leave exactly as it is: segments of unreserved/sub-delim characters and %XX."""


def _target(s: Settings, url: str, path: str) -> httpx.URL | str:
    """The request URL, parsed without re-parsing the base on every request.

    httpx parses a URL string on every request by scanning it character by character (~20-40 µs,
    a large share of a poll's CPU). The base URL is parsed once; an already-escaped path (our ids
    and model names are always quoted with `safe=""`) is appended to its path component, which is
    what httpx's own parse of `base + path` yields. Anything unusual (a base with a query, a path
    needing escapes, an httpx without this internal shape) falls back to the plain string.
    """
    base = s._base_ref
    if base is None:
        try:
            parsed = httpx.URL(s.base_url)
            ref = parsed._uri_reference
            usable = not ref.query and not ref.fragment and hasattr(ref, "_replace")
            base = s._base_ref = ref if usable else False
        except (AttributeError, TypeError, ValueError, httpx.InvalidURL):
            base = s._base_ref = False
    if base is False or not _ESCAPED_PATH.fullmatch(path):
        return url
    target = httpx.URL.__new__(httpx.URL)
    target._uri_reference = base._replace(path=base.path + path)
    return target


def _bounded(timeout: httpx.Timeout, remaining: float | None) -> httpx.Timeout:
    """Clamp every phase of a request timeout to the time left before a deadline."""
    if remaining is None:
        return timeout
    cap = max(remaining, 0.05)

    def clamp(value: float | None) -> float:
        return cap if value is None else min(value, cap)

    return httpx.Timeout(
        connect=clamp(timeout.connect),
        read=clamp(timeout.read),
        write=clamp(timeout.write),
        pool=clamp(timeout.pool),
    )


def _transport_failure(
    exc: httpx.TransportError, method: str, url: str
) -> tuple[Failure, APIConnectionError]:
    name = type(exc).__name__
    detail = _short(f"{name} on {method} {url}" + (f": {exc}" if str(exc) else ""), 300)
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return Failure.NOT_SENT, APITimeoutError(detail, method=method, url=url)
    if isinstance(exc, httpx.TimeoutException):
        return Failure.TIMEOUT, APITimeoutError(detail, method=method, url=url)
    if isinstance(exc, httpx.ConnectError):
        return Failure.NOT_SENT, APIConnectionError(detail, method=method, url=url)
    return Failure.NETWORK, APIConnectionError(detail, method=method, url=url)


def request(
    s: Settings,
    kind: OpKind,
    method: str,
    path: str,
    *,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: httpx.Timeout,
    max_retries: int,
    deadline: Deadline | None = None,
) -> Flow[httpx.Response]:
    """One operation with the retry policy: returns a 2xx response or raises a typed error.

    Every non-2xx answer becomes an `APIStatusError` subclass here, so no HTML, empty or truncated
    error body ever reaches the generated JSON parser.
    """
    url = s.base_url + path
    target = _target(s, url, path)
    # httpx.Headers shows Authorization as [secure] in its repr: tracebacks that capture locals
    # (error trackers) must not record the key.
    all_headers = httpx.Headers({**s.auth_headers, **headers}) if headers else s.auth_headers
    retry_index = 0
    while True:
        if s.auth_provider is not None:  # a key callable is asked again on every attempt (rotation)
            all_headers = httpx.Headers({**s.auth_provider(), **(headers or {})})
        remaining = deadline.remaining(s.clock()) if deadline is not None else None
        call = Http(kind, method, url, all_headers, json, _bounded(timeout, remaining), target)
        cause: BaseException | None = None
        error: CometReplicateError
        retry_after: float | None = None
        status_code: int | None = None
        code: str | None = None
        try:
            response: httpx.Response = yield call
        except httpx.TransportError as exc:
            failure, error = _transport_failure(exc, method, url)
            cause = exc
        else:
            if response.is_success:
                return response
            failure = Failure.STATUS
            error = status_failure = status_error(
                response.status_code,
                method=method,
                url=url,
                headers=response.headers,
                content=response.content,
            )
            retry_after = parse_retry_after(
                response.headers,
                body_retry_after=status_failure.retry_after,
                detail=status_failure.detail or status_failure.error_message,
                now_epoch=s.wall_clock(),
            )
            status_code, code = response.status_code, status_failure.code
        if deadline is not None:
            remaining = deadline.remaining(s.clock())
        delay = retry_delay(
            kind,
            failure,
            retry_index=retry_index,
            max_retries=max_retries,
            rng=s.rng,
            status=status_code,
            retry_after=retry_after,
            error_code=code,
            remaining=remaining,
        )
        if delay is None:
            if isinstance(error, APIStatusError):
                if retry_after is not None and error.retry_after is None:
                    error.retry_after = retry_after
                if s.validate_responses:
                    _check_error_body(error)
            raise error from cause
        log.info(
            "retrying %s %s in %.2fs after %s (retry %d of %d)",
            method,
            url,
            delay,
            error,
            retry_index + 1,
            max_retries,
        )
        retry_index += 1
        yield Sleep(delay)


def _check_error_body(error: APIStatusError) -> None:
    if error.body is None:
        return  # non-JSON bodies (HTML from proxies) are allowed by the spec at these statuses
    from ._spec import schema_validator

    violation = _first_violation(schema_validator("#/components/schemas/ErrorBody"), error.body)
    if violation is not None:
        path, rule, message = violation
        raise ContractViolation(
            f"{error.status} error body breaks ErrorBody at {path}: {message} (rule {rule})",
            path=path,
            rule=rule,
        ) from error


def _first_violation(validator: Any, instance: Any) -> tuple[str, str, str] | None:
    from jsonschema.exceptions import best_match

    error = best_match(validator.iter_errors(instance))
    if error is None:
        return None
    path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path, str(error.validator), error.message[:200]


class _Unreadable(ContractViolation):
    """A 2xx body that is not JSON at all: cut short or mangled in transit, not a schema mistake.

    Safe operations (GET, cancel) retry it and a wait keeps polling through it; a create does not,
    since the prediction was made (see `create_raw`).
    """


def parse_prediction(s: Settings, response: httpx.Response, operation: Any) -> Prediction:
    """Parse a 2xx body with the generated parser; a body that breaks the spec is a ContractViolation."""
    from comet_replicate_api.models import Prediction

    if s.validate_responses:
        from ._spec import schema_validator

        try:
            body = response.json()
        except (ValueError, RecursionError) as exc:
            raise _Unreadable(f"{response.status_code} body is not JSON", path="$", rule="type") from exc
        violation = _first_violation(schema_validator("#/components/schemas/Prediction"), body)
        if violation is not None:
            path, rule, message = violation
            raise ContractViolation(
                f"{response.status_code} {response.request.method} body breaks Prediction at {path}: "
                f"{message} (rule {rule})",
                path=path,
                rule=rule,
                prediction_id=body.get("id")
                if isinstance(body, dict) and isinstance(body.get("id"), str)
                else None,
            )
    from comet_replicate_api.errors import UnexpectedStatus as UndocumentedStatus

    try:
        parsed = operation._parse_response(client=s.generated_client(), response=response)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _Unreadable(
            f"{response.status_code} {response.request.method} {response.request.url.path}: body is not JSON "
            f"(cut short or mangled: {len(response.content)} bytes)",
            path="$",
            rule="type",
        ) from exc
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError, UndocumentedStatus) as exc:
        # UndocumentedStatus: a 2xx the spec does not list for this operation (e.g. 202 on a GET).
        reason = f"status {exc.status_code} is not documented" if isinstance(exc, UndocumentedStatus) else exc
        raise ContractViolation(
            f"{response.status_code} {response.request.method} {response.request.url.path}: body is not a "
            f"Prediction ({type(exc).__name__}: {_short(str(reason), 200)})",
            path="$",
            rule="required" if isinstance(exc, KeyError) else "type",
        ) from exc
    if not isinstance(parsed, Prediction):
        raise ContractViolation(
            f"{response.status_code} answer to {response.request.method} {response.request.url.path} "
            "is not a Prediction",
            path="$",
            rule="type",
        )
    if not isinstance(parsed.id, str) or not parsed.id:
        # The generated parser does not check types: an id that is not a non-empty string would
        # break every later step (polling, cancel, bookkeeping) with an untyped error.
        raise ContractViolation(
            f"{response.status_code} answer to {response.request.method} {response.request.url.path} "
            f"has id {_short(repr(parsed.id), 80)}, not a non-empty string",
            path="$.id",
            rule="type",
        )
    return parsed


# --------------------------------------------------------------------------- operations


def _request_timeout(s: Settings, timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    return s.timeout if timeout is None else as_timeout(timeout)


def as_timeout(value: float | httpx.Timeout) -> httpx.Timeout:
    """A per-request timeout: a number bounds every phase (connect at most 5 s); pool waits are unbounded
    only when asked, since a request waiting for a free connection has not reached the server."""
    if isinstance(value, httpx.Timeout):
        if value.connect is None or value.read is None:
            raise ValueError(
                "connect and read timeouts cannot be disabled; the total deadline belongs on wait/run"
            )
        return value
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"timeout must be a positive number of seconds or an httpx.Timeout, got {value!r}")
    return httpx.Timeout(float(value), connect=min(5.0, float(value)), pool=None)


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
        from ._spec import load_spec

        pattern = load_spec()["components"]["parameters"]["CancelAfter"]["schema"]["pattern"]
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


def create_raw(
    s: Settings,
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
) -> Flow[tuple[Prediction, httpx.Response]]:
    """Create a prediction: the input is prepared and validated before anything is sent."""
    from comet_replicate_api.api.predictions import create_prediction
    from comet_replicate_api.models import PredictionRequest
    from comet_replicate_api.types import UNSET

    from ._inputs import prepare_input, split_model

    owner, name = split_model(model)
    prefer = _prefer(wait)
    cancel_header = _cancel_after_value(cancel_after)
    body: dict[str, Any] = {"input": prepare_input(model, input, max_data_url_bytes=s.max_data_url_bytes)}
    if webhook is not None:
        body["webhook"] = webhook
    if webhook_events_filter is not None:
        body["webhook_events_filter"] = list(webhook_events_filter)
    try:
        request_body = PredictionRequest.from_dict(body)
    except ValueError as exc:
        raise InputValidationError(
            f"webhook_events_filter={webhook_events_filter!r} is not allowed ({exc}); "
            "allowed events: 'start', 'output', 'logs', 'completed'",
            field="webhook_events_filter",
            value=webhook_events_filter,
            allowed="a list of 'start', 'output', 'logs', 'completed'",
        ) from exc
    kwargs = create_prediction._get_kwargs(
        owner,
        name,
        body=request_body,
        prefer=UNSET if prefer is None else prefer,
        cancel_after=UNSET if cancel_header is None else cancel_header,
    )
    base = _request_timeout(s, timeout)
    if wait is not None:
        read = max(base.read or 0.0, wait + SYNC_MODE_MARGIN)
        base = httpx.Timeout(connect=base.connect, read=read, write=base.write, pool=base.pool)
    # httpx sets the same `Content-Type: application/json` for a `json=` body; leaving the generated
    # copy out spares building a merged header set on every create that has no optional headers.
    headers = {k: v for k, v in kwargs["headers"].items() if k.lower() != "content-type"}
    optional = [name for name in ("Prefer", "Cancel-After") if name in headers]
    if optional and not s.optional_headers_ok:
        for name in optional:
            headers.pop(name)
        optional = []
    sent_at = s.clock()
    try:
        response = yield from request(
            s,
            OpKind.CREATE,
            "POST",
            kwargs["url"],
            json=kwargs["json"],
            headers=headers,
            timeout=base,
            max_retries=s.max_retries if max_retries is None else max_retries,
            deadline=deadline,
        )
    except BadRequestError as exc:
        if not optional:
            raise
        # CometAPI does not document Prefer or Cancel-After on this route. A 400 created nothing,
        # so one more try without them is safe; if that one succeeds, this client stops sending them.
        log.warning("create answered 400 with %s sent (%s); retrying once without them", optional, exc)
        for name in optional:
            headers.pop(name)
        sent_at = s.clock()
        response = yield from request(
            s,
            OpKind.CREATE,
            "POST",
            kwargs["url"],
            json=kwargs["json"],
            headers=headers,
            timeout=base,
            max_retries=s.max_retries if max_retries is None else max_retries,
            deadline=deadline,
        )
        s.optional_headers_ok = False
    try:
        prediction = parse_prediction(s, response, create_prediction)
    except _Unreadable as exc:
        raise ContractViolation(
            f"the create answer ({response.status_code}) was cut short: a prediction was probably created, "
            "but its id is unknown; not retried, since a second create is a second paid image",
            path="$",
            rule="type",
        ) from exc
    s.remember_created(prediction.id, sent_at)
    return prediction, response


def _id_path(prediction_id: str) -> str:
    if not isinstance(prediction_id, str) or not prediction_id:
        raise InputValidationError(
            f"prediction id must be a non-empty string, got {prediction_id!r}",
            field="prediction_id",
            value=prediction_id,
            allowed="the id returned by create",
        )
    return f"/predictions/{quote(prediction_id, safe='')}"


def _safe_call(
    s: Settings,
    kind: OpKind,
    method: str,
    path: str,
    operation: Any,
    *,
    timeout: httpx.Timeout,
    max_retries: int,
    deadline: Deadline | None = None,
) -> Flow[tuple[Prediction, httpx.Response]]:
    """A safe-to-repeat call: the request with its retries, then the parse; a 2xx body cut short in
    transit is fetched again (within the same retry budget) instead of ending the call."""
    retry_index = 0
    while True:
        response = yield from request(
            s, kind, method, path, timeout=timeout, max_retries=max_retries, deadline=deadline
        )
        try:
            return parse_prediction(s, response, operation), response
        except _Unreadable:
            delay = retry_delay(
                kind,
                Failure.NETWORK,
                retry_index=retry_index,
                max_retries=max_retries,
                rng=s.rng,
                remaining=None if deadline is None else deadline.remaining(s.clock()),
            )
            if delay is None:
                raise
            log.info("%s %s answered with a body that is not JSON; fetching it again", method, path)
            retry_index += 1
            yield Sleep(delay)


def get_raw(
    s: Settings,
    prediction_id: str,
    *,
    timeout: float | httpx.Timeout | None = None,
    max_retries: int | None = None,
    deadline: Deadline | None = None,
) -> Flow[tuple[Prediction, httpx.Response]]:
    """GET /predictions/{id} on our own base URL (never `urls.get`, which points at Replicate)."""
    from comet_replicate_api.api.predictions import get_prediction

    try:
        return (
            yield from _safe_call(
                s,
                OpKind.GET,
                "GET",
                _id_path(prediction_id),
                get_prediction,
                timeout=_request_timeout(s, timeout),
                max_retries=s.max_retries if max_retries is None else max_retries,
                deadline=deadline,
            )
        )
    except CometReplicateError as exc:
        exc.attach(prediction_id)
        raise


def cancel_raw(
    s: Settings,
    prediction_id: str,
    *,
    timeout: float | httpx.Timeout | None = None,
    max_retries: int | None = None,
) -> Flow[tuple[Prediction, httpx.Response]]:
    """POST /predictions/{id}/cancel on our own base URL."""
    from comet_replicate_api.api.predictions import cancel_prediction

    try:
        return (
            yield from _safe_call(
                s,
                OpKind.CANCEL,
                "POST",
                _id_path(prediction_id) + "/cancel",
                cancel_prediction,
                timeout=_request_timeout(s, timeout),
                max_retries=s.max_retries if max_retries is None else max_retries,
            )
        )
    except CometReplicateError as exc:
        exc.attach(prediction_id)
        raise


def create(s: Settings, model: str, input: object, **options: Any) -> Flow[Prediction]:
    """`create_raw` without the HTTP response."""
    prediction, _ = yield from create_raw(s, model, input, **options)
    return prediction


def get(s: Settings, prediction_id: str, **options: Any) -> Flow[Prediction]:
    """`get_raw` without the HTTP response."""
    prediction, _ = yield from get_raw(s, prediction_id, **options)
    return prediction


def cancel(s: Settings, prediction_id: str, **options: Any) -> Flow[Prediction]:
    """`cancel_raw` without the HTTP response."""
    prediction, _ = yield from cancel_raw(s, prediction_id, **options)
    return prediction


def best_effort_cancel(s: Settings, prediction_id: str) -> Flow[bool]:
    """Cancel on the way out (deadline, Ctrl-C, task cancellation): one bounded try, never raises.

    404 and 405 are expected against CometAPI, which does not document cancel.
    """
    try:
        yield from cancel(s, prediction_id, timeout=CANCEL_TIMEOUT, max_retries=0)
    except Exception as exc:  # best effort: whatever went wrong, the original error matters more
        log.info("best-effort cancel of %s did not go through: %s", prediction_id, exc)
        return False
    log.info("canceled prediction %s on the way out", prediction_id)
    return True


# --------------------------------------------------------------------------- waiting


_TRANSIENT = (APIConnectionError, RateLimitError, InternalServerError, _Unreadable)


def outcome(prediction: Prediction) -> Prediction:
    """Return a succeeded prediction; raise the typed error of any other terminal or unknown status."""
    cls = classify_status(prediction.status)
    if cls is StatusClass.SUCCEEDED:
        return prediction
    if cls is StatusClass.FAILED:
        raise PredictionFailed(prediction)
    if cls is StatusClass.CANCELED:
        raise PredictionCanceled(prediction)
    if cls is StatusClass.ABORTED:
        raise PredictionAborted(prediction)
    raise UnexpectedStatus(prediction)


def _age(prediction: Prediction, wall_now: float) -> float:
    created = prediction.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    age = wall_now - created.timestamp()
    return age if 0.0 <= age < 86_400.0 else 0.0


def _snapshot(prediction: Prediction) -> tuple[str, object, object]:
    return str(prediction.status), prediction.logs, repr(prediction.output)


def wait(
    s: Settings,
    target: Prediction | str,
    *,
    deadline: Deadline,
    on_update: Callable[[Prediction], object] | None = None,
    on_created: Callable[[Prediction], object] | None = None,
    cancel_on_exit: bool = False,
) -> Flow[Prediction]:
    """Poll until the prediction is terminal; return it only if it succeeded.

    Ends only on a terminal status, the deadline, or a non-transient error (401/403/404, a broken
    contract). Transient poll failures (connection errors, timeouts, 429, 5xx) that outlive their
    retries are waited out. With `cancel_on_exit`, leaving early for any reason (deadline, Ctrl-C,
    task cancellation, a callback raising) first sends one bounded best-effort cancel.
    """
    prediction: Prediction | None = None if isinstance(target, str) else target
    prediction_id = target if isinstance(target, str) else target.id
    max_polls = None if deadline.timeout is None else math.ceil(deadline.timeout / MIN_POLL_SLEEP) + 16
    polls = 0
    hint: float | None = None
    schedule = PollSchedule(s.tuning)
    learned = False
    started = s.created_local.get(prediction_id)
    local_start = started is not None  # only locally timed predictions teach the estimator
    last_pending_at = s.clock() if prediction is not None else None
    fetch_now = prediction is None  # a bare id is fetched at once; a known prediction waits first
    try:
        if on_created is not None and prediction is not None:
            yield Notify(on_created, prediction)
        while True:
            if prediction is not None:
                cls = classify_status(prediction.status)
                if cls is not StatusClass.PENDING:
                    if cls is StatusClass.SUCCEEDED and local_start and started is not None:
                        _learn(s, prediction.model, started, last_pending_at)
                    return outcome(prediction)
                if not learned:
                    learned = True
                    schedule.fit = s.estimator.fit(prediction.model, s.tuning)
                    if started is None:
                        started = s.clock() - _age(prediction, s.wall_clock())
            now = s.clock()
            if started is None:
                started = now
            if deadline.expired(now) or (max_polls is not None and polls >= max_polls):
                raise _timeout(prediction_id, deadline, prediction)
            if not fetch_now:
                delay = schedule.next_delay(
                    now - started, s.rng, hint=hint, remaining=deadline.remaining(now)
                )
                yield Sleep(max(delay, MIN_POLL_SLEEP))
                if deadline.expired(s.clock()):
                    raise _timeout(prediction_id, deadline, prediction)
            fetch_now = False
            polls += 1
            hint = None
            try:
                fresh, hint = yield from _poll(s, prediction_id, deadline)
            except _TRANSIENT as exc:
                hint = exc.retry_after if isinstance(exc, APIStatusError) else None
                log.info("poll of %s failed transiently, still waiting: %s", prediction_id, exc)
                continue
            changed = prediction is None or _snapshot(fresh) != _snapshot(prediction)
            prediction = fresh
            if classify_status(fresh.status) is StatusClass.PENDING:
                last_pending_at = s.clock()
            if changed and on_update is not None:
                yield Notify(on_update, prediction)
    except PredictionTimeout as exc:
        if not cancel_on_exit:
            raise
        canceled = yield from best_effort_cancel(s, prediction_id)
        raise PredictionTimeout(
            prediction_id,
            timeout=exc.timeout,
            status=exc.status,
            prediction=exc.prediction,
            canceled=canceled,
        ) from None
    except CometReplicateError as exc:
        exc.attach(prediction_id, prediction)
        raise
    except GeneratorExit:
        raise  # the flow was closed unfinished (its driver is gone): nothing may be yielded now
    except BaseException:
        if cancel_on_exit:
            yield from best_effort_cancel(s, prediction_id)
        raise


def _poll(s: Settings, prediction_id: str, deadline: Deadline) -> Flow[tuple[Prediction, float | None]]:
    """One poll: the prediction and any Retry-After hint the server attached to the answer."""
    from comet_replicate_api.api.predictions import get_prediction

    response = yield from request(
        s,
        OpKind.GET,
        "GET",
        _id_path(prediction_id),
        timeout=s.timeout,
        max_retries=s.max_retries,
        deadline=deadline,
    )
    fresh = parse_prediction(s, response, get_prediction)
    if fresh.id != prediction_id:
        raise ContractViolation(
            f"GET /predictions/{prediction_id} answered with prediction {fresh.id}",
            path="$.id",
            rule="const",
            prediction_id=prediction_id,
        )
    return fresh, parse_retry_after(response.headers, now_epoch=s.wall_clock())


def _timeout(prediction_id: str, deadline: Deadline, prediction: Prediction | None) -> PredictionTimeout:
    return PredictionTimeout(
        prediction_id,
        timeout=deadline.timeout if deadline.timeout is not None else math.inf,
        status=None if prediction is None else str(prediction.status),
        prediction=prediction,
    )


def _learn(s: Settings, model: str, started: float, last_pending_at: float | None) -> None:
    """Teach the estimator how long this prediction took, measured on the local clock.

    The finish lies between the last pending answer and the terminal one, so the midpoint is the
    estimate (without a pending answer, e.g. a sync-mode create that came back done, the time the
    answer arrived). Server-reported durations are not used: the schedule runs on the local clock,
    and a gateway's or emulator's notion of time may differ from it.
    """
    seen = s.clock()
    finished = seen if last_pending_at is None else (max(last_pending_at, started) + seen) / 2.0
    s.estimator.observe(model, finished - started)


def run(
    s: Settings,
    model: str,
    input: object,
    *,
    timeout: float | None,
    wait: int | None,
    cancel_after: float | str | None | _Derived,
    on_created: Callable[[Prediction], object] | None,
    on_update: Callable[[Prediction], object] | None,
    webhook: str | None = None,
    webhook_events_filter: list[str] | None = None,
) -> Flow[Prediction]:
    """Create (in sync mode by default), report the id, wait; return the succeeded prediction."""
    deadline = Deadline(s.clock(), _total(timeout))
    sync_wait = wait
    if sync_wait is not None and deadline.timeout is not None:
        sync_wait = min(sync_wait, math.floor(deadline.timeout - SYNC_MODE_MARGIN))
        if sync_wait < 1:
            sync_wait = None
    if isinstance(cancel_after, _Derived):
        cancel_after = None if deadline.timeout is None else max(5.0, deadline.timeout)
    prediction = yield from create(
        s,
        model,
        input,
        wait=sync_wait,
        cancel_after=cancel_after,
        webhook=webhook,
        webhook_events_filter=webhook_events_filter,
        deadline=deadline,
    )
    return (
        yield from wait_flow(
            s, prediction, deadline=deadline, on_update=on_update, on_created=on_created, cancel_on_exit=True
        )
    )


wait_flow = wait  # `run` has a parameter named `wait`; this name reaches the flow from inside it


class _Derived:
    """Marker: derive Cancel-After from run's timeout."""

    def __repr__(self) -> str:
        return "DERIVED"


DERIVED = _Derived()


def _total(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(
            f"timeout must be a positive number of seconds, or None for no deadline; got {timeout!r}"
        )
    return float(timeout)


def deadline_for(s: Settings, timeout: float | None) -> Deadline:
    """A total deadline starting now."""
    return Deadline(s.clock(), _total(timeout))


def file_urls(prediction: Prediction) -> list[str]:
    """The output URLs of a succeeded prediction, always as a list (one-URL models give one item)."""
    output = prediction.output
    items: list[Any]
    if isinstance(output, str):
        items = [output]
    elif isinstance(output, list):
        items = output
    else:
        raise ContractViolation(
            f"prediction {prediction.id} succeeded but its output is {type(output).__name__}, not file URLs"
            + (" (data was removed)" if prediction.data_removed is True else ""),
            path="$.output",
            rule="type",
            prediction=prediction,
        )
    urls: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item.startswith(("https://", "http://", "data:")):
            raise ContractViolation(
                f"prediction {prediction.id} output[{index}] is not a file URL: {str(item)[:80]!r}",
                path=f"$.output[{index}]",
                rule="format",
                prediction=prediction,
            )
        urls.append(item)
    return urls
