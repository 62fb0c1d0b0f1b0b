"""Pieces several commands share: saving outputs, best-effort cancel on Ctrl-C, JSON of a prediction."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx

from .. import APIConnectionError, APIStatusError, Client, FileOutput, InputValidationError
from ._errors import describe_error

__all__ = [
    "FINISHED",
    "cancel_on_interrupt",
    "cancel_outcome",
    "definitely_not_created",
    "outputs_document",
    "prediction_document",
    "save_outputs",
]


#: Statuses after which a prediction never changes again (a cancel can no longer act on it).
FINISHED = frozenset({"succeeded", "failed", "canceled", "aborted"})

_ALREADY = {
    "succeeded": "had already succeeded",
    "failed": "had already failed",
    "aborted": "had been aborted",
}


def cancel_outcome(prediction_id: str, status: str) -> str:
    """What a cancel did, as a sentence, from the status the server answered it with."""
    if status == "canceled":
        return f"Prediction {prediction_id} is canceled."
    if status in _ALREADY:
        return f"Prediction {prediction_id} {_ALREADY[status]}; there was nothing to cancel."
    return (
        f"Cancel requested for prediction {prediction_id}; it is still {status} and should stop "
        f"shortly (check with: comet-replicate get {prediction_id})."
    )


def definitely_not_created(exc: BaseException) -> bool:
    """True when a failed create surely made no prediction (so the line may be created again)."""
    if isinstance(exc, InputValidationError):
        return True
    if isinstance(exc, APIStatusError):
        return 400 <= exc.status < 500  # the server refused; a 5xx may come after the create took effect
    if isinstance(exc, APIConnectionError):
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout):
                return True  # no connection, so the request never left this machine
            cause = cause.__cause__ or cause.__context__
    return False


def save_outputs(outputs: Sequence[FileOutput], out: Path) -> list[Path]:
    """Download every output into the directory ``out`` (created if needed).

    The wrapper names each file ``<prediction id>-<name from the URL>``: output URLs reuse names such
    as ``out-0.webp`` for every prediction, and the id keeps one run from overwriting another's files.
    """
    out.mkdir(parents=True, exist_ok=True)
    return [output.save(out) for output in outputs]


def outputs_document(outputs: Sequence[FileOutput], paths: Sequence[Path] = ()) -> list[dict[str, Any]]:
    """Each output's URL and, when downloaded, where it was saved."""
    rows: list[dict[str, Any]] = []
    for index, output in enumerate(outputs):
        row: dict[str, Any] = {"url": output.url}
        if index < len(paths):
            row["path"] = str(paths[index])
        rows.append(row)
    return rows


def prediction_document(prediction: Any) -> dict[str, Any]:
    """A prediction as JSON (the generated model's own ``to_dict``)."""
    document: dict[str, Any] = prediction.to_dict()
    return document


def cancel_on_interrupt(client: Client, prediction_ids: Iterable[str | None]) -> list[str]:
    """Ctrl-C: cancel what is running (best effort) and say which ids were involved, on stderr."""
    ids = [i for i in prediction_ids if i]
    if not ids:
        sys.stderr.write(
            "interrupted before a prediction id was known; if the create request had already been "
            "sent, a prediction may exist without this client knowing its id\n"
        )
        return []
    quick = client.with_options(timeout=10.0, max_retries=0)
    for prediction_id in ids:
        try:
            prediction = quick.predictions.cancel(prediction_id)
        except KeyboardInterrupt:
            sys.stderr.write(f"interrupted again; prediction {prediction_id} was not canceled\n")
            continue
        except Exception as exc:
            sys.stderr.write(f"could not cancel prediction {prediction_id}: {describe_error(exc)}\n")
            continue
        status = getattr(prediction.status, "value", prediction.status)
        sys.stderr.write(f"interrupted: canceled prediction {prediction_id} (status {status})\n")
    sys.stderr.write("prediction ids: " + " ".join(ids) + "\n")
    sys.stderr.flush()
    return ids
