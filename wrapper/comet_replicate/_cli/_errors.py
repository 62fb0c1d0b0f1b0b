"""Exit codes and error reporting: one clear line on stderr, a traceback only with ``--debug``.

Every command wraps its body in :func:`cli_errors`, so the mapping from exception to exit code lives
in one place and is the one documented in ``--help`` and the README.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum

import typer

import comet_replicate as api_errors

from ._app import settings

__all__ = [
    "CliUsageError",
    "ExitCode",
    "cli_errors",
    "describe_error",
    "exit_code_for",
    "redact",
    "register_secret",
    "report_error",
]


class ExitCode(IntEnum):
    """The process exit codes of every command."""

    OK = 0
    PREDICTION = 1  # a prediction failed, was canceled or aborted
    USAGE = 2  # usage or input error, found before any request
    API = 3  # API or connection error
    TIMEOUT = 4  # a deadline passed
    INTERRUPTED = 130  # Ctrl-C


class CliUsageError(Exception):
    """A problem with the command line or an input file, found before any request (exit 2)."""


_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a value (an API key) that must never appear in anything the CLI prints."""
    if value:
        _secrets.add(value)


def redact(text: str) -> str:
    """Replace every known secret (and ``COMETAPI_KEY``) in ``text`` with ``***``."""
    secrets = set(_secrets)
    env_key = os.environ.get("COMETAPI_KEY")
    if env_key:
        secrets.add(env_key)
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def exit_code_for(exc: BaseException) -> ExitCode:
    """The documented exit code of an exception (timeouts first: they may also be prediction errors)."""
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(exc, api_errors.PredictionTimeout | api_errors.APITimeoutError | TimeoutError):
        return ExitCode.TIMEOUT
    if isinstance(exc, api_errors.CreateOutcomeUnknown) and isinstance(
        exc.__cause__, TimeoutError | api_errors.APITimeoutError
    ):
        return ExitCode.TIMEOUT  # the deadline passed while the create was being answered
    if isinstance(exc, api_errors.InputValidationError | CliUsageError):
        return ExitCode.USAGE
    if isinstance(
        exc, api_errors.PredictionFailed | api_errors.PredictionCanceled | api_errors.PredictionAborted
    ):
        return ExitCode.PREDICTION
    if isinstance(exc, api_errors.CometReplicateError):
        return ExitCode.API
    if isinstance(exc, OSError):
        return ExitCode.USAGE
    return ExitCode.API


def describe_error(exc: BaseException) -> str:
    """One line naming what went wrong and, when a prediction exists, its id."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    prediction_id = getattr(exc, "prediction_id", None)
    if prediction_id and str(prediction_id) not in message:
        message = f"{message} (prediction {prediction_id})"
    if not isinstance(exc, api_errors.CometReplicateError | CliUsageError):
        # Not one of ours (a file error, or a bug): name the exception so the line still says something.
        message = f"{type(exc).__name__}: {message}"
    return redact(message)


def report_error(exc: BaseException) -> None:
    """Print ``error: …`` on stderr; with ``--debug`` also the traceback, secrets redacted."""
    if settings.debug:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        sys.stderr.write(redact(text))
    sys.stderr.write(f"error: {describe_error(exc)}\n")
    sys.stderr.flush()


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn any exception of a command body into its message and exit code (``typer.Exit``)."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    except Exception as exc:
        report_error(exc)
        raise typer.Exit(exit_code_for(exc)) from None
