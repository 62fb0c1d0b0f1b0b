"""One exception hierarchy for everything the client can raise.

```
CometReplicateError
├── APIConnectionError             the request may not have reached the server (or no answer came)
│   └── APITimeoutError            a connect/read/write/pool timeout
├── APIStatusError                 the server answered with a non-2xx status
│   ├── BadRequestError            400
│   ├── AuthenticationError        401
│   ├── PermissionDeniedError      403
│   ├── NotFoundError              404
│   ├── UnprocessableEntityError   422
│   ├── RateLimitError             429
│   └── InternalServerError        5xx
├── InputValidationError           the input was rejected before anything was sent
├── PredictionError                the prediction exists but did not end in `succeeded`
│   ├── PredictionFailed
│   ├── PredictionCanceled
│   ├── PredictionAborted
│   ├── PredictionTimeout          the local deadline passed first
│   └── UnexpectedStatus           a status the spec does not list
└── ContractViolation              a response that breaks openapi.yaml
```

Every error raised after a prediction exists carries `prediction_id` (and `prediction` when one was
received), so a caller can always resume or cancel it. Messages never contain the API key: the only
request data they show is the method and the URL, and response text is cut short.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from comet_replicate_api.models import Prediction

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "CometReplicateError",
    "ContractViolation",
    "InputValidationError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "PredictionAborted",
    "PredictionCanceled",
    "PredictionError",
    "PredictionFailed",
    "PredictionTimeout",
    "RateLimitError",
    "UnexpectedStatus",
    "UnprocessableEntityError",
]

_MAX_TEXT = 300
_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-oneapi-request-id", "cf-ray")
_REQUEST_ID_IN_MESSAGE = re.compile(r"\(request id: ([^)\s]+)\)")


def _short(text: str, limit: int = _MAX_TEXT) -> str:
    """One line, cut to `limit` characters: error text must stay a single useful line."""
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


class CometReplicateError(Exception):
    """Base class of every error this package raises.

    `prediction_id` is set whenever the error concerns a prediction that exists on the server;
    `prediction` holds the last state the client saw, when it saw one.
    """

    prediction_id: str | None
    prediction: Prediction | None

    def __init__(
        self, message: str, *, prediction_id: str | None = None, prediction: Prediction | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.prediction = prediction
        self.prediction_id = prediction_id if prediction_id is not None else _id_of(prediction)

    def attach(self, prediction_id: str | None, prediction: Prediction | None = None) -> None:
        """Record which prediction this error happened to (first value wins for the id)."""
        if self.prediction_id is None and prediction_id is not None:
            self.prediction_id = prediction_id
        if prediction is not None and self.prediction is None:
            self.prediction = prediction

    def __str__(self) -> str:
        if self.prediction_id and self.prediction_id not in self.message:
            return f"{self.message} (prediction {self.prediction_id})"
        return self.message


def _id_of(prediction: Prediction | None) -> str | None:
    return None if prediction is None else prediction.id


class APIConnectionError(CometReplicateError):
    """No usable answer came back: connection refused or reset, DNS failure, protocol error."""

    def __init__(
        self, message: str, *, method: str = "", url: str = "", prediction_id: str | None = None
    ) -> None:
        super().__init__(message, prediction_id=prediction_id)
        self.method = method
        self.url = url


class APITimeoutError(APIConnectionError):
    """A connect, read, write or pool timeout of one HTTP request (not the total wait deadline)."""


class APIStatusError(CometReplicateError):
    """The server answered with a status outside 2xx.

    Attributes: `status` (the HTTP status), `request_id` (from the headers or from CometAPI's
    "(request id: …)" suffix), `headers`, `body` (parsed JSON or None), `text` (raw body, cut short),
    and the fields of whichever error body came: CometAPI's `error_message`, `error_type`, `code`,
    `param`; RFC 7807's `title`, `detail`, `problem_type`, `instance`, `invalid_fields`; and
    `retry_after` from a 429 body.
    """

    status: int

    def __init__(
        self,
        message: str,
        *,
        status: int,
        method: str = "",
        url: str = "",
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        text: str = "",
        prediction_id: str | None = None,
    ) -> None:
        super().__init__(message, prediction_id=prediction_id)
        self.status = status
        self.method = method
        self.url = url
        self.headers: dict[str, str] = {k.lower(): v for k, v in (headers or {}).items()}
        self.body = body
        self.text = text
        envelope = body.get("error") if isinstance(body, dict) else None
        envelope = envelope if isinstance(envelope, dict) else {}
        problem = body if isinstance(body, dict) and not envelope else {}
        self.error_message: str | None = _str_or_none(envelope.get("message"))
        self.error_type: str | None = _str_or_none(envelope.get("type"))
        self.code: str | None = _str_or_none(envelope.get("code"))
        self.param: str | None = _str_or_none(envelope.get("param"))
        self.title: str | None = _str_or_none(problem.get("title"))
        self.detail: str | None = _str_or_none(problem.get("detail"))
        self.problem_type: str | None = _str_or_none(problem.get("type"))
        self.instance: str | None = _str_or_none(problem.get("instance"))
        fields = problem.get("invalid_fields")
        self.invalid_fields: list[dict[str, Any]] = (
            [f for f in fields if isinstance(f, dict)] if isinstance(fields, list) else []
        )
        retry_after = problem.get("retry_after") if problem else None
        self.retry_after: float | None = (
            float(retry_after)
            if isinstance(retry_after, int | float) and not isinstance(retry_after, bool)
            else None
        )
        self.request_id: str | None = self._find_request_id()

    def _find_request_id(self) -> str | None:
        for name in _REQUEST_ID_HEADERS:
            if self.headers.get(name):
                return self.headers[name]
        for text in (self.error_message, self.detail):
            if text and (match := _REQUEST_ID_IN_MESSAGE.search(text)):
                return match.group(1)
        return None

    def __str__(self) -> str:
        parts = [f"{self.status} {self.method} {self.url}".strip() + ":", self.message]
        if self.request_id and self.request_id not in self.message:
            parts.append(f"[request id {self.request_id}]")
        if self.prediction_id and self.prediction_id not in self.message:
            parts.append(f"(prediction {self.prediction_id})")
        return " ".join(parts)


def _str_or_none(value: object) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


class BadRequestError(APIStatusError):
    """400: the request was malformed."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, malformed or invalid (check COMETAPI_KEY)."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this (blocked access, quota, permission)."""


class NotFoundError(APIStatusError):
    """404: unknown model or prediction, or an operation this server does not offer."""


class UnprocessableEntityError(APIStatusError):
    """422: the server rejected the input; `invalid_fields` names the fields."""


class RateLimitError(APIStatusError):
    """429: throttled; `retry_after` holds the server's hint when it gave one."""


class InternalServerError(APIStatusError):
    """5xx: a platform, gateway or provider failure."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error(
    status: int, *, method: str, url: str, headers: Mapping[str, str], content: bytes
) -> APIStatusError:
    """Turn any non-2xx answer (JSON in either error shape, HTML, truncated, empty) into one typed error."""
    text = content.decode("utf-8", errors="replace")
    body: Any = None
    if text.strip():
        try:
            body = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than the parser allows
            body = None
    cls = _STATUS_CLASSES.get(status) or (InternalServerError if status >= 500 else APIStatusError)
    message = _message_for(status, body, text)
    return cls(message, status=status, method=method, url=url, headers=headers, body=body, text=text[:2000])


def _message_for(status: int, body: Any, text: str) -> str:
    if isinstance(body, dict):
        env = body.get("error")
        if isinstance(env, dict) and env.get("message"):
            code = env.get("code")
            prefix = f"{code}: " if code else ""
            return _short(prefix + str(env["message"]))
        if isinstance(env, str) and env:
            return _short(env)
        title, detail = body.get("title"), body.get("detail")
        if title and detail:
            return _short(f"{title}: {detail}")
        if title or detail:
            return _short(str(title or detail))
    if text.strip():
        kind = "HTML page" if "<html" in text[:500].lower() else "non-JSON body"
        return _short(f"{kind}: {text}", 200)
    return f"HTTP {status} with an empty body"


class InputValidationError(CometReplicateError, ValueError):
    """The input was rejected before any request: names the field, the value and what is allowed."""

    def __init__(
        self, message: str, *, field: str | None = None, value: Any = None, allowed: str | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        self.value = value
        self.allowed = allowed


class PredictionError(CometReplicateError):
    """The prediction exists but did not end in `succeeded`; `prediction_id` is always set."""

    def __init__(
        self,
        message: str,
        *,
        prediction_id: str | None = None,
        prediction: Prediction | None = None,
        status: str | None = None,
    ) -> None:
        super().__init__(message, prediction_id=prediction_id, prediction=prediction)
        self.status = status if status is not None else _status_of(prediction)


def _status_of(prediction: Prediction | None) -> str | None:
    return None if prediction is None else str(prediction.status)


class PredictionFailed(PredictionError):
    """The prediction ended `failed`; `error` and `logs` hold what the provider said."""

    def __init__(self, prediction: Prediction) -> None:
        error = prediction.error if isinstance(prediction.error, str) else None
        logs = prediction.logs if isinstance(prediction.logs, str) else None
        super().__init__(
            f"prediction {prediction.id} failed: {_short(error) if error else 'no error text given'}",
            prediction=prediction,
        )
        self.error = error
        self.logs = logs


class PredictionCanceled(PredictionError):
    """The prediction ended `canceled` (cancel requested or deadline reached while running; charged)."""

    def __init__(self, prediction: Prediction) -> None:
        super().__init__(f"prediction {prediction.id} was canceled", prediction=prediction)


class PredictionAborted(PredictionError):
    """The prediction ended `aborted` (its Cancel-After deadline passed before it started; not charged)."""

    def __init__(self, prediction: Prediction) -> None:
        super().__init__(
            f"prediction {prediction.id} was aborted before it started (Cancel-After deadline)",
            prediction=prediction,
        )


class PredictionTimeout(PredictionError):
    """The local deadline passed before the prediction finished; `status` is the last one seen."""

    def __init__(
        self,
        prediction_id: str,
        *,
        timeout: float,
        status: str | None,
        prediction: Prediction | None = None,
        canceled: bool | None = None,
    ) -> None:
        cancel_note = {True: "; cancel requested", False: "; cancel not confirmed", None: ""}[canceled]
        super().__init__(
            f"prediction {prediction_id} did not finish within {timeout:g} s "
            f"(last status {status or 'unknown'}{cancel_note})",
            prediction_id=prediction_id,
            prediction=prediction,
            status=status,
        )
        self.timeout = timeout
        self.cancel_requested = canceled


class UnexpectedStatus(PredictionError):
    """The server reported a status openapi.yaml does not list: fail closed instead of looping."""

    def __init__(self, prediction: Prediction) -> None:
        super().__init__(
            f"prediction {prediction.id} has status {_short(str(prediction.status), 80)!r}, "
            "which the spec does not list",
            prediction=prediction,
        )


class ContractViolation(CometReplicateError):
    """A response broke openapi.yaml: `path` is the JSON path, `rule` the schema keyword that failed."""

    def __init__(
        self,
        message: str,
        *,
        path: str = "$",
        rule: str | None = None,
        prediction_id: str | None = None,
        prediction: Prediction | None = None,
    ) -> None:
        super().__init__(message, prediction_id=prediction_id, prediction=prediction)
        self.path = path
        self.rule = rule
