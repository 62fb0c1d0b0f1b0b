"""What both drivers need for one exchange: its body accounting (total deadline, size cap), parsed
URLs, download requests, and the async client's in-flight gate."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any, TypeGuard

import httpx

from ._http import download_hop, redact, redact_bytes, redact_headers, sent_key
from .core.effects import Fetch, Http, OverCap, Reply
from .core.request import bounded

if TYPE_CHECKING:  # loaded with `_transport`, by the first async client: not at import (~25 ms)
    import httpcore

__all__ = [
    "Body",
    "InFlightGate",
    "SendTrace",
    "SentKeys",
    "aio",
    "api_request",
    "core_download_request",
    "download_request",
    "isawaitable",
    "parsed_url",
    "phase_timeout",
    "raised_for",
    "scrubbed_error",
    "scrubbed_reply",
]


@functools.cache
def aio() -> ModuleType:
    """asyncio, imported on first async use: a sync-only program never pays for it."""
    import asyncio

    return asyncio


def isawaitable(value: object) -> TypeGuard[Awaitable[Any]]:
    """inspect.isawaitable without importing inspect (a coroutine, or anything with __await__)."""
    return hasattr(value, "__await__")


class Body:
    """Per-chunk accounting both drivers share: the total deadline and the size cap of one body."""

    __slots__ = ("_deadline", "_limit", "_request", "_sink", "chunks", "size")

    def __init__(
        self,
        total: float | None,
        limit: int | None,
        request: httpx.Request | None,
        sink: IO[bytes] | None = None,
    ) -> None:
        """`request` names the timeout error `take` raises (None: the caller names it)."""
        self._deadline = None if total is None else time.monotonic() + total
        self._limit = limit
        self._request = request
        self._sink = sink
        self.chunks: list[bytes] = []
        self.size = 0

    def start(self, headers: httpx.Headers) -> None:
        """The answer's announced size is checked; a download's sink is emptied (a retry starts over)."""
        length = headers.get("content-length")
        if self._limit is not None and length and length.isdigit() and int(length) > self._limit:
            raise OverCap(self._limit)
        if self._sink is not None:  # a caller's sink may hold older content: replaced, not overwritten
            self._sink.seek(0)
            self._sink.truncate()

    def take(self, chunk: bytes) -> None:
        """One chunk, within the deadline and the size cap."""
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise httpx.ReadTimeout("the exchange took longer than its total bound", request=self._request)
        self.size += len(chunk)
        if self._limit is not None and self.size > self._limit:
            raise OverCap(self._limit)
        if self._sink is None:
            self.chunks.append(chunk)
        else:
            self._sink.write(chunk)


def scrubbed_reply(
    response: httpx.Response, chunks: list[bytes], key: str | None, held_for: float = 0.0
) -> Reply:
    """The core's view of an API response, with `key` (the one the request carried: `SentKeys`)
    redacted from its body and headers: the one door server text comes in by, so a server echoing
    the key (in an error message, a prediction's logs, a Location or X-Request-Id) cannot put it in
    an error, a log line or anything the caller stores. `held_for`: seconds since a held create's
    body was written (`SendTrace`), for the pacer."""
    content = redact_bytes(b"".join(chunks), key)
    return Reply(response.status_code, redact_headers(response.headers, key), content, held_for)


class SendTrace:
    """When a held create's body was fully written: a held create is answered only when its
    prediction ends, and the pacer must count it when it was sent.

    A request the drivers hand straight to the library's own transport carries its body as `body`
    (`_MarkedBody`: httpcore writes each chunk of a body stream as it is yielded, so the stream is
    asked for more only once the last chunk is written); one sent through `httpx.Client.send` (a
    caller's client, event hooks, a proxy from the environment) reports it through httpx's documented
    `trace` request extension (`extensions={"trace": ...}`; the async client awaits `atrace`). The
    body stream costs nothing per event; the trace extension awaits a callback at each of a dozen
    events of every request."""

    __slots__ = ("written",)

    def __init__(self) -> None:
        self.written: float | None = None

    def trace(self, event: str, info: object) -> None:
        if event.endswith("send_request_body.complete"):
            self.written = time.monotonic()

    async def atrace(self, event: str, info: object) -> None:
        self.trace(event, info)

    def held_for(self) -> float:
        """Seconds since the body was written (0 if it never was)."""
        return 0.0 if self.written is None else max(0.0, time.monotonic() - self.written)


class _MarkedBody(httpx.ByteStream):
    """A request body that notes in its `SendTrace` when the connection has taken all of it (each
    time it is read: a request httpcore retries on a fresh connection is read again)."""

    def __init__(self, body: bytes, sent: SendTrace) -> None:
        super().__init__(body)
        self._body = body
        self._sent = sent

    def __iter__(self) -> Iterator[bytes]:
        yield self._body
        self._sent.written = time.monotonic()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._body
        self._sent.written = time.monotonic()


class SentKeys:
    """The key each request carried (`sent_key`), remembered for the last headers object seen: with
    a key string every request of a client carries the same Authorization headers object, so the
    headers are searched once, not on every answer. An effect's headers are never changed after the
    effect is made, and the one remembered object is held, so its identity cannot be reused."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: tuple[Mapping[str, str] | None, str | None] = (None, None)

    def of(self, headers: Mapping[str, str]) -> str | None:
        seen, key = self._last  # one tuple, replaced whole: safe across threads
        if seen is not headers:
            key = sent_key(headers)
            self._last = (headers, key)
        return key


def scrubbed_error(exc: BaseException, effect: object) -> BaseException:
    """A transport error of an API request whose text quotes the key the request carried (h11 quotes
    an illegal status or header line) as a fresh error of the same type with the key redacted, its
    chain cut (the original and its causes quote it too); any other error unchanged."""
    if type(effect) is not Http or not isinstance(exc, httpx.TransportError):
        return exc
    key = sent_key(effect.headers)
    chain = _chain_text(exc)
    if key is None or key not in chain:
        return exc
    clean = type(exc)(redact(str(exc), key))
    clean.__suppress_context__ = True
    return clean


def _chain_text(exc: BaseException) -> str:
    texts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(texts) < 16:
        texts.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    return "\n".join(texts)


@functools.lru_cache(maxsize=1024)
def parsed_url(url: str) -> httpx.URL:
    """A parsed API URL, kept: httpx parses a URL string character by character on every request
    (tens of µs, a large share of a poll's CPU), and every poll of a prediction repeats its URL."""
    return httpx.URL(url)


def api_request(
    client: httpx.Client | httpx.AsyncClient,
    direct: bool,
    effect: Http,
    timeout: httpx.Timeout,
    sent: SendTrace | None,
    asynchronous: bool,
) -> httpx.Request:
    """An API request as `client.build_request` builds it; `direct` (for a transport of our own,
    `ApiClient`): the same request, byte for byte, built here (`_direct_request`). `sent`: the
    held create's `SendTrace` (the async client's trace callback is `atrace`)."""
    if direct:
        return _direct_request(client.headers, effect, timeout, sent)
    trace = None if sent is None else sent.atrace if asynchronous else sent.trace
    return client.build_request(
        effect.method,
        parsed_url(effect.url),
        headers=effect.headers,
        json=effect.json,
        timeout=timeout,
        extensions=None if trace is None else {"trace": trace},
    )


_SETS_LENGTH = ("POST", "PUT", "PATCH")  # httpx gives these `Content-Length: 0` when they have no body


def _direct_request(
    defaults: httpx.Headers, effect: Http, timeout: httpx.Timeout, sent: SendTrace | None
) -> httpx.Request:
    """The request `build_request` would build, from the header lists as they are: httpx merges the
    client's defaults with the effect's headers, encodes the JSON body and adds the Host and content
    headers through `httpx.Headers` lookups that decode every header each time (~0.1 ms per request,
    most of building it). Here the merge and the additions are made on the raw byte pairs, in httpx's
    order (the defaults the effect does not override, the effect's, the content headers; Host first),
    and the body is JSON encoded as httpx encodes it; `tests/wrapper/test_direct_send.py` compares
    the two on the wire."""
    headers = effect.headers
    own = headers.raw if type(headers) is httpx.Headers else httpx.Headers(headers).raw
    names = {name.lower() for name, _ in own}
    raw = [pair for pair in defaults.raw if pair[0].lower() not in names]
    names.update(name.lower() for name, _ in raw)
    raw += own
    first: list[tuple[bytes, bytes]] = []
    url = parsed_url(effect.url)
    if b"host" not in names and url.host:
        first.append((b"Host", url.netloc))
    body = b""
    if effect.json is not None:
        body = json.dumps(effect.json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        if b"content-length" not in names:
            raw.append((b"Content-Length", str(len(body)).encode()))
        if b"content-type" not in names:
            raw.append((b"Content-Type", b"application/json"))
    elif effect.method in _SETS_LENGTH and not names & {b"content-length", b"transfer-encoding"}:
        first.append((b"Content-Length", b"0"))
    stream = httpx.ByteStream(body) if sent is None else _MarkedBody(body, sent)
    return httpx.Request(
        effect.method,
        url,
        headers=first + raw,
        stream=stream,
        extensions={"timeout": timeout.as_dict()},
    )


class raised_for:
    """A request error from a transport called directly names its request, as `send` makes it do (a
    class: entered on every request, where a generator-based context manager costs a generator)."""

    __slots__ = ("_request",)

    def __init__(self, request: httpx.Request) -> None:
        self._request = request

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        if isinstance(exc, httpx.RequestError):
            exc.request = self._request


def phase_timeout(timeout: httpx.Timeout, total: float | None) -> httpx.Timeout:
    return timeout if total is None else bounded(timeout, total)


def core_download_request(
    url: httpx.URL, defaults: list[tuple[bytes, bytes]], timeout: httpx.Timeout
) -> httpcore.Request:
    """One hop of a download as the library's own transport gets it from `download_request`'s
    direct request (`_transport`'s `_core_request`): Host first, then the client's default headers
    (`defaults`, raw), no body."""
    import httpcore  # loaded already: only the async driver's own transport sends these

    return httpcore.Request(
        b"GET",
        httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
        headers=[(b"Host", url.netloc), *defaults],
        extensions={"timeout": timeout.as_dict()},
    )


def download_request(client: httpx.Client | httpx.AsyncClient, direct: bool, effect: Fetch) -> httpx.Request:
    """One hop of a download. `direct` (the library's own download client, `ApiClient.direct`):
    built here from the URL the flow parsed and the client's default headers, as `build_request`
    would build it minus its merges (URL, params, an empty cookie jar). Otherwise built by the
    client (a caller's: its other headers apply) with every credential header dropped, cookies
    included; the drivers send it without the client's auth."""
    timeout = phase_timeout(effect.timeout, effect.total)
    url = effect.url if effect.parsed is None else effect.parsed
    if direct:
        extensions = {"timeout": timeout.as_dict()}
        return httpx.Request("GET", url, headers=client.headers, extensions=extensions)
    return download_hop(client.build_request("GET", url, timeout=timeout))


class InFlightGate:
    """One semaphore per event loop capping the requests in flight (asyncio primitives are bound to
    the loop that first waits on them, and a client may be reused across `asyncio.run` calls)."""

    __slots__ = ("_limit", "_loop", "_semaphore")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._loop: object = None
        self._semaphore: Any = None

    def semaphore(self) -> Any:
        asyncio = aio()
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            self._semaphore = asyncio.Semaphore(self._limit)
            self._loop = loop
        return self._semaphore
