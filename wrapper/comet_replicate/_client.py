"""`Client` and `AsyncClient`: configuration, a driver, and the resources that hand flows to it.

Both are built by one constructor (`_assemble`) that `with_options` reuses: a copy gets its own
`Config` but the same `Shared` state, connections and downloader, so what one copy learns (durations,
a server that refuses the optional create headers) holds for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Self

import httpx

from . import core  # core.wait (run and wait) loads with the first run
from ._base import ClientBase, Downloads, client_state
from ._constants import (
    CANCEL_AFTER_FROM_TIMEOUT,
    DEFAULT_INPUT_VALIDATION,
    DEFAULT_MAX_DATA_URL_BYTES,
    DEFAULT_MAX_DOWNLOAD_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RUN_WAIT,
    DEFAULT_TIMEOUT,
    DEFAULT_WAIT_TIMEOUT,
    MAX_HELD_CREATES,
    MAX_IN_FLIGHT,
    RECONCILE_UNKNOWN_CREATES,
)
from ._drivers import AsyncDriver, SyncDriver
from ._exchange import InFlightGate
from ._http import Secret, api_client, async_api_client, held_limits, hidden_key, pool_limits
from ._inputs import InputValidation
from ._resources import AsyncPredictions, Predictions
from .core.pacing import DEFAULT_RATE_LIMITS, RateLimits
from .core.schedule import PollTuning
from .core.state import State

if TYPE_CHECKING:
    from comet_replicate_api.models import Prediction

    from ._files import FileOutput

__all__ = ["AsyncClient", "Client"]


class Client(ClientBase):
    """A synchronous CometAPI Replicate-format client.

    `api_key` falls back to COMETAPI_KEY, `base_url` to COMETAPI_BASE_URL and then
    https://api.cometapi.com/replicate/v1. `timeout` bounds each HTTP request (a number or an
    `httpx.Timeout`); `max_retries` applies to retryable requests. `validate_responses=True` checks
    every response against the bundled openapi.yaml and raises ContractViolation on a mismatch.
    Pass `http_client` to use your own `httpx.Client` (proxies, transports) for every request,
    output downloads included (they never carry the key); it is not closed by us. With it, plain
    http is also allowed to a `*.test` host (an in-process transport, as the emulator's
    `comet_inprocess_client` fixture uses); otherwise only to a loopback host.
    `input_validation` is how much of a known model's input schema is enforced before sending:
    "warn" (default: known fields checked, unknown ones sent with a warning), "strict" (unknown
    fields refused too) or "off" (sent as given); `max_data_url_bytes` caps a local file sent inline.
    `max_response_bytes` caps each API response body read (8 MiB), `max_download_bytes` each output
    file. Downloads from link-local hosts (169.254.0.0/16, fe80::/10: cloud metadata services) are
    refused, redirects included, unless `allow_link_local_downloads=True`.
    When a create's answer is lost after it may have reached the server, the client looks for the
    prediction in the list route (`GET /predictions`: model and input must match exactly) and carries
    on with it if exactly one matches; `reconcile_unknown_creates=False` raises `CreateOutcomeUnknown`
    at once instead.
    `rate_limits` paces the client itself under the API's limits, creates apart from every other
    request (default: Replicate's documented 600 creates and 3,000 other requests a minute, also
    CometAPI's until a 429 says otherwise); it slows down on 429s, honours `Retry-After`, and speeds
    up again after quiet time. `client.rate_limits` shows its state; `rate_limits=None` turns it off.
    `run` holds up to `max_held_creates` creates open at once in sync mode (`Prefer: wait`: the answer
    is the finished prediction, no polling; default 600, one minute of creates at Replicate's limit,
    never more than a quarter of the process's file-descriptor limit); beyond them it creates without
    waiting and polls. Each held create is an open connection: lower it for a gateway or proxy that
    limits open connections, 0 to always poll.
    Predictions are made with `client.run(...)` or `client.predictions.create/get/cancel/wait`.
    """

    @property
    def predictions(self) -> Predictions:
        """`client.predictions`: `create`, `get`, `cancel` and `wait`, one request or wait each, and
        `with_raw_response` for the same calls returning status, headers and body."""
        return self._predictions

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
        reconcile_unknown_creates: bool = RECONCILE_UNKNOWN_CREATES,
        rate_limits: RateLimits | None = DEFAULT_RATE_LIMITS,
        max_held_creates: int = MAX_HELD_CREATES,
    ) -> None:
        """Check every argument (the key first); no request is sent until the first call. The
        class docstring describes each argument."""
        key = hidden_key(api_key)  # first: a failed construction leaves no plain key in its frames
        del api_key
        state, secret = client_state(
            key,
            base_url,
            timeout,
            max_retries,
            validate_responses,
            max_data_url_bytes,
            poll_tuning,
            input_validation,
            max_response_bytes,
            http_client is not None,
            reconcile_unknown_creates,
            rate_limits,
            max_held_creates,
        )
        held = state.shared.sync_slots.limit
        http = http_client if http_client is not None else api_client(limits=pool_limits(held))
        # A caller's http_client carries the downloads too (its proxies, its in-process transport).
        driver = SyncDriver(http, owns_http=http_client is None, downloads_via=http_client)
        self._assemble(
            state,
            secret,
            driver,
            Downloads(max_download_bytes, allow_link_local_downloads, sync_driver=driver),
            True,
        )

    def _assemble(
        self, state: State, secret: Secret, driver: SyncDriver, downloads: Downloads, owner: bool
    ) -> None:
        """The one constructor: `__init__` and `with_options` both end here."""
        self._bind(state, secret, downloads, owner)
        self._driver: SyncDriver = driver
        self._http: httpx.Client = driver.http  # type: ignore[assignment]  # a Client's driver always has one
        self._predictions: Predictions = Predictions(self)

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
        poll_tuning: PollTuning | None = None,
    ) -> Client:
        """A client with other per-request options (None: this client's) that shares this one's
        connections, history and rate limits; `poll_tuning` gives its waits another poll schedule."""
        other = object.__new__(Client)
        other._assemble(
            self._state.with_options(timeout, max_retries, poll_tuning),
            self._secret,
            self._driver,
            self._downloads,
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
        flow = core.wait.run(
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
            self._downloads.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(ClientBase):
    """The asyncio twin of `Client`: the same arguments and methods, awaited.

    Callbacks may be plain functions or coroutine functions. Many concurrent predictions on one
    client queue for connections instead of failing. Task cancellation during `run` sends a bounded
    best-effort cancel before the CancelledError propagates.
    """

    @property
    def predictions(self) -> AsyncPredictions:
        """`client.predictions`: awaitable `create`, `get`, `cancel` and `wait`, and
        `with_raw_response` for the same calls returning status, headers and body."""
        return self._predictions

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
        reconcile_unknown_creates: bool = RECONCILE_UNKNOWN_CREATES,
        rate_limits: RateLimits | None = DEFAULT_RATE_LIMITS,
        max_held_creates: int = MAX_HELD_CREATES,
    ) -> None:
        """Check every argument (the key first); no request is sent until the first call. The
        class docstring describes each argument."""
        key = hidden_key(api_key)  # first: a failed construction leaves no plain key in its frames
        del api_key
        state, secret = client_state(
            key,
            base_url,
            timeout,
            max_retries,
            validate_responses,
            max_data_url_bytes,
            poll_tuning,
            input_validation,
            max_response_bytes,
            http_client is not None,
            reconcile_unknown_creates,
            rate_limits,
            max_held_creates,
        )
        # A caller-supplied http_client keeps its own pool semantics: no gate in front of it.
        own = http_client is None
        held = state.shared.sync_slots.limit
        # API requests go to the base URL only: a plain-http one (a local emulator) needs no TLS context
        tls = not state.config.base_url.lower().startswith("http:")
        http = async_api_client(pool_limits(0), tls=tls) if http_client is None else http_client
        # Held creates have connections of their own (none queues behind short requests, none is
        # queued for); a caller's client carries everything.
        held_http = async_api_client(held_limits(held), tls=tls, held=True) if own and held else None
        driver = AsyncDriver(
            http,
            owns_http=own,
            gate=InFlightGate(MAX_IN_FLIGHT) if own else None,
            downloads_via=http_client,  # downloads go through the caller's client too
            held_http=held_http,
        )
        self._assemble(
            state,
            secret,
            driver,
            Downloads(max_download_bytes, allow_link_local_downloads, async_driver=driver),
            True,
        )

    def _assemble(
        self, state: State, secret: Secret, driver: AsyncDriver, downloads: Downloads, owner: bool
    ) -> None:
        """The one constructor: `__init__` and `with_options` both end here."""
        self._bind(state, secret, downloads, owner)
        self._driver: AsyncDriver = driver
        self._http: httpx.AsyncClient = driver.http  # type: ignore[assignment]  # an AsyncClient's driver always has one
        self._predictions: AsyncPredictions = AsyncPredictions(self)

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
        poll_tuning: PollTuning | None = None,
    ) -> AsyncClient:
        """A client with other per-request options (None: this client's) that shares this one's
        connections, history and rate limits; `poll_tuning` gives its waits another poll schedule."""
        other = object.__new__(AsyncClient)
        other._assemble(
            self._state.with_options(timeout, max_retries, poll_tuning),
            self._secret,
            self._driver,
            self._downloads,
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
        flow = core.wait.run(
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
            self._downloads.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
