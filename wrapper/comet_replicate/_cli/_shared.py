"""Pieces several commands share: saving outputs, best-effort cancel on Ctrl-C, JSON of a prediction."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .. import Client, FileOutput
from .._batch import definitely_not_created
from ._errors import describe_error

__all__ = [
    "cancel_on_interrupt",
    "definitely_not_created",
    "outputs_document",
    "prediction_document",
    "save_outputs",
]


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
