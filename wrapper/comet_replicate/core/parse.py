"""2xx bodies to `Prediction`s, and the checks `validate_responses=True` adds.

A body that is not JSON at all (cut short or mangled in transit) is `Unreadable`: safe operations
fetch it again, a create cannot. A body that is JSON but not a Prediction is a `ContractViolation`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx

from .. import _generated, _spec
from .._errors import APIStatusError, ContractViolation, OutputExpired, _short
from .effects import Reply

if TYPE_CHECKING:
    from comet_replicate_api.models import Prediction

    from .._generated import Operation

__all__ = ["Unreadable", "check_error_body", "file_urls", "parse_prediction"]

_PREDICTION = "#/components/schemas/Prediction"
_ERROR_BODY = "#/components/schemas/ErrorBody"


class Unreadable(ContractViolation):
    """A 2xx body that is not JSON at all: cut short or mangled in transit, not a schema mistake.

    Safe operations (GET, cancel) retry it and a wait keeps polling through it; a create does not,
    since the prediction was made.
    """


def _where(method: str, url: str) -> str:
    return f"{method} {httpx.URL(url).path}"


def _validated(reply: Reply, method: str) -> None:
    """`validate_responses=True`: the body must be JSON that conforms to the spec's Prediction."""
    try:
        body = json.loads(reply.content)
    except (ValueError, RecursionError) as exc:
        raise Unreadable(f"{reply.status} body is not JSON", path="$", rule="type") from exc
    violation = _spec.first_violation(_PREDICTION, body)
    if violation is not None:
        pid = body.get("id") if isinstance(body, dict) and isinstance(body.get("id"), str) else None
        raise ContractViolation(
            f"{reply.status} {method} body breaks Prediction at {violation.path}: "
            f"{violation.message} (rule {violation.rule})",
            path=violation.path,
            rule=violation.rule,
            prediction_id=pid,
        )


def parse_prediction(reply: Reply, operation: Operation, url: str, *, validate: bool) -> Prediction:
    """Parse a 2xx body of `operation` (sent to `url`) with the generated `Prediction` model.

    Anything else — an undocumented 2xx, a body that is not a Prediction, an id that is not a
    non-empty string — is a ContractViolation (Unreadable when the body is not JSON at all).
    """
    if validate:
        _validated(reply, operation.method)
    if reply.status not in operation.success:
        raise ContractViolation(
            f"{reply.status} {_where(operation.method, url)}: body is not a Prediction "
            f"(UnexpectedStatus: status {reply.status} is not documented)",
            path="$",
            rule="type",
        )
    try:
        body: Any = json.loads(reply.content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Unreadable(
            f"{reply.status} {_where(operation.method, url)}: body is not JSON "
            f"(cut short or mangled: {len(reply.content)} bytes)",
            path="$",
            rule="type",
        ) from exc
    except (ValueError, RecursionError) as exc:  # e.g. an integer beyond Python's digit limit
        raise _not_a_prediction(reply, _where(operation.method, url), exc) from exc
    try:
        parsed = _generated.prediction_from_dict(body)
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise _not_a_prediction(reply, _where(operation.method, url), exc) from exc
    if not isinstance(parsed.id, str) or not parsed.id:
        # The generated parser does not check types: an id that is not a non-empty string would
        # break every later step (polling, cancel, bookkeeping) with an untyped error.
        raise ContractViolation(
            f"{reply.status} answer to {_where(operation.method, url)} "
            f"has id {_short(repr(parsed.id), 80)}, not a non-empty string",
            path="$.id",
            rule="type",
        )
    return parsed


def _not_a_prediction(reply: Reply, where: str, exc: BaseException) -> ContractViolation:
    return ContractViolation(
        f"{reply.status} {where}: body is not a Prediction ({type(exc).__name__}: {_short(str(exc), 200)})",
        path="$",
        rule="required" if isinstance(exc, KeyError) else "type",
    )


def check_error_body(error: APIStatusError) -> None:
    """`validate_responses=True`: a JSON error body must match the spec's ErrorBody."""
    if error.body is None:
        return  # non-JSON bodies (HTML from proxies) are allowed by the spec at these statuses
    violation = _spec.first_violation(_ERROR_BODY, error.body)
    if violation is not None:
        raise ContractViolation(
            f"{error.status} error body breaks ErrorBody at {violation.path}: {violation.message} "
            f"(rule {violation.rule})",
            path=violation.path,
            rule=violation.rule,
        ) from error


def file_urls(prediction: Prediction) -> list[str]:
    """The output URLs of a succeeded prediction, always as a list (one-URL models give one item).

    Raises OutputExpired when the server says the outputs were removed (`data_removed: true`).
    """
    if prediction.data_removed is True:
        raise OutputExpired(prediction.id, None, prediction=prediction)
    output = prediction.output
    items: list[Any]
    if isinstance(output, str):
        items = [output]
    elif isinstance(output, list):
        items = output
    else:
        raise ContractViolation(
            f"prediction {prediction.id} succeeded but its output is {type(output).__name__}, not file URLs",
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
