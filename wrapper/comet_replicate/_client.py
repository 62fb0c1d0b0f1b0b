"""`Client` and `AsyncClient`: configuration, a driver, and the resources that hand flows to it.

Both are built by one constructor (`_assemble`) that `with_options` reuses: a copy gets its own
`Config` but the same `Shared` state, connections and downloader, so what one copy learns (durations,
a server that refuses the optional create headers) holds for all of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Self

import httpx

from ._constants import (
    DEFAULT_INPUT_VALIDATION,
    DEFAULT_MAX_DATA_URL_BYTES,
    DEFAULT_MAX_DOWNLOAD_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RUN_WAIT,
    DEFAULT_TIMEOUT,
    DEFAULT_WAIT_TIMEOUT,
    MAX_IN_FLIGHT,
)
from ._drivers import AsyncDriver, InFlightGate, SyncDriver
from ._errors import InputValidationError
from ._files import Downloader, FileOutput
from ._http import (
    Secret,
    api_client,
    async_api_client,
    auth_headers,
    auth_provider,
    checked_key,
    resolve_base_url,
    resolve_key,
    setup_logging,
)
from ._inputs import VALIDATION_MODES, InputValidation
from ._resources import AsyncPredictions, Predictions
from .core.pacing import DEFAULT_RATE_LIMITS, Pacer, RateLimits, RateLimitState
from .core.parse import file_urls
from .core.schedule import DurationEstimator, PollTuning
from .core.state import Config, Shared, State, as_timeout
from .core.wait import CANCEL_AFTER_FROM_TIMEOUT, run

if TYPE_CHECKING:
    from comet_replicate_api.models import Prediction

__all__ = ["AsyncClient", "Client"]


def _state(
    api_key: str | Callable[[], str] | None,
    base_url: str | None,
    timeout: float | httpx.Timeout,
    max_retries: int,
    validate_responses: bool,
    max_data_url_bytes: int,
    poll_tuning: PollTuning | None,
    input_validation: InputValidation,
    max_response_bytes: int,
    rate_limits: RateLimits | None,
) -> tuple[State, Secret]:
    """A new client family's state, with every argument checked (the key before anything is sent)."""
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be a non-negative integer, got {max_retries!r}")
    if input_validation not in VALIDATION_MODES:
        raise InputValidationError(
            f"input_validation={input_validation!r} is not a mode; use one of {', '.join(VALIDATION_MODES)}",
            field="input_validation",
            value=input_validation,
            allowed=" | ".join(VALIDATION_MODES),
        )
    setup_logging()
    provider = None
    if callable(api_key):
        provider = auth_provider(api_key)
        api_key = checked_key(api_key())  # fail at construction, not at the first request
    secret = resolve_key(api_key)
    fixed = auth_headers(secret.get())
    config = Config(
        base_url=resolve_base_url(base_url),
        auth=provider if provider is not None else (lambda: fixed),
        timeout=as_timeout(timeout),
        max_retries=max_retries,
        validate_responses=validate_responses,
        max_data_url_bytes=max_data_url_bytes,
        input_validation=input_validation,
        max_response_bytes=_positive("max_response_bytes", max_response_bytes),
        tuning=poll_tuning or PollTuning(),
    )
    if rate_limits is not None and not isinstance(rate_limits, RateLimits):
        raise ValueError(
            f"rate_limits must be a RateLimits (e.g. RateLimits(create=RateLimit(600, per=60))) or None, "
            f"got {rate_limits!r}"
        )
    pacer = None if rate_limits is None else Pacer.of(rate_limits)
    return State(config, Shared(clock=time.monotonic, wall_clock=time.time, pacer=pacer)), secret


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive number of bytes, got {value!r}")
    return value


class _Base:
    """What both clients share: their state, key, downloader and the read-only views of them."""

    _state: State
    _secret: Secret
    _downloader: Downloader
    _owner: bool

    @property
    def base_url(self) -> str:
        """The API base URL every request goes to (polls included)."""
        return self._state.config.base_url

    @property
    def timeout(self) -> httpx.Timeout:
        """The per-request HTTP timeout."""
        return self._state.config.timeout

    @property
    def max_retries(self) -> int:
        """How many times a retryable request is retried."""
        return self._state.config.max_retries

    @property
    def estimator(self) -> DurationEstimator:
        """Per-model durations learned from finished predictions (drives the poll schedule)."""
        return self._state.shared.estimator

    @property
    def rate_limits(self) -> RateLimitState | None:
        """The client's pacing now, for creates and for every other request: the configured limit,
        what it allows after any 429s, sends in the window, requests waiting, holds (None: the client
        was built with `rate_limits=None`). Shared by every `with_options` copy."""
        shared = self._state.shared
        return None if shared.pacer is None else shared.pacer.state(shared.clock())

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, api_key=<redacted>, "
            f"max_retries={self.max_retries})"
        )

    def _files(self, prediction: Prediction) -> list[FileOutput]:
        return [
            FileOutput(url, self._downloader, index=i, prediction_id=prediction.id)
            for i, url in enumerate(file_urls(prediction))
        ]


class Client(_Base):
    """A synchronous CometAPI Replicate-format client.

    `api_key` falls back to COMETAPI_KEY, `base_url` to COMETAPI_BASE_URL and then
    https://api.cometapi.com/replicate/v1. `timeout` bounds each HTTP request (a number or an
    `httpx.Timeout`); `max_retries` applies to retryable requests. `validate_responses=True` checks
    every response against the bundled openapi.yaml and raises ContractViolation on a mismatch.
    Pass `http_client` to use your own `httpx.Client` (proxies, transports); it is not closed by us.
    `input_validation` is how much of a known model's input schema is enforced before sending:
    "warn" (default: known fields checked, unknown ones sent with a warning), "strict" (unknown
    fields refused too) or "off" (sent as given); `max_data_url_bytes` caps a local file sent inline.
    `max_response_bytes` caps each API response body read (8 MiB), `max_download_bytes` each output
    file. Downloads from link-local hosts (169.254.0.0/16, fe80::/10: cloud metadata services) are
    refused, redirects included, unless `allow_link_local_downloads=True`.
    Predictions are made with `client.run(...)` or `client.predictions.create/get/cancel/wait`.

    `rate_limits` paces the client itself under the API's limits, creates apart from every other
    request (default: Replicate's documented 600 creates and 3,000 other requests a minute, also
    CometAPI's until a 429 says otherwise); it slows down on 429s, honours `Retry-After`, and speeds
    up again after quiet time. `client.rate_limits` shows its state; `rate_limits=None` turns it off.
    """

    _driver: SyncDriver
    _http: httpx.Client
    predictions: Predictions

    def __init__(
        self,
        api_key: str | Callable[[], str] | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
        validate_responses: bool = False,
        max_data_url_bytes: int = DEFAULT_MAX_DATA_URL_BYTES,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        poll_tuning: PollTuning | None = None,
        input_validation: InputValidation = DEFAULT_INPUT_VALIDATION,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        allow_link_local_downloads: bool = False,
        rate_limits: RateLimits | None = DEFAULT_RATE_LIMITS,
    ) -> None:
        state, secret = _state(
            api_key,
            base_url,
            timeout,
            max_retries,
            validate_responses,
            max_data_url_bytes,
            poll_tuning,
            input_validation,
            max_response_bytes,
            rate_limits,
        )
        http = http_client if http_client is not None else api_client()
        driver = SyncDriver(http, owns_http=http_client is None)
        self._assemble(
            state,
            secret,
            driver,
            Downloader(
                max_bytes=max_download_bytes, sync_driver=driver, allow_link_local=allow_link_local_downloads
            ),
            True,
        )

    def _assemble(
        self, state: State, secret: Secret, driver: SyncDriver, downloader: Downloader, owner: bool
    ) -> None:
        """The one constructor: `__init__` and `with_options` both end here."""
        self._state = state
        self._secret = secret
        self._driver = driver
        self._http = driver.http  # type: ignore[assignment]  # a Client's driver always has one
        self._downloader = downloader
        self._owner = owner
        self.predictions = Predictions(self)

    def with_options(
        self, *, timeout: float | httpx.Timeout | None = None, max_retries: int | None = None
    ) -> Client:
        """A client with other per-request options that shares this one's connections and history."""
        other = object.__new__(Client)
        other._assemble(
            self._state.with_options(timeout, max_retries),
            self._secret,
            self._driver,
            self._downloader,
            False,
        )
        return other

    def run(
        self,
        model: str,
        input: object,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        wait: int | None = DEFAULT_RUN_WAIT,
        on_created: Callable[[Prediction], object] | None = None,
        on_update: Callable[[Prediction], object] | None = None,
        cancel_after: float | str | None = CANCEL_AFTER_FROM_TIMEOUT,
        webhook: str | None = None,
        webhook_events_filter: list[str] | None = None,
    ) -> list[FileOutput]:
        """Create a prediction, wait for it, and return its output files (always a list).

        Sync mode by default (`wait=60`: the server holds the create up to 60 s); an unfinished answer
        is then polled. `timeout` is the total deadline (None: no deadline). `cancel_after` is the
        server-side `Cancel-After`: by default (`"timeout"`) the same as `timeout`; seconds, a
        duration such as '5m', or None for none. `on_created(prediction)` runs as soon as the id
        exists (persist it to `resume` later). On the deadline, Ctrl-C or an exception the
        prediction gets a bounded best-effort cancel and the error carries its id.
        """
        flow = run(
            self._state,
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
        return self._files(self._driver.run(flow))

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
        if self._owner:
            self._driver.close()
            self._downloader.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_Base):
    """The asyncio twin of `Client`: the same arguments and methods, awaited.

    Callbacks may be plain functions or coroutine functions. Many concurrent predictions on one
    client queue for connections instead of failing. Task cancellation during `run` sends a bounded
    best-effort cancel before the CancelledError propagates.
    """

    _driver: AsyncDriver
    _http: httpx.AsyncClient
    predictions: AsyncPredictions

    def __init__(
        self,
        api_key: str | Callable[[], str] | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
        validate_responses: bool = False,
        max_data_url_bytes: int = DEFAULT_MAX_DATA_URL_BYTES,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        poll_tuning: PollTuning | None = None,
        input_validation: InputValidation = DEFAULT_INPUT_VALIDATION,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        allow_link_local_downloads: bool = False,
        rate_limits: RateLimits | None = DEFAULT_RATE_LIMITS,
    ) -> None:
        state, secret = _state(
            api_key,
            base_url,
            timeout,
            max_retries,
            validate_responses,
            max_data_url_bytes,
            poll_tuning,
            input_validation,
            max_response_bytes,
            rate_limits,
        )
        # A caller-supplied http_client keeps its own pool semantics: no gate in front of it.
        own = http_client is None
        http = async_api_client() if http_client is None else http_client
        driver = AsyncDriver(http, owns_http=own, gate=InFlightGate(MAX_IN_FLIGHT) if own else None)
        self._assemble(
            state,
            secret,
            driver,
            Downloader(
                max_bytes=max_download_bytes, async_driver=driver, allow_link_local=allow_link_local_downloads
            ),
            True,
        )

    def _assemble(
        self, state: State, secret: Secret, driver: AsyncDriver, downloader: Downloader, owner: bool
    ) -> None:
        """The one constructor: `__init__` and `with_options` both end here."""
        self._state = state
        self._secret = secret
        self._driver = driver
        self._http = driver.http  # type: ignore[assignment]  # an AsyncClient's driver always has one
        self._downloader = downloader
        self._owner = owner
        self.predictions = AsyncPredictions(self)

    def with_options(
        self, *, timeout: float | httpx.Timeout | None = None, max_retries: int | None = None
    ) -> AsyncClient:
        """A client with other per-request options that shares this one's connections and history."""
        other = object.__new__(AsyncClient)
        other._assemble(
            self._state.with_options(timeout, max_retries),
            self._secret,
            self._driver,
            self._downloader,
            False,
        )
        return other

    async def run(
        self,
        model: str,
        input: object,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        wait: int | None = DEFAULT_RUN_WAIT,
        on_created: Callable[[Prediction], object] | None = None,
        on_update: Callable[[Prediction], object] | None = None,
        cancel_after: float | str | None = CANCEL_AFTER_FROM_TIMEOUT,
        webhook: str | None = None,
        webhook_events_filter: list[str] | None = None,
    ) -> list[FileOutput]:
        """Create, wait, and return the output files (see `Client.run`)."""
        flow = run(
            self._state,
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
        return self._files(await self._driver.run(flow))

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
        if self._owner:
            await self._driver.aclose()
            self._downloader.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
