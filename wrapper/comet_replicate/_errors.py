"""One exception hierarchy for everything the client can raise.

```
CometReplicateError
├── APIConnectionError             the request may not have reached the server (or no answer came)
│   └── APITimeoutError            a connect/read/write/pool timeout
├── APIStatusError                 the server answered with a non-2xx status
│   ├── BadRequestError            400
│   ├── AuthenticationError        401
│   ├── PaymentRequiredError       402 (no credit left; not retried)
│   ├── PermissionDeniedError      403
│   ├── NotFoundError              404
│   ├── PayloadTooLargeError       413 (body too large; see max_data_url_bytes)
│   ├── UnprocessableEntityError   422
│   ├── RateLimitError             429
│   └── InternalServerError        5xx
│       └── OriginTimeoutError     524 (Cloudflare gave up waiting for the origin)
├── CreateOutcomeUnknown           a create may have reached the server, but no id came back
├── OutputExpired                  an output file was deleted (about an hour after completion)
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
request data they show is the method and the URL, response text is cut short, and a key the server
echoes back is already `<redacted>` when the drivers hand the response over (`_exchange.scrubbed_reply`).

Warnings (`CometReplicateWarning` and its subclasses `UnknownInputFieldWarning`,
`UnknownModelWarning`) flag input the client cannot check but still sends.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Mapping
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
    "CometReplicateWarning",
    "ContractViolation",
    "CreateOutcomeUnknown",
    "InputValidationError",
    "InternalServerError",
    "NotFoundError",
    "OriginTimeoutError",
    "OutputExpired",
    "PayloadTooLargeError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "PredictionAborted",
    "PredictionCanceled",
    "PredictionError",
    "PredictionFailed",
    "PredictionTimeout",
    "RateLimitError",
    "UnexpectedStatus",
    "UnknownInputFieldWarning",
    "UnknownModelWarning",
    "UnprocessableEntityError",
]

_MAX_TEXT = 300
_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-oneapi-request-id", "cf-ray")
_REQUEST_ID_IN_MESSAGE = r"\(request id: ([^)\s]+)\)"  # compiled on first use (re's cache)


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
        # CometAPI's image endpoints also answer a bare `{"error": "text"}` or `{"message": "text"}`.
        bare = _bare_message(body)
        self.error_message: str | None = _str_or_none(envelope.get("message")) or bare
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
            if text and (match := re.search(_REQUEST_ID_IN_MESSAGE, text)):
                return match.group(1)
        return None

    def __str__(self) -> str:
        parts = [f"{self.status} {self.method} {self.url}".strip() + ":", self.message]
        if self.request_id and self.request_id not in self.message:
            parts.append(f"[request id {self.request_id}]")
        if self.prediction_id and self.prediction_id not in self.message:
            parts.append(f"(prediction {self.prediction_id})")
        return " ".join(parts)


def _bare_message(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    for key in ("error", "message"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _str_or_none(value: object) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


class BadRequestError(APIStatusError):
    """400: the request was malformed."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, malformed or invalid (check COMETAPI_KEY)."""


class PaymentRequiredError(APIStatusError):
    """402: the account has no credit left ("Insufficient credit"). Nothing was created, and the
    client does not retry: add credit, then call again."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this (blocked access, quota, permission)."""


class NotFoundError(APIStatusError):
    """404: unknown model or prediction, or an operation this server does not offer."""


class PayloadTooLargeError(APIStatusError):
    """413: the request body was too large, usually because of inline data URLs. Nothing was created.

    Upload large files and pass their https:// URLs, or keep `max_data_url_bytes` (default 256 kB,
    Replicate's advice; CLI `--max-data-url-bytes`) low so oversized files are refused before sending.
    """


class UnprocessableEntityError(APIStatusError):
    """422: the server rejected the input; `invalid_fields` names the fields."""


class RateLimitError(APIStatusError):
    """429: throttled; `retry_after` holds the server's hint when it gave one."""


class InternalServerError(APIStatusError):
    """5xx: a platform, gateway or provider failure."""


class OriginTimeoutError(InternalServerError):
    """524: Cloudflare stopped waiting for the origin, which may still have acted. A get or cancel can
    be repeated; after a create the prediction may exist (see `CreateOutcomeUnknown`)."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    524: OriginTimeoutError,  # mutation-point: status-524
}

_STATUS_HINTS: dict[int, str] = {
    402: "add credit to the account; retrying will not help until then",
    413: "the request body is too large: upload large files and pass their https:// URLs, or keep "
    "max_data_url_bytes (CLI --max-data-url-bytes) at or below Replicate's advised 256 kB",
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
    hint = _STATUS_HINTS.get(status)
    if hint:
        message = f"{message} ({hint})"
    return cls(message, status=status, method=method, url=url, headers=headers, body=body, text=text[:2000])


def _same_words(a: object, b: object) -> bool:
    return str(a).strip().rstrip(".").casefold() == str(b).strip().rstrip(".").casefold()


def _message_for(status: int, body: Any, text: str) -> str:
    if isinstance(body, dict):
        env = body.get("error")
        if isinstance(env, dict) and env.get("message"):
            code = env.get("code")
            prefix = f"{code}: " if code else ""
            return _short(prefix + str(env["message"]))
        if isinstance(env, str) and env.strip():
            return _short(env)
        title, detail = body.get("title"), body.get("detail")
        if title and detail and _same_words(title, detail):  # {"title":"Not found","detail":"Not found."}
            return _short(str(detail))
        if title and detail:
            return _short(f"{title}: {detail}")
        if title or detail:
            return _short(str(title or detail))
        message = body.get("message")
        if isinstance(message, str) and message.strip():
            return _short(message)
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


class CometReplicateWarning(UserWarning):
    """Base of the warnings this package emits (filter them with this category)."""


class UnknownInputFieldWarning(CometReplicateWarning):
    """An input field the model's schema does not list: sent anyway (Replicate ignores unknown
    inputs, and the bundled schema may be older than the model). Emitted once per model and field."""


class UnknownModelWarning(CometReplicateWarning):
    """A model the spec does not describe but whose name is close to one it does (a likely typo).
    The request is sent anyway: the model may be new."""


class CreateOutcomeUnknown(CometReplicateError):
    """A create may have reached the server, but no prediction id came back.

    Raised after the request was sent when the answer was lost: a read timeout, a dropped connection,
    a cut or unparseable 2xx body, a 5xx or 524. The prediction may exist and be billed. Do not
    blindly retry (a second create is a second paid prediction): look for it first, on the dashboard
    or by listing recent predictions created after `sent_at` with this `model` and input
    (`input_sha256` is the SHA-256 of the input's canonical JSON). `candidate_ids` lists predictions
    that may be this one, when a lookup found any.
    """

    def __init__(
        self,
        model: str,
        *,
        input_sha256: str,
        sent_at: float,
        reason: str,
        candidate_ids: Iterable[str] = (),
        status: int | None = None,
    ) -> None:
        self.model = model
        self.input_sha256 = input_sha256
        self.sent_at = sent_at
        self.reason = reason
        self.status = status
        self.candidate_ids: list[str] = list(candidate_ids)
        self.reconciliation: str | None = None
        """What a lookup through the list route found (None: none was made)."""
        super().__init__(self._compose())

    @property
    def sent_at_iso(self) -> str:
        """`sent_at` as an ISO 8601 UTC timestamp (what the list route's `created_after` takes)."""
        moment = datetime.datetime.fromtimestamp(self.sent_at, tz=datetime.UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _compose(self) -> str:
        found = f"; possible predictions: {', '.join(self.candidate_ids)}" if self.candidate_ids else ""
        looked = "" if self.reconciliation is None else f" Reconciliation: {self.reconciliation}."
        return (
            f"create of {self.model} sent at {self.sent_at_iso} may have reached the server, but no "
            f"prediction id came back ({_short(self.reason, 160)}){found}.{looked} It may exist and be "
            "billed: check the dashboard or list recent predictions before creating again; "
            "never blindly retry"
        )

    def set_candidates(self, candidate_ids: Iterable[str], reconciliation: str | None = None) -> None:
        """Record the predictions a lookup found and what it concluded (the message says both)."""
        self.candidate_ids = list(candidate_ids)
        if reconciliation is not None:
            self.reconciliation = reconciliation
        self.message = self._compose()
        self.args = (self.message,)


class OutputExpired(CometReplicateError):
    """An output of a succeeded prediction is gone: `data_removed` is true, or its URL answered
    403, 404 or 410. Replicate deletes outputs about an hour after a prediction completes; run the
    prediction again for new files (and download outputs promptly)."""

    def __init__(
        self,
        prediction_id: str,
        url: str | None,
        *,
        status: int | None = None,
        prediction: Prediction | None = None,
    ) -> None:
        what = f"output {url}" if url else "the output"
        how = f"HTTP {status}" if status is not None else "data_removed is true"
        super().__init__(
            f"{what} of prediction {prediction_id} is no longer available ({how}): outputs are "
            "deleted about an hour after a prediction completes; run it again for new files",
            prediction_id=prediction_id,
            prediction=prediction,
        )
        self.url = url
        self.status = status


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
