"""Pieces several commands share: saving outputs, best-effort cancel on an interrupt, JSON of a prediction."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from .. import Client, FileOutput
from .._batch import definitely_not_created
from ._console import print_json
from ._errors import CliUsageError, ExitCode, describe_error, interrupt_exit_code
from ._interrupt import interrupt_name

__all__ = [
    "FINISHED",
    "cancel_on_interrupt",
    "cancel_outcome",
    "check_out_dir",
    "definitely_not_created",
    "interrupt_document",
    "outputs_document",
    "prediction_document",
    "save_after_success",
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


def check_out_dir(out: Path) -> None:
    """``--out`` must be a directory, or one that can be made: checked before anything is paid for."""
    if out.exists() and not out.is_dir():
        raise CliUsageError(f"--out {out} is a file, not a directory")
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise CliUsageError(f"--out {out} cannot be made: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CliUsageError(f"--out {out}: no permission to write in {existing}")


def save_after_success(
    outputs: Sequence[FileOutput], out: Path, *, document: dict[str, Any], as_json: bool
) -> list[Path]:
    """Download every output into ``out``; if that fails, the paid prediction's id is still reported.

    The wrapper names each file ``<prediction id>-<name from the URL>``: output URLs reuse names such
    as ``out-0.webp`` for every prediction, and the id keeps one run from overwriting another's files.
    A failure here comes after the prediction succeeded, so it is an exit 3 (never 2, which promises
    that nothing was sent), with the id and a way to fetch the outputs again on stderr, and with
    ``--json`` the document with what was saved and the error.
    """
    prediction_id = document.get("id")
    paths: list[Path] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for output in outputs:
            paths.append(output.save(out))
    except KeyboardInterrupt as exc:
        code = interrupt_exit_code(exc)
        error = f"{interrupt_name(exc)} while saving the outputs"
        sys.stderr.write(
            f"{error} of prediction {prediction_id}, which succeeded (nothing to cancel); "
            f"{len(paths)} of {len(outputs)} saved. Get them with: comet-replicate wait {prediction_id}\n"
        )
        _failure_document(document, outputs, paths, error, code, as_json)
        raise typer.Exit(code) from None
    except Exception as exc:
        error = f"saving the outputs failed: {describe_error(exc)}"
        sys.stderr.write(
            f"error: prediction {prediction_id} succeeded but {error}\n"
            f"download its outputs again with: comet-replicate wait {prediction_id} --out DIR\n"
        )
        _failure_document(document, outputs, paths, error, ExitCode.API, as_json)
        raise typer.Exit(ExitCode.API) from None
    return paths


def _failure_document(
    document: dict[str, Any],
    outputs: Sequence[FileOutput],
    paths: Sequence[Path],
    error: str,
    code: int,
    as_json: bool,
) -> None:
    if as_json:
        print_json(
            {**document, "outputs": outputs_document(outputs, paths), "error": error, "exit_code": int(code)}
        )


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


def cancel_on_interrupt(
    client: Client, prediction_id: str | None, status: str | None, interrupt: BaseException
) -> str | None:
    """After Ctrl-C or SIGTERM: cancel the prediction unless it is known to be finished, and say what
    really happened (on stderr, with the id). Returns the last status known (None if none)."""
    name = interrupt_name(interrupt)
    if not prediction_id:
        sys.stderr.write(
            f"{name} before a prediction id was known; if the create request had already been "
            "sent, a prediction may exist without this client knowing its id\n"
        )
        sys.stderr.flush()
        return None
    if status not in FINISHED:
        quick = client.with_options(timeout=10.0, max_retries=0)
        try:
            prediction = quick.predictions.cancel(prediction_id)
        except KeyboardInterrupt:
            status = None
            sys.stderr.write(f"{name} again: prediction {prediction_id} was not canceled\n")
        except Exception as exc:
            status = None
            sys.stderr.write(f"could not cancel prediction {prediction_id}: {describe_error(exc)}\n")
        else:
            status = str(getattr(prediction.status, "value", prediction.status))
    if status is not None:
        message = f"Stopped by {name}. {cancel_outcome(prediction_id, status)}"
        if status == "succeeded":
            message += f" Its outputs were not downloaded: comet-replicate wait {prediction_id}"
        sys.stderr.write(message + "\n")
    sys.stderr.write(f"prediction id: {prediction_id}\n")
    sys.stderr.flush()
    return status


def interrupt_document(
    document: dict[str, Any], status: str | None, interrupt: BaseException
) -> dict[str, Any]:
    """The ``--json`` document of a command stopped by Ctrl-C or SIGTERM."""
    return {
        **document,
        "status": status or document.get("status"),
        "error": f"stopped by {interrupt_name(interrupt)}",
        "exit_code": interrupt_exit_code(interrupt),
    }
