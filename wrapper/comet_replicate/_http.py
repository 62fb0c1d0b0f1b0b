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
import urllib.request
from collections.abc import Callable, Mapping
from operator import itemgetter
from typing import Any

import httpx

import comet_replicate  # the package: `_transport` loads with the first AsyncClient

from ._constants import (
    DEFAULT_BASE_URL,
    DEFAULT_LIMITS,
    DEFAULT_TIMEOUT,
    DOWNLOAD_LIMITS,
    DOWNLOAD_TIMEOUT,
    ENV_BASE_URL,
    ENV_KEY,
    ENV_LOG,
    HELD_CREATES_FD_SHARE,
    MAX_IN_FLIGHT,
    POOL_KEEPALIVE,
    POOL_SPARE,
    USER_AGENT,
)
from ._errors import CometReplicateError

__all__ = [
    "CREDENTIAL_HEADERS",
    "REDACTED",
    "ApiClient",
    "AsyncApiClient",
    "Secret",
    "api_client",
    "async_api_client",
    "async_download_client",
    "auth_headers",
    "auth_provider",
    "checked_key",
    "download_client",
    "download_hop",
    "environment_proxies",
    "held_create_limit",
    "held_limits",
    "hidden_key",
    "is_loopback",
    "is_test_host",
    "log",
    "log_request",
    "pool_limits",
    "redact",
    "redact_bytes",
    "redact_headers",
    "resolve_base_url",
    "resolve_key",
    "sent_key",
    "setup_logging",
    "shared_ssl_context",
]

log = logging.getLogger("comet_replicate")
#: Headers that carry credentials: redacted in the log, never sent with a download.
CREDENTIAL_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "cookie"})


REDACTED = "<redacted>"
#: Shorter "keys" are not searched for in server text: replacing them could mangle ordinary words.
_MIN_REDACTED_KEY = 8


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


def pool_limits(held_creates: int) -> httpx.Limits:
    """The pool of a client that holds up to `held_creates` creates open (see `DEFAULT_LIMITS`)."""
    return httpx.Limits(
        max_connections=MAX_IN_FLIGHT + held_creates + POOL_SPARE,
        max_keepalive_connections=POOL_KEEPALIVE,
        keepalive_expiry=DEFAULT_LIMITS.keepalive_expiry,
    )


def held_limits(held_creates: int) -> httpx.Limits:
    """The connections of an `AsyncClient`'s held creates: at most `held_creates` in use (the client's
    held-create slots bound them all, so none waits) and as many kept idle, so a burst of held creates
    within `KEEPALIVE_EXPIRY` of the last one reuses its connections instead of opening new ones.
    Idle ones are reused before a new one is opened, so open connections never outnumber the most
    held at once. `HeldTransport` keeps them on a stack (no walk per request). Under an environment
    proxy they share one httpx pool, which keeps `POOL_KEEPALIVE` idle (`async_api_client`) and walks
    every connection it holds on each acquire and release: 400 held creates at once cost ~2.2 ms of
    CPU each there, against ~1.5 ms in pools of 16 (measured on the emulator, httpx's transport)."""
    held = max(1, held_creates)
    return httpx.Limits(
        max_connections=held,
        max_keepalive_connections=held,
        keepalive_expiry=DEFAULT_LIMITS.keepalive_expiry,
    )


def held_create_limit(requested: int) -> int:
    """`max_held_creates` as checked and capped: at most 1/`HELD_CREATES_FD_SHARE` of the process's
    soft file-descriptor limit (each held create is an open socket)."""
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 0:
        raise ValueError(
            f"max_held_creates must be a whole number ≥ 0 (0: never hold a create), got {requested!r}"
        )
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return requested
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return requested
    return min(requested, soft // HELD_CREATES_FD_SHARE)


class ApiClient(httpx.Client):
    """A sync client the library built itself, for the API (`api_client`) or for downloads
    (`download_client`). `direct` is its transport when the drivers may hand requests to it without
    `httpx.Client.send`: the client has no event hooks, no proxy from the environment and no
    caller's transport, so send's auth flow, redirect loop, hooks, mount lookup and cookie jar do
    nothing for it but cost ~0.35M instructions per request (the cookie jar alone ~30 µs). Cookies
    a server sets are therefore not sent back: the API uses none, and output URLs are signed.
    Redirects are never followed by httpx: not for the API (the key must not travel elsewhere), and
    for downloads by the download flow (`core.download`), hop by hop. None once closed (send refuses)."""

    direct: httpx.BaseTransport | None = None

    def close(self) -> None:
        self.direct = None
        super().close()


class AsyncApiClient(httpx.AsyncClient):
    """The async twin of `ApiClient`."""

    direct: httpx.AsyncBaseTransport | None = None

    async def aclose(self) -> None:
        self.direct = None
        await super().aclose()


def api_client(
    *,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    event_hooks: Hooks | None = None,
    agent: str = "",
    limits: httpx.Limits = DEFAULT_LIMITS,
) -> httpx.Client:
    """The sync API client: no redirects (a redirect must never carry the key elsewhere).

    `event_hooks` are httpx's (the CLI counts polls, the contract tools capture exchanges); `agent`
    is appended to the User-Agent (which tool sent the request). Without hooks or a proxy from the
    environment the drivers send straight to its transport (`ApiClient`).
    """
    direct = None
    if not event_hooks and not environment_proxies():
        direct = httpx.HTTPTransport(verify=shared_ssl_context(), limits=limits)
    client = ApiClient(
        verify=shared_ssl_context(),
        timeout=timeout,
        limits=limits,
        transport=direct,
        follow_redirects=False,
        headers={"User-Agent": f"{USER_AGENT} {agent}".strip()},
        event_hooks=event_hooks,
    )
    client.direct = direct
    return client


def async_api_client(
    limits: httpx.Limits = DEFAULT_LIMITS, *, tls: bool = True, held: bool = False
) -> httpx.AsyncClient:
    """The async twin of `api_client`, over `_transport.AsyncioTransport` (see there why), which the
    drivers send straight to (`AsyncApiClient`). With a proxy named in the environment it keeps
    httpx's own transport and `send`: httpx reads those variables only for a client without a
    transport of its own.

    `tls=False`: the client talks only to a plain-http base URL (a local emulator: API requests never
    leave the base URL), so its transport gets no TLS context and the process does not build one
    (~25-50 ms of CPU, a tenth of a whole benchmark job's fixed cost) unless something else needs it.
    `held`: the client of held creates (`held_limits`), over `_transport.HeldTransport` (no pool to
    queue in or walk); under a proxy httpx's pool keeps at most `POOL_KEEPALIVE` idle connections,
    since it walks them on every acquire and release."""
    direct: httpx.AsyncBaseTransport | None = None
    if not environment_proxies():
        transport = comet_replicate._transport
        kind = transport.HeldTransport if held else transport.AsyncioTransport
        direct = kind(shared_ssl_context() if tls else None, limits)
    elif held:
        limits = httpx.Limits(
            max_connections=limits.max_connections,
            max_keepalive_connections=min(POOL_KEEPALIVE, limits.max_keepalive_connections or POOL_KEEPALIVE),
            keepalive_expiry=limits.keepalive_expiry,
        )
    client = AsyncApiClient(
        # with a transport of its own (and no proxy) httpx never uses `verify`
        verify=shared_ssl_context() if tls or direct is None else True,
        timeout=DEFAULT_TIMEOUT,
        limits=limits,
        transport=direct,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )
    client.direct = direct
    return client


def environment_proxies() -> bool:
    """Whether the environment names a proxy for http, https or all (as httpx reads it)."""
    proxies = urllib.request.getproxies()
    return any(proxies.get(scheme) for scheme in ("http", "https", "all"))


def download_hop(request: httpx.Request) -> httpx.Request:
    """A download request (one hop) to send through a caller's own client, whose default headers may
    hold credentials: they are dropped (downloads never carry the key)."""
    for name in CREDENTIAL_HEADERS:
        request.headers.pop(name, None)
    return request


def download_client(
    timeout: httpx.Timeout = DOWNLOAD_TIMEOUT, transport: httpx.BaseTransport | None = None
) -> ApiClient:
    """A sync client for output files: never carries the key, follows no redirect itself (the
    download flow does, checking every hop). Without a `transport` (tests give one) or a proxy
    from the environment, the drivers send straight to its own transport (`ApiClient.direct`)."""
    direct = None
    if transport is None and not environment_proxies():
        direct = transport = httpx.HTTPTransport(verify=shared_ssl_context(), limits=DOWNLOAD_LIMITS)
    client = ApiClient(
        verify=shared_ssl_context(),
        timeout=timeout,
        limits=DOWNLOAD_LIMITS,
        follow_redirects=False,
        transport=transport,
        headers={"User-Agent": USER_AGENT},
    )
    client.direct = direct
    return client


def async_download_client(
    timeout: httpx.Timeout = DOWNLOAD_TIMEOUT, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncApiClient:
    """The async twin of `download_client`, over `_transport.HeldTransport` (a connection per
    download, idle ones reused by origin, no pool walk) unless a transport is given or the
    environment names a proxy (see `async_api_client`): the async driver reads a download's body
    straight from it (`HeldTransport.open`)."""
    direct = None
    if transport is None and not environment_proxies():
        direct = comet_replicate._transport.HeldTransport(shared_ssl_context, DOWNLOAD_LIMITS)
        transport = direct
    client = AsyncApiClient(
        # with a transport of its own (and no proxy) httpx never uses `verify`: the context is
        # built on the first https download
        verify=True if direct is not None else shared_ssl_context(),
        timeout=timeout,
        limits=DOWNLOAD_LIMITS,
        follow_redirects=False,
        transport=transport,
        headers={"User-Agent": USER_AGENT},
    )
    client.direct = direct
    return client


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


def is_test_host(host: str) -> bool:
    """True for names under `.test`, which RFC 6761 reserves for testing (never in public DNS)."""
    host = host.rstrip(".").lower()
    return host == "test" or host.endswith(".test")


def resolve_base_url(base_url: str | None, *, own_http_client: bool = False) -> str:
    """The base URL to use: the argument, else COMETAPI_BASE_URL, else CometAPI's.

    https, or plain http to a loopback host; with the caller's own `http_client` (an in-process
    transport such as the emulator's test fixtures) also plain http to a `*.test` host.
    """
    url = base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise CometReplicateError(f"base_url must be an http(s) URL with a host, got {url!r}")
    test_host = own_http_client and is_test_host(parsed.host)
    if parsed.scheme == "http" and not is_loopback(parsed.host) and not test_host:
        raise CometReplicateError(
            f"refusing to send the API key over plain http to {parsed.host}: use https, "
            "or http only to a loopback host such as 127.0.0.1 (the emulator), or to a *.test host "
            "through your own http_client (an in-process transport)"
        )
    return url.rstrip("/")


def checked_key(key: object) -> str:
    """A key returned by a key callable, stripped; refuses an empty one or one with a line break."""
    if isinstance(key, str) and key.strip() and not _has_line_break(key):
        return key.strip()
    problem = "the api_key callable returned no key" if not isinstance(key, str) or not key.strip() else None
    del key  # a traceback that captures locals (error trackers) must not record it
    raise CometReplicateError(problem or f"the API key contains a line break; check {ENV_KEY}")


def hidden_key(api_key: str | Callable[[], str] | None) -> Secret | Callable[[], str] | None:
    """The constructor's key argument with a string wrapped at once, so no frame of a failed
    construction holds it in plain text (error trackers record frame locals)."""
    return Secret(api_key) if isinstance(api_key, str) else api_key


def resolve_key(api_key: Secret | None) -> Secret:
    """The key to use: the argument, else COMETAPI_KEY; refuses a missing or malformed one."""
    secret = api_key if api_key is not None else _env_key()
    if secret is None or not secret.get().strip():
        raise CometReplicateError(
            f"no API key: pass Client(api_key=...) or set the {ENV_KEY} environment variable"
        )
    if _has_line_break(secret.get()):
        raise CometReplicateError(f"the API key contains a line break; check {ENV_KEY}")
    return Secret(secret.get().strip())


def _env_key() -> Secret | None:
    value = os.environ.get(ENV_KEY)
    return None if value is None else Secret(value)


def _has_line_break(key: str) -> bool:
    return any(ch in key for ch in "\r\n")


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


# --------------------------------------------------------------------------- echoed keys


def sent_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carried (its Authorization bearer token, whatever a key callable returned),
    so that a server echoing it back cannot put it in an error, a log line or a recording."""
    for name, value in headers.items():
        if name.lower() == "authorization":
            scheme, _, token = value.strip().partition(" ")
            token = token.strip() if scheme.lower() == "bearer" else value.strip()
            return token if len(token) >= _MIN_REDACTED_KEY else None
    return None


def redact(text: str, key: str | None) -> str:
    """`text` with every occurrence of `key` replaced by <redacted>."""
    return text.replace(key, REDACTED) if key and len(key) >= _MIN_REDACTED_KEY else text


def redact_bytes(content: bytes, key: str | None) -> bytes:
    """`content` with every occurrence of `key` (UTF-8) replaced by <redacted>."""
    if not key or len(key) < _MIN_REDACTED_KEY:
        return content
    return content.replace(key.encode(), REDACTED.encode())


def redact_headers(headers: httpx.Headers, key: str | None) -> httpx.Headers:
    """Response headers with the key redacted from every value (Location, X-Request-Id, ...)."""
    if not key or len(key) < _MIN_REDACTED_KEY or not _mentions(headers, key):
        return headers
    return httpx.Headers([(name, redact(value, key)) for name, value in headers.multi_items()])


def _mentions(headers: httpx.Headers, key: str) -> bool:
    """Whether any header value contains `key`. An ASCII key is looked for in the raw bytes: the
    same answer as in the decoded values (ASCII, UTF-8 and Latin-1 all keep ASCII bytes as they
    are), without decoding every header of every answer, in one search of the values joined by line
    breaks (C loops, 10,500 instructions per answer against 18,000 for a Python loop): a key has no
    line break (`checked_key`, `resolve_key`), so it cannot match across two values."""
    if not key.isascii():
        return any(key in value for value in headers.values())
    return key.encode("ascii") in b"\n".join(map(_VALUE, headers.raw))


_VALUE = itemgetter(1)


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
        items = dict(headers).items()
        shown = {k: ("<redacted>" if k.lower() in CREDENTIAL_HEADERS else v) for k, v in items}
        log.debug("%s %s headers=%s", method, url, shown)
