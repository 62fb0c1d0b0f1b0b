"""Typed reads of a `Prediction`, for code checked with `mypy --strict`.

The generated `Prediction` mirrors the spec: `output` is a union of every shape a model may return
and `logs`/`error` may be `Unset`. These helpers give each the one type a caller wants, so iterating
outputs or printing logs needs no `isinstance` chain and no `# type: ignore`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .core.parse import file_urls

if TYPE_CHECKING:
    from comet_replicate_api.models import Prediction

__all__ = ["error_of", "logs_of", "output_urls", "status_of"]


def output_urls(prediction: Prediction) -> list[str]:
    """The output file URLs, always a list: one item for one-image models, `[]` while there is no
    output yet (or once `data_removed`). An output that is not file URLs raises `ContractViolation`."""
    output = prediction.output
    if not isinstance(output, str | list):  # None, or Unset when the answer had no `output` key
        return []
    return file_urls(prediction)


def logs_of(prediction: Prediction) -> str:
    """The logs so far (`""` when the server sent none)."""
    return prediction.logs if isinstance(prediction.logs, str) else ""


def error_of(prediction: Prediction) -> str | None:
    """The provider's error text of a failed prediction (None when there is none)."""
    return prediction.error if isinstance(prediction.error, str) and prediction.error else None


def status_of(prediction: Prediction) -> str:
    """The status as a plain string: one of the spec's six, or whatever new one the server sent."""
    return str(prediction.status)
