"""The one door to the generated package `comet_replicate_api`, loaded on first use.

The wrapper stands on the generated package's public models only: `Prediction.from_dict` parses a
2xx body, `PredictionRequest` checks a create body, `PredictionStatus` lists the spec's statuses and
`types.Response` is what the raw-response methods return. Requests are built here from the paths
and documented 2xx statuses of openapi.yaml (a test holds `OPERATIONS` to the spec), never through
the generated operations' private helpers.
"""

from __future__ import annotations

import functools
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .core import Record

if TYPE_CHECKING:
    from collections.abc import Mapping, MutableMapping

    from comet_replicate_api.models import Prediction
    from comet_replicate_api.types import Response

__all__ = [
    "CANCEL",
    "CREATE",
    "GET",
    "LIST",
    "OPERATIONS",
    "Operation",
    "create_body",
    "prediction_from_dict",
    "prediction_type",
    "raw_response",
    "status_values",
]


# A NamedTuple, not a frozen dataclass: as immutable, built at import in a tenth of the time.
class Operation(Record):
    """One operation of openapi.yaml: its method, path template and the 2xx statuses it documents."""

    operation_id: str
    method: str
    template: str
    success: frozenset[int]

    def path(self, **params: str) -> str:
        """The path with each parameter percent-encoded as one segment (`/` included)."""
        return self.template.format(**{k: _segment(v) for k, v in params.items()})


def _segment(value: str) -> str:
    """`value` percent-encoded as one path segment; ASCII letters and digits (a prediction id) need
    no encoding, so they skip the encoder."""
    return value if isinstance(value, str) and value.isascii() and value.isalnum() else quote(value, safe="")


CREATE = Operation(
    "createPrediction", "POST", "/models/{model_owner}/{model_name}/predictions", frozenset({200, 201, 202})
)
GET = Operation("getPrediction", "GET", "/predictions/{prediction_id}", frozenset({200}))
CANCEL = Operation("cancelPrediction", "POST", "/predictions/{prediction_id}/cancel", frozenset({200}))
LIST = Operation("listPredictions", "GET", "/predictions", frozenset({200}))
OPERATIONS = (CREATE, GET, CANCEL, LIST)


@functools.cache
def _models() -> Any:
    import comet_replicate_api.models as models

    return models


def prediction_type() -> type[Prediction]:
    """The generated `Prediction` class."""
    cls: type[Prediction] = _models().Prediction
    return cls


def prediction_from_dict(body: Mapping[str, Any]) -> Prediction:
    """A `Prediction` from a parsed JSON object (raises KeyError/TypeError/ValueError on a bad one)."""
    prediction: Prediction = _models().Prediction.from_dict(body)
    return prediction


def create_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of a create, as the generated `PredictionRequest` serialises it (ValueError if
    a field breaks its enum)."""
    result: dict[str, Any] = _models().PredictionRequest.from_dict(body).to_dict()
    return result


@functools.cache
def status_values() -> frozenset[str]:
    """Every value of the spec's `PredictionStatus` enum."""
    return frozenset(member.value for member in _models().PredictionStatus)


@functools.cache
def _types() -> Any:
    import comet_replicate_api.types as types

    return types


def raw_response(
    prediction: Prediction, status: int, headers: MutableMapping[str, str], content: bytes
) -> Response[Prediction]:
    """The generated `Response` wrapper the raw-response methods return."""
    response: Response[Prediction] = _types().Response(
        status_code=HTTPStatus(status), content=content, headers=headers, parsed=prediction
    )
    return response
