"""What a prediction's status means for a waiting caller, and the outcome of a terminal one."""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .. import _generated
from .._errors import PredictionAborted, PredictionCanceled, PredictionFailed, UnexpectedStatus

if TYPE_CHECKING:
    from comet_replicate_api.models import Prediction

__all__ = ["StatusClass", "classify_status", "outcome", "status_table"]


class StatusClass(enum.Enum):
    """What a prediction status means for a waiting caller."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    ABORTED = "aborted"
    UNKNOWN = "unknown"


# The meaning of each value of the spec's PredictionStatus enum (its description says which are
# pending and which terminal). `status_table` checks that this covers the generated enum exactly,
# so a new enum value in openapi.yaml fails loudly instead of being polled forever.
_MEANING: Mapping[str, StatusClass] = {
    "starting": StatusClass.PENDING,
    "processing": StatusClass.PENDING,
    "succeeded": StatusClass.SUCCEEDED,
    "failed": StatusClass.FAILED,
    "canceled": StatusClass.CANCELED,
    "aborted": StatusClass.ABORTED,
}


@functools.cache
def status_table() -> Mapping[str, StatusClass]:
    """The status → class table over the generated `PredictionStatus` enum (the spec's enum).

    Raises RuntimeError when the enum and this table disagree: a status the client does not know
    how to treat must never be silently classified.
    """
    values = _generated.status_values()
    if values != set(_MEANING):
        raise RuntimeError(
            "PredictionStatus in openapi.yaml and comet_replicate.core.status disagree: "
            f"spec-only {sorted(values - set(_MEANING))}, client-only {sorted(set(_MEANING) - values)}"
        )
    return {value: _MEANING[value] for value in values}


def classify_status(status: object) -> StatusClass:
    """Classify a status value; anything outside the spec's enum is UNKNOWN (fail closed)."""
    table = status_table()
    value = status.value if isinstance(status, enum.Enum) else status
    if isinstance(value, str):
        return table.get(value, StatusClass.UNKNOWN)
    return StatusClass.UNKNOWN


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
