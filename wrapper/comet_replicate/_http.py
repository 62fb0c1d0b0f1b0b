"""Everything about talking HTTP that is not a decision: TLS, httpx client factories, the base URL,
the API key, and the redacted request log.

One place builds every httpx client the library opens (API and downloads, sync and async), so they
share one TLS context, one User-Agent and one set of limits.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import ssl
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from ._constants import (
    DEFAULT_BASE_URL,
    DEFAULT_LIMITS,
    DEFAULT_TIMEOUT,
    DOWNLOAD_TIMEOUT,
    ENV_BASE_URL,
    ENV_KEY,
    ENV_LOG,
    USER_AGENT,
)
from ._errors import CometReplicateError
from .core.download import link_local_refusal

__all__ = [
    "ALLOW_LINK_LOCAL",
    "Secret",
    "api_client",
    "async_api_client",
    "async_download_client",
    "auth_headers",
    "auth_provider",
    "checked_key",
    "download_client",
    "is_loopback",
    "log",
    "log_request",
    "resolve_base_url",
    "resolve_key",
    "setup_logging",
    "shared_ssl_context",
]

log = logging.getLogger("comet_replicate")
_SENSITIVE = frozenset({"authorization", "api-key", "x-api-key", "cookie"})


class Secret:
    """Holds the API key so that no repr, str or traceback shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__


# --------------------------------------------------------------------------- clients


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One verified TLS context per process: building one costs ~0.2 s, and every client can share it."""
    return httpx.create_ssl_context()


Hooks = Mapping[str, list[Callable[..., Any]]]


def api_client(
    *, timeout: httpx.Timeout = DEFAULT_TIMEOUT, event_hooks: Hooks | None = None, agent: str = ""
) -> httpx.Client:
    """The sync API client: no redirects (a redirect must never carry the key elsewhere).

    `event_hooks` are httpx's (the CLI counts polls, the contract tools capture exchanges); `agent`
    is appended to the User-Agent (which tool sent the request).
    """
    return httpx.Client(
        verify=shared_ssl_context(),
        timeout=timeout,
        limits=DEFAULT_LIMITS,
        follow_redirects=False,
        headers={"User-Agent": f"{USER_AGENT} {agent}".strip()},
        event_hooks=event_hooks,
    )


def async_api_client() -> httpx.AsyncClient:
    """The async twin of `api_client`."""
    return httpx.AsyncClient(
        verify=shared_ssl_context(),
        timeout=DEFAULT_TIMEOUT,
        limits=DEFAULT_LIMITS,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )


ALLOW_LINK_LOCAL = "comet_replicate.allow_link_local"
"""Request extension of a download that may reach link-local hosts (redirects keep extensions)."""


def _refuse_link_local(request: httpx.Request) -> None:
    if not request.extensions.get(ALLOW_LINK_LOCAL):
        refusal = link_local_refusal(str(request.url))
        if refusal is not None:
            raise refusal


async def _async_refuse_link_local(request: httpx.Request) -> None:
    _refuse_link_local(request)


def download_client(
    timeout: httpx.Timeout = DOWNLOAD_TIMEOUT, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """A sync client for output files: never carries the key, follows the delivery host's redirects
    but refuses every hop to a link-local host unless the request allows it (`ALLOW_LINK_LOCAL`)."""
    return httpx.Client(
        verify=shared_ssl_context(),
        timeout=timeout,
        follow_redirects=True,
        transport=transport,
        headers={"User-Agent": USER_AGENT},
        event_hooks={"request": [_refuse_link_local]},
    )


def async_download_client(
    timeout: httpx.Timeout = DOWNLOAD_TIMEOUT, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The async twin of `download_client`."""
    return httpx.AsyncClient(
        verify=shared_ssl_context(),
        timeout=timeout,
        follow_redirects=True,
        transport=transport,
        headers={"User-Agent": USER_AGENT},
        event_hooks={"request": [_async_refuse_link_local]},
    )


# --------------------------------------------------------------------------- base URL and key


def is_loopback(host: str) -> bool:
    """True for localhost names and loopback addresses (where plain http may carry the key)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_base_url(base_url: str | None) -> str:
    """The base URL to use: the argument, else COMETAPI_BASE_URL, else CometAPI's; https unless loopback."""
    url = base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise CometReplicateError(f"base_url must be an http(s) URL with a host, got {url!r}")
    if parsed.scheme == "http" and not is_loopback(parsed.host):
        raise CometReplicateError(
            f"refusing to send the API key over plain http to {parsed.host}: use https, "
            "or http only to a loopback host such as 127.0.0.1 (the emulator)"
        )
    return url.rstrip("/")


def checked_key(key: object) -> str:
    """A key returned by a key callable, stripped; refuses an empty one or one with a line break."""
    if not isinstance(key, str) or not key.strip():
        raise CometReplicateError("the api_key callable returned no key")
    if any(ch in key for ch in "\r\n"):
        raise CometReplicateError(f"the API key contains a line break; check {ENV_KEY}")
    return key.strip()


def resolve_key(api_key: str | None) -> Secret:
    """The key to use: the argument, else COMETAPI_KEY; refuses a missing or malformed one."""
    key = api_key if api_key is not None else os.environ.get(ENV_KEY)
    if not key or not key.strip():
        raise CometReplicateError(
            f"no API key: pass Client(api_key=...) or set the {ENV_KEY} environment variable"
        )
    if any(ch in key for ch in "\r\n"):
        raise CometReplicateError(f"the API key contains a line break; check {ENV_KEY}")
    return Secret(key.strip())


def auth_headers(key: str) -> httpx.Headers:
    """The Authorization header set (httpx.Headers shows it as [secure] in its repr)."""
    headers = httpx.Headers()
    headers["Authorization"] = f"Bearer {key}"  # mutation-point: send-authorization
    return headers


def auth_provider(api_key: Callable[[], str]) -> Callable[[], httpx.Headers]:
    """Headers from a key callable, asked again on every attempt (key rotation)."""

    def provide() -> httpx.Headers:
        return auth_headers(checked_key(api_key()))

    return provide


# --------------------------------------------------------------------------- logging


def setup_logging() -> None:
    """`COMET_REPLICATE_LOG=debug|info` prints the client's own log (Authorization redacted) to stderr."""
    level = os.environ.get(ENV_LOG, "").strip().upper()
    if level not in ("DEBUG", "INFO") or log.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(level)


def log_request(method: str, url: str, headers: Mapping[str, str]) -> None:
    """Log one request at DEBUG with its headers, secrets redacted."""
    if log.isEnabledFor(logging.DEBUG):
        shown = {k: ("<redacted>" if k.lower() in _SENSITIVE else v) for k, v in dict(headers).items()}
        log.debug("%s %s headers=%s", method, url, shown)
