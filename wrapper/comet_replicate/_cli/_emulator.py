"""``emulator``: serve the local emulator in the foreground, with the same help style as every command.

The options mirror ``python -m comet_replicate_emulator``'s flags one for one (a test compares the two
lists) and are handed back to the emulator's own ``main`` as flags, so the emulator stays the one owner
of what each flag means, its defaults and how it serves. Typer checks ranges first, so a bad value is
a one-line usage error (exit 2) in this CLI's style; the fault values are checked by the emulator's
public ``Faults`` class, never by rules restated here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer

from ._app import app
from ._embedded import import_emulator
from ._errors import cli_errors

__all__ = ["EMULATOR_EXIT_CODES_HELP", "emulator_command", "emulator_flags"]

EMULATOR_EXIT_CODES_HELP = (
    "Exit codes: 0 stopped with Ctrl-C (or SIGTERM); 1 could not listen (the port is taken, or the "
    "host is not an address of this machine); 2 usage error."
)

_FAULTS = "Fault injection (rates are probabilities per request)"


def _rate(what: str) -> Any:
    """A fault rate option: a probability per request, off unless given."""
    return typer.Option(min=0.0, max=1.0, metavar="RATE", rich_help_panel=_FAULTS, help=what)


def _fault_check(**fields: Any) -> None:
    """Let the emulator's public ``Faults`` judge a fault value; its message becomes the usage error."""
    try:
        import_emulator().Faults(**fields)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _speed(value: float | None) -> float | None:
    """The emulator's public ``EmulatorConfig`` judges the speed (it must be positive)."""
    if value is not None:
        try:
            import_emulator().EmulatorConfig(speed=value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    return value


def _latency(value: str | None) -> str | None:
    """``S`` (fixed) or ``LOW-HIGH`` (uniform), wall seconds."""
    if value is None:
        return None
    low, sep, high = value.partition("-")
    try:
        pair = (float(low), float(high)) if sep else (float(low), float(low))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not SECONDS or LOW-HIGH (e.g. 0.2 or 0.05-0.5)") from None
    _fault_check(latency=pair)
    return value


def _operations(value: str | None) -> str | None:
    """A comma-separated list of operations the faults strike."""
    if value is None:
        return None
    operations = frozenset(part.strip() for part in value.split(",") if part.strip())
    if not operations:
        raise typer.BadParameter("name at least one operation (create, get or cancel)")
    _fault_check(operations=operations)
    return value


def emulator_flags(values: dict[str, Any]) -> list[str]:
    """The emulator's command-line flags for the options given (``None``/``False`` ones are left out)."""
    flags: list[str] = []
    for name, value in values.items():
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        flags.extend([flag] if value is True else [flag, str(value)])
    return flags


@app.command("emulator", epilog=EMULATOR_EXIT_CODES_HELP)
def emulator_command(
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="Interface to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            "--port", min=0, max=65535, metavar="PORT", help="Port to listen on (0 picks a free one)."
        ),
    ] = 8000,
    token: Annotated[
        str | None,
        typer.Option("--token", metavar="TOKEN", help="The only Bearer token accepted (default: any token)."),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(metavar="N", callback=_speed, help="Run the emulator clock N times faster (default 1)."),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(metavar="N", help="Make ids, durations and faults repeatable."),
    ] = None,
    durations: Annotated[
        Literal["fixed", "lognormal"] | None,
        typer.Option(
            metavar="fixed|lognormal",
            help="Fixed per-model times (default), or lognormal variation around them.",
        ),
    ] = None,
    retention: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            metavar="SECONDS",
            help="Emulator seconds from completion to data removal (default: one wall-clock hour).",
        ),
    ] = None,
    accept_unknown_models: Annotated[
        bool, typer.Option("--accept-unknown-models", help="Accept any owner/name, not just x-models.")
    ] = False,
    public_base_url: Annotated[
        str | None,
        typer.Option(metavar="URL", help="Base URL to put in `urls` and outputs (behind a proxy)."),
    ] = None,
    validate_responses: Annotated[
        bool, typer.Option("--validate-responses", help="Check every answer against openapi.yaml.")
    ] = False,
    log_level: Annotated[
        Literal["critical", "error", "warning", "info", "debug"] | None,
        typer.Option(
            metavar="LEVEL", help="Server log level: critical, error, warning, info (default) or debug."
        ),
    ] = None,
    error_500_rate: Annotated[float | None, _rate("500 at random.")] = None,
    error_502_rate: Annotated[float | None, _rate("502 at random.")] = None,
    error_503_rate: Annotated[float | None, _rate("503 at random.")] = None,
    html_502_rate: Annotated[float | None, _rate("502 with an HTML page.")] = None,
    rate_limit_rate: Annotated[float | None, _rate("429 at random.")] = None,
    rpm_limit: Annotated[
        int | None,
        typer.Option(min=1, metavar="N", rich_help_panel=_FAULTS, help="429 above N requests per minute."),
    ] = None,
    retry_after: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            metavar="SECONDS",
            rich_help_panel=_FAULTS,
            help="Retry-After of each 429 (default 1).",
        ),
    ] = None,
    drop_rate: Annotated[float | None, _rate("Close without answering.")] = None,
    truncate_rate: Annotated[float | None, _rate("Cut the JSON body short.")] = None,
    latency: Annotated[
        str | None,
        typer.Option(
            metavar="S|LOW-HIGH",
            callback=_latency,
            rich_help_panel=_FAULTS,
            help="Delay before each answer, wall seconds: fixed, or uniform in LOW-HIGH.",
        ),
    ] = None,
    fail_rate: Annotated[float | None, _rate("Predictions end failed.")] = None,
    fail_message: Annotated[
        str | None,
        typer.Option(metavar="TEXT", rich_help_panel=_FAULTS, help="The error of a failed prediction."),
    ] = None,
    fault_operations: Annotated[
        str | None,
        typer.Option(
            metavar="create,get,cancel",
            callback=_operations,
            rich_help_panel=_FAULTS,
            help="The operations faults strike (default: all three).",
        ),
    ] = None,
    after_create_share: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            metavar="RATE",
            rich_help_panel=_FAULTS,
            help="Share of create faults that strike after the prediction was created (default 0.5).",
        ),
    ] = None,
) -> None:
    """Serve the local emulator (a CometAPI/Replicate prediction server for FLUX) until Ctrl-C.

    The CometAPI base URL is printed on stderr; clients use it with any key unless --token is set.
    """
    values = dict(locals())
    with cli_errors():
        emulator = import_emulator()
        code = emulator.main(emulator_flags(values), prog="comet-replicate emulator")
    raise typer.Exit(int(code or 0))
