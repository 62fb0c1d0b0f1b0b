"""Build the wrapper's clients from command-line options: key, base URL, embedded emulator."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated

import httpx
import typer

from .. import AsyncClient, Client
from .._errors import CometReplicateError
from .._http import api_client, resolve_base_url
from ._embedded import EMULATOR_TOKEN, embedded_emulator
from ._errors import CliUsageError, register_secret

__all__ = [
    "BaseUrlOption",
    "EmulatorOption",
    "JsonOption",
    "OutOption",
    "connection",
    "make_async_client",
    "make_client",
]

BaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="API base URL (default: COMETAPI_BASE_URL, else https://api.cometapi.com/replicate/v1).",
        show_default=False,
    ),
]
EmulatorOption = Annotated[
    bool,
    typer.Option(
        "--emulator", help="Start the embedded emulator on a free loopback port and use it (no key needed)."
    ),
]
OutOption = Annotated[Path, typer.Option("--out", "-o", help="Directory for the downloaded outputs.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")]


def _api_key(base_url: str | None, emulator: bool) -> str:
    if emulator:
        return EMULATOR_TOKEN
    key = os.environ.get("COMETAPI_KEY", "").strip()
    if not key:
        raise CliUsageError(
            "COMETAPI_KEY is not set: export your CometAPI key, or pass --emulator to try the local emulator"
        )
    register_secret(key)
    return key


@contextmanager
def connection(base_url: str | None, emulator: bool) -> Iterator[tuple[str | None, str]]:
    """Yield ``(base_url, api_key)``, serving the embedded emulator for the block when asked to."""
    with ExitStack() as stack:
        if emulator:
            if base_url is not None:
                raise CliUsageError("--emulator and --base-url exclude each other")
            base_url = stack.enter_context(embedded_emulator())
        else:
            _check_base_url(base_url)
        yield base_url, _api_key(base_url, emulator)


def _check_base_url(base_url: str | None) -> None:
    """A base URL the client would refuse (plain http to another host, no host) is a usage error."""
    try:
        resolve_base_url(base_url)
    except CometReplicateError as exc:
        raise CliUsageError(str(exc)) from None


def _poll_counter(on_poll: Callable[[], None]) -> Callable[[httpx.Request], None]:
    def hook(request: httpx.Request) -> None:
        if request.method == "GET" and "/predictions/" in request.url.path:
            on_poll()

    return hook


@contextmanager
def make_client(
    base_url: str | None, api_key: str, *, on_poll: Callable[[], None] | None = None
) -> Iterator[Client]:
    """A sync client for the block; ``on_poll`` is called for every GET of a prediction (each poll)."""
    if on_poll is None:
        with Client(api_key, base_url=base_url) as client:
            yield client
        return
    http = api_client(event_hooks={"request": [_poll_counter(on_poll)]})
    with http, Client(api_key, base_url=base_url, http_client=http) as client:
        yield client


def make_async_client(base_url: str | None, api_key: str) -> AsyncClient:
    """An async client for batches."""
    return AsyncClient(api_key, base_url=base_url)
