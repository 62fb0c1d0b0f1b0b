"""`Client` and `AsyncClient`: thin shells that drive the shared flows in `_flow`.

Each public method builds a flow (a generator of effects) and hands it to the client's driver; the
sync driver performs effects with `httpx.Client` and `time.sleep`, the async one with
`httpx.AsyncClient` and `asyncio.sleep`. Nothing else differs.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Self, TypeGuard, TypeVar

import httpx

from . import _flow
from ._errors import CometReplicateError
from ._files import DEFAULT_MAX_DOWNLOAD_BYTES, Downloader, FileOutput
from ._flow import Flow, Http, Notify, Settings, Sleep
from ._inputs import DEFAULT_MAX_DATA_URL_BYTES
from ._policy import DurationEstimator, PollTuning

if TYPE_CHECKING:
    from comet_replicate_api.models import Prediction
    from comet_replicate_api.types import Response

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_TIMEOUT", "AsyncClient", "Client"]

T = TypeVar("T")
log = logging.getLogger("comet_replicate")

DEFAULT_BASE_URL = "https://api.cometapi.com/replicate/v1"
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=30.0, pool=None)
"""Per HTTP request: connect 5 s, read 60 s (CometAPI polls were seen taking over 45 s), write 30 s.
Waiting for a free pooled connection is unbounded by default: such a request has not reached the
server yet, so many concurrent predictions queue instead of failing (a total deadline still applies)."""
DEFAULT_WAIT_TIMEOUT = 300.0
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=30.0)
MAX_IN_FLIGHT = 50
"""Requests an `AsyncClient` with its own pool hands to httpx at once; the rest queue in the client.
httpcore rescans every waiting request against every connection on each acquire and release, so
1,000 concurrent `run()`s queued inside its pool cost 40-80 s of client CPU; queued here, with half
the pool in flight, about 5 s (benchmarks/RESULTS.md, section 3)."""
_NOT_GIVEN: Any = object()
_SENSITIVE = frozenset({"authorization", "api-key", "x-api-key", "cookie"})


class _Secret:
    """Holds the API key so that no repr, str or traceback shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _resolve_base_url(base_url: str | None) -> str:
    url = base_url or os.environ.get("COMETAPI_BASE_URL") or DEFAULT_BASE_URL
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise CometReplicateError(f"base_url must be an http(s) URL with a host, got {url!r}")
    if parsed.scheme == "http" and not _is_loopback(parsed.host):
        raise CometReplicateError(
            f"refusing to send the API key over plain http to {parsed.host}: use https, "
            "or http only to a loopback host such as 127.0.0.1 (the emulator)"
        )
    return url.rstrip("/")


def _checked_key(key: object) -> str:
    if not isinstance(key, str) or not key.strip():
        raise CometReplicateError("the api_key callable returned no key")
    if any(ch in key for ch in "\r\n"):
        raise CometReplicateError("the API key contains a line break; check COMETAPI_KEY")
    return key.strip()


def _auth_provider(api_key: Callable[[], str]) -> Callable[[], httpx.Headers]:
    def provide() -> httpx.Headers:
        return httpx.Headers({"Authorization": f"Bearer {_checked_key(api_key())}"})

    return provide


def _resolve_key(api_key: str | None) -> _Secret:
    key = api_key if api_key is not None else os.environ.get("COMETAPI_KEY")
    if not key or not key.strip():
        raise CometReplicateError(
            "no API key: pass Client(api_key=...) or set the COMETAPI_KEY environment variable"
        )
    if any(ch in key for ch in "\r\n"):
        raise CometReplicateError("the API key contains a line break; check COMETAPI_KEY")
    return _Secret(key.strip())


def isawaitable(value: object) -> TypeGuard[Awaitable[Any]]:
    """inspect.isawaitable without importing inspect (a coroutine, or anything with __await__)."""
    return hasattr(value, "__await__")


def _setup_logging() -> None:
    """`COMET_REPLICATE_LOG=debug|info` prints the client's own log (Authorization redacted) to stderr."""
    level = os.environ.get("COMET_REPLICATE_LOG", "").strip().upper()
    if level not in ("DEBUG", "INFO") or log.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(level)


def _redacted(headers: Any) -> dict[str, str]:
    return {k: ("<redacted>" if k.lower() in _SENSITIVE else v) for k, v in dict(headers).items()}


class _Base:
    """Configuration shared by both clients; the flows read it through `Settings`."""

    _settings: Settings
    _downloader: Downloader
    _secret: _Secret

    def _configure(
        self,
        api_key: str | Callable[[], str] | None,
        base_url: str | None,
        timeout: float | httpx.Timeout,
        max_retries: int,
        validate_responses: bool,
        max_data_url_bytes: int,
        max_download_bytes: int,
        poll_tuning: PollTuning | None,
    ) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be a non-negative integer, got {max_retries!r}")
        _setup_logging()
        provider = None
        if callable(api_key):
            provider = _auth_provider(api_key)
            api_key = _checked_key(api_key())  # fail at construction, not at the first request
        self._secret = _resolve_key(api_key)
        resolved = _resolve_base_url(base_url)
        self._settings = Settings(
            base_url=resolved,
            auth_headers=httpx.Headers({"Authorization": f"Bearer {self._secret.get()}"}),
            auth_provider=provider,
            timeout=_flow.as_timeout(timeout),
            max_retries=max_retries,
            validate_responses=validate_responses,
            max_data_url_bytes=max_data_url_bytes,
            clock=time.monotonic,
            wall_clock=time.time,
            rng=random.Random(),
            tuning=poll_tuning or PollTuning(),
            estimator=DurationEstimator(),
        )
        self._downloader = Downloader(max_bytes=max_download_bytes)

    def _derive(self, timeout: float | httpx.Timeout | None, max_retries: int | None) -> Settings:
        from dataclasses import replace

        s = self._settings
        return replace(
            s,
            timeout=s.timeout if timeout is None else _flow.as_timeout(timeout),
            max_retries=s.max_retries if max_retries is None else max_retries,
            # Shared on purpose: the learned schedule and local creation times span copies.
            estimator=s.estimator,
            created_local=s.created_local,
        )

    @property
    def base_url(self) -> str:
        """The API base URL every request goes to (polls included)."""
        return self._settings.base_url

    @property
    def timeout(self) -> httpx.Timeout:
        """The per-request HTTP timeout."""
        return self._settings.timeout

    @property
    def max_retries(self) -> int:
        """How many times a retryable request is retried."""
        return self._settings.max_retries

    @property
    def estimator(self) -> DurationEstimator:
        """Per-model durations learned from finished predictions (drives the poll schedule)."""
        return self._settings.estimator

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, api_key=<redacted>, "
            f"max_retries={self.max_retries})"
        )

    def _files(self, prediction: Prediction) -> list[FileOutput]:
        return [
            FileOutput(url, self._downloader, index=i, prediction_id=prediction.id)
            for i, url in enumerate(_flow.file_urls(prediction))
        ]

    def _log_request(self, effect: Http) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s headers=%s", effect.method, effect.url, _redacted(effect.headers))


def _raw(result: tuple[Prediction, httpx.Response]) -> Response[Prediction]:
    from http import HTTPStatus

    from comet_replicate_api.types import Response

    prediction, response = result
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=prediction,
    )


# ============================================================================ sync


class RawPredictions:
    """`client.predictions.with_raw_response`: create, get and cancel returning the generated
    `Response` (`status_code`, `headers`, `content`, `parsed`), for headers such as `x-request-id`
    or `ratelimit-remaining`. Arguments are those of `client.predictions.create/get/cancel`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, model: str, input: object, **options: Any) -> Response[Prediction]:
        """`predictions.create` with the raw response."""
        c = self._client
        return _raw(c._drive(_flow.create_raw(c._settings, model, input, **options)))

    def get(self, prediction_id: str, **options: Any) -> Response[Prediction]:
        """`predictions.get` with the raw response."""
        c = self._client
        return _raw(c._drive(_flow.get_raw(c._settings, prediction_id, **options)))

    def cancel(self, prediction_id: str, **options: Any) -> Response[Prediction]:
        """`predictions.cancel` with the raw response."""
        c = self._client
        return _raw(c._drive(_flow.cancel_raw(c._settings, prediction_id, **options)))


class Predictions:
    """`client.predictions`: create, get, cancel and wait."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.with_raw_response = RawPredictions(client)

    def create(
        self,
        model: str,
        input: object,
        *,
        wait: int | None = None,
        cancel_after: float | str | None = None,
        webhook: str | None = None,
        webhook_events_filter: list[str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> Prediction:
        """Create a prediction of `model` ("owner/name") and return it as the server answered.

        The input (a dict or a generated `*Input` model) is validated against the model's schema in
        openapi.yaml before any request; local files in image fields become data URLs. `wait=N`
        (1–60) asks the server to hold the request up to N seconds (`Prefer: wait=N`); the answer may
        still be unfinished. `cancel_after` (seconds or '5m') sets a server-side deadline. A create is
        retried only if it never reached the server or got a 429: never a duplicate paid image.
        """
        c = self._client
        return c._drive(
            _flow.create(
                c._settings,
                model,
                input,
                wait=wait,
                cancel_after=cancel_after,
                webhook=webhook,
                webhook_events_filter=webhook_events_filter,
                timeout=timeout,
                max_retries=max_retries,
            )
        )

    def get(
        self,
        prediction_id: str,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> Prediction:
        """Fetch a prediction's current state from our base URL."""
        c = self._client
        return c._drive(_flow.get(c._settings, prediction_id, timeout=timeout, max_retries=max_retries))

    def cancel(
        self,
        prediction_id: str,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> Prediction:
        """Ask the server to cancel a prediction (CometAPI may answer 404/405: not supported there)."""
        c = self._client
        return c._drive(_flow.cancel(c._settings, prediction_id, timeout=timeout, max_retries=max_retries))

    def wait(
        self,
        prediction_or_id: Prediction | str,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        on_update: Callable[[Prediction], object] | None = None,
        cancel_on_exit: bool = False,
    ) -> Prediction:
        """Wait until the prediction is terminal and return it if it succeeded.

        Raises PredictionFailed / PredictionCanceled / PredictionAborted / UnexpectedStatus for other
        outcomes and PredictionTimeout after `timeout` seconds in total (`None` waits without limit).
        `on_update` is called whenever status, logs or output change. With `cancel_on_exit=True` a
        timeout, Ctrl-C or an exception first sends a bounded best-effort cancel.
        """
        c = self._client
        return c._drive(
            _flow.wait(
                c._settings,
                prediction_or_id,
                deadline=_flow.deadline_for(c._settings, timeout),
                on_update=on_update,
                cancel_on_exit=cancel_on_exit,
            )
        )


class Client(_Base):
    """A synchronous CometAPI Replicate-format client.

    `api_key` falls back to COMETAPI_KEY, `base_url` to COMETAPI_BASE_URL and then
    https://api.cometapi.com/replicate/v1. `timeout` bounds each HTTP request (a number or an
    `httpx.Timeout`); `max_retries` applies to retryable requests. `validate_responses=True` checks
    every response against the bundled openapi.yaml and raises ContractViolation on a mismatch.
    Pass `http_client` to use your own `httpx.Client` (proxies, transports); it is not closed by us.
    """

    def __init__(
        self,
        api_key: str | Callable[[], str] | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        http_client: httpx.Client | None = None,
        validate_responses: bool = False,
        max_data_url_bytes: int = DEFAULT_MAX_DATA_URL_BYTES,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        poll_tuning: PollTuning | None = None,
    ) -> None:
        self._configure(
            api_key,
            base_url,
            timeout,
            max_retries,
            validate_responses,
            max_data_url_bytes,
            max_download_bytes,
            poll_tuning,
        )
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else _new_sync_http()
        self._sleep: Callable[[float], None] = time.sleep
        self.predictions = Predictions(self)

    def with_options(
        self, *, timeout: float | httpx.Timeout | None = None, max_retries: int | None = None
    ) -> Client:
        """A client with other per-request options that shares this one's connections and history."""
        other = object.__new__(Client)
        other._secret = self._secret
        other._settings = self._derive(timeout, max_retries)
        other._downloader = self._downloader
        other._owns_http = False
        other._http = self._http
        other._sleep = self._sleep
        other.predictions = Predictions(other)
        return other

    def run(
        self,
        model: str,
        input: object,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        wait: int | None = 60,
        on_created: Callable[[Prediction], object] | None = None,
        on_update: Callable[[Prediction], object] | None = None,
        cancel_after: float | str | None | Any = _flow.DERIVED,
        webhook: str | None = None,
        webhook_events_filter: list[str] | None = None,
    ) -> list[FileOutput]:
        """Create a prediction, wait for it, and return its output files (always a list).

        Sync mode by default (`wait=60`: the server holds the create up to 60 s); an unfinished answer
        is then polled. `timeout` is the total deadline (None: no deadline) and, unless
        `cancel_after` is given, also the server-side `Cancel-After`. `on_created(prediction)` runs
        as soon as the id exists (persist it to `resume` later). On the deadline, Ctrl-C or an
        exception the prediction gets a bounded best-effort cancel and the error carries its id.
        """
        prediction = self._drive(
            _flow.run(
                self._settings,
                model,
                input,
                timeout=timeout,
                wait=wait,
                cancel_after=cancel_after,
                on_created=on_created,
                on_update=on_update,
                webhook=webhook,
                webhook_events_filter=webhook_events_filter,
            )
        )
        return self._files(prediction)

    def resume(
        self,
        prediction_id: str,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        on_update: Callable[[Prediction], object] | None = None,
        cancel_on_exit: bool = False,
    ) -> list[FileOutput]:
        """Wait for an existing prediction (e.g. one saved by `on_created`) and return its files."""
        prediction = self.predictions.wait(
            prediction_id, timeout=timeout, on_update=on_update, cancel_on_exit=cancel_on_exit
        )
        return self._files(prediction)

    def close(self) -> None:
        """Close the HTTP connections this client opened (not a caller-supplied http_client)."""
        if self._owns_http:
            self._http.close()
        self._downloader.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the driver ------------------------------------------------------------------------------

    def _drive(self, flow: Flow[T]) -> T:
        """Perform a flow's effects until it returns; exceptions (Ctrl-C too) are thrown back into it."""
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                effect = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                result: T = stop.value
                return result
            value = error = None
            try:
                if type(effect) is Http:
                    value = self._send(effect)
                elif type(effect) is Sleep:
                    self._sleep(effect.seconds)
                elif type(effect) is Notify:
                    effect.callback(effect.prediction)
                else:  # pragma: no cover - flows yield only the three effects
                    raise TypeError(f"unknown effect {effect!r}")
            except BaseException as exc:
                error = exc

    def _send(self, effect: Http) -> httpx.Response:
        self._log_request(effect)
        request = self._http.build_request(
            effect.method,
            effect.target or effect.url,
            headers=effect.headers,
            json=effect.json,
            timeout=effect.timeout,
        )
        return self._http.send(request)


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One verified TLS context per process: building one costs ~0.2 s, and every client can share it."""
    return httpx.create_ssl_context()


def _new_sync_http() -> httpx.Client:
    from ._version import __version__

    return httpx.Client(
        verify=shared_ssl_context(),
        timeout=DEFAULT_TIMEOUT,
        limits=DEFAULT_LIMITS,
        follow_redirects=False,
        headers={"User-Agent": f"comet-replicate/{__version__}"},
    )


def _new_async_http() -> httpx.AsyncClient:
    from ._version import __version__

    return httpx.AsyncClient(
        verify=shared_ssl_context(),
        timeout=DEFAULT_TIMEOUT,
        limits=DEFAULT_LIMITS,
        follow_redirects=False,
        headers={"User-Agent": f"comet-replicate/{__version__}"},
    )


# ============================================================================ async


class AsyncRawPredictions:
    """`client.predictions.with_raw_response` of `AsyncClient` (see `RawPredictions`)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(self, model: str, input: object, **options: Any) -> Response[Prediction]:
        """`predictions.create` with the raw response."""
        c = self._client
        return _raw(await c._drive(_flow.create_raw(c._settings, model, input, **options)))

    async def get(self, prediction_id: str, **options: Any) -> Response[Prediction]:
        """`predictions.get` with the raw response."""
        c = self._client
        return _raw(await c._drive(_flow.get_raw(c._settings, prediction_id, **options)))

    async def cancel(self, prediction_id: str, **options: Any) -> Response[Prediction]:
        """`predictions.cancel` with the raw response."""
        c = self._client
        return _raw(await c._drive(_flow.cancel_raw(c._settings, prediction_id, **options)))


class AsyncPredictions:
    """`client.predictions` of `AsyncClient`: the same operations, awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self.with_raw_response = AsyncRawPredictions(client)

    async def create(
        self,
        model: str,
        input: object,
        *,
        wait: int | None = None,
        cancel_after: float | str | None = None,
        webhook: str | None = None,
        webhook_events_filter: list[str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> Prediction:
        """Create a prediction (see `Client.predictions.create`)."""
        c = self._client
        return await c._drive(
            _flow.create(
                c._settings,
                model,
                input,
                wait=wait,
                cancel_after=cancel_after,
                webhook=webhook,
                webhook_events_filter=webhook_events_filter,
                timeout=timeout,
                max_retries=max_retries,
            )
        )

    async def get(
        self,
        prediction_id: str,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> Prediction:
        """Fetch a prediction's current state from our base URL."""
        c = self._client
        return await c._drive(_flow.get(c._settings, prediction_id, timeout=timeout, max_retries=max_retries))

    async def cancel(
        self,
        prediction_id: str,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> Prediction:
        """Ask the server to cancel a prediction."""
        c = self._client
        return await c._drive(
            _flow.cancel(c._settings, prediction_id, timeout=timeout, max_retries=max_retries)
        )

    async def wait(
        self,
        prediction_or_id: Prediction | str,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        on_update: Callable[[Prediction], object] | None = None,
        cancel_on_exit: bool = False,
    ) -> Prediction:
        """Wait until terminal; return the prediction only if it succeeded (see `Client.predictions.wait`).

        `on_update` may be a plain function or a coroutine function.
        """
        c = self._client
        return await c._drive(
            _flow.wait(
                c._settings,
                prediction_or_id,
                deadline=_flow.deadline_for(c._settings, timeout),
                on_update=on_update,
                cancel_on_exit=cancel_on_exit,
            )
        )


class _InFlightGate:
    """One semaphore per event loop capping the requests in flight (asyncio primitives are bound to
    the loop that first waits on them, and a client may be reused across `asyncio.run` calls)."""

    __slots__ = ("_limit", "_loop", "_semaphore")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._loop: object = None
        self._semaphore: Any = None

    def semaphore(self) -> Any:
        import asyncio

        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            self._semaphore = asyncio.Semaphore(self._limit)
            self._loop = loop
        return self._semaphore


class AsyncClient(_Base):
    """The asyncio twin of `Client`: the same arguments and methods, awaited.

    Callbacks may be plain functions or coroutine functions. Many concurrent predictions on one
    client queue for connections instead of failing. Task cancellation during `run` sends a bounded
    best-effort cancel before the CancelledError propagates.
    """

    def __init__(
        self,
        api_key: str | Callable[[], str] | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
        validate_responses: bool = False,
        max_data_url_bytes: int = DEFAULT_MAX_DATA_URL_BYTES,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        poll_tuning: PollTuning | None = None,
    ) -> None:
        self._configure(
            api_key,
            base_url,
            timeout,
            max_retries,
            validate_responses,
            max_data_url_bytes,
            max_download_bytes,
            poll_tuning,
        )
        self._downloader.async_owned = True
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else _new_async_http()
        # A caller-supplied http_client keeps its own pool semantics: no gate in front of it.
        self._gate = _InFlightGate(MAX_IN_FLIGHT) if http_client is None else None
        import asyncio  # imported here: sync users never pay for asyncio

        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.predictions = AsyncPredictions(self)

    def with_options(
        self, *, timeout: float | httpx.Timeout | None = None, max_retries: int | None = None
    ) -> AsyncClient:
        """A client with other per-request options that shares this one's connections and history."""
        other = object.__new__(AsyncClient)
        other._secret = self._secret
        other._settings = self._derive(timeout, max_retries)
        other._downloader = self._downloader
        other._owns_http = False
        other._http = self._http
        other._gate = self._gate
        other._sleep = self._sleep
        other.predictions = AsyncPredictions(other)
        return other

    async def run(
        self,
        model: str,
        input: object,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        wait: int | None = 60,
        on_created: Callable[[Prediction], object] | None = None,
        on_update: Callable[[Prediction], object] | None = None,
        cancel_after: float | str | None | Any = _flow.DERIVED,
        webhook: str | None = None,
        webhook_events_filter: list[str] | None = None,
    ) -> list[FileOutput]:
        """Create, wait, and return the output files (see `Client.run`)."""
        prediction = await self._drive(
            _flow.run(
                self._settings,
                model,
                input,
                timeout=timeout,
                wait=wait,
                cancel_after=cancel_after,
                on_created=on_created,
                on_update=on_update,
                webhook=webhook,
                webhook_events_filter=webhook_events_filter,
            )
        )
        return self._files(prediction)

    async def resume(
        self,
        prediction_id: str,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        on_update: Callable[[Prediction], object] | None = None,
        cancel_on_exit: bool = False,
    ) -> list[FileOutput]:
        """Wait for an existing prediction and return its files (see `Client.resume`)."""
        prediction = await self.predictions.wait(
            prediction_id, timeout=timeout, on_update=on_update, cancel_on_exit=cancel_on_exit
        )
        return self._files(prediction)

    async def close(self) -> None:
        """Close the HTTP connections this client opened (not a caller-supplied http_client)."""
        if self._owns_http:
            await self._http.aclose()
        await self._downloader.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the driver ------------------------------------------------------------------------------

    async def _drive(self, flow: Flow[T]) -> T:
        """Perform a flow's effects until it returns; CancelledError is thrown back into it too."""
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                effect = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                result: T = stop.value
                return result
            value = error = None
            try:
                if type(effect) is Http:
                    value = await self._send(effect)
                elif type(effect) is Sleep:
                    await self._sleep(effect.seconds)
                elif type(effect) is Notify:
                    outcome = effect.callback(effect.prediction)
                    if isawaitable(outcome):
                        await outcome
                else:  # pragma: no cover - flows yield only the three effects
                    raise TypeError(f"unknown effect {effect!r}")
            except BaseException as exc:
                error = exc

    async def _send(self, effect: Http) -> httpx.Response:
        self._log_request(effect)
        request = self._http.build_request(
            effect.method,
            effect.target or effect.url,
            headers=effect.headers,
            json=effect.json,
            timeout=effect.timeout,
        )
        if effect.timeout is _flow.CANCEL_TIMEOUT:
            try:
                import asyncio

                async with asyncio.timeout(5.0):  # the cancel on exit is bounded even if phases add up
                    return await self._http.send(request)
            except TimeoutError as exc:
                raise httpx.ReadTimeout("cancel on exit took longer than 5 s", request=request) from exc
        if self._gate is None:
            return await self._http.send(request)
        gate = self._gate.semaphore()
        pool_timeout = effect.timeout.pool
        if pool_timeout is None:
            await gate.acquire()
        else:
            import asyncio

            try:
                async with asyncio.timeout(pool_timeout):  # waiting here is waiting for the pool
                    await gate.acquire()
            except TimeoutError as exc:
                message = "no free connection within the pool timeout"
                raise httpx.PoolTimeout(message, request=request) from exc
        try:
            return await self._http.send(request)
        finally:
            gate.release()
