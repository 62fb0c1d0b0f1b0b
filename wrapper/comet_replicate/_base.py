"""What `Client` and `AsyncClient` share: building a client family's state from the constructor's
arguments (every one checked before anything is sent), and the read-only views of it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

import comet_replicate  # the package: `_files` and `output_urls` (output files) load on first use

from ._constants import MAX_HELD_CREATES, RECONCILE_UNKNOWN_CREATES
from ._errors import InputValidationError
from ._http import (
    Secret,
    auth_headers,
    auth_provider,
    checked_key,
    held_create_limit,
    resolve_base_url,
    resolve_key,
    setup_logging,
)
from ._inputs import VALIDATION_MODES, InputValidation
from .core.pacing import DEFAULT_RATE_LIMITS, Pacer, RateLimits, SyncSlots
from .core.parse import file_urls
from .core.schedule import DurationEstimator, PollTuning
from .core.state import Config, Shared, State, as_timeout

if TYPE_CHECKING:
    from comet_replicate_api.models import Prediction

    from ._drivers import AsyncDriver, SyncDriver
    from ._files import Downloader, FileOutput
    from .core.pacing_views import RateLimitState

__all__ = ["ClientBase", "Downloads", "client_state"]


def client_state(
    api_key: Secret | Callable[[], str] | None,
    base_url: str | None,
    timeout: float | httpx.Timeout,
    max_retries: int,
    validate_responses: bool,
    max_data_url_bytes: int,
    poll_tuning: PollTuning | None,
    input_validation: InputValidation,
    max_response_bytes: int,
    own_http_client: bool = False,
    reconcile_unknown_creates: bool = RECONCILE_UNKNOWN_CREATES,
    rate_limits: RateLimits | None = DEFAULT_RATE_LIMITS,
    max_held_creates: int = MAX_HELD_CREATES,
) -> tuple[State, Secret]:
    """A new client family's state, with every argument checked (the key before anything is sent).

    `api_key` comes wrapped (`hidden_key`): no frame here ever holds the key in plain text."""
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
        secret = Secret(checked_key(api_key()))  # fail at construction, not at the first request
    else:
        secret = resolve_key(api_key)
    fixed = auth_headers(secret.get())
    config = Config(
        base_url=resolve_base_url(base_url, own_http_client=own_http_client),
        auth=provider if provider is not None else (lambda: fixed),
        timeout=as_timeout(timeout),
        max_retries=max_retries,
        validate_responses=validate_responses,
        max_data_url_bytes=max_data_url_bytes,
        input_validation=input_validation,
        max_response_bytes=_positive("max_response_bytes", max_response_bytes),
        tuning=poll_tuning or PollTuning(),
        reconcile_unknown_creates=bool(reconcile_unknown_creates),
    )
    if rate_limits is not None and not isinstance(rate_limits, RateLimits):
        raise ValueError(
            f"rate_limits must be a RateLimits (e.g. RateLimits(create=RateLimit(600, per=60))) or None, "
            f"got {rate_limits!r}"
        )
    pacer = None if rate_limits is None else Pacer.of(rate_limits)
    slots = SyncSlots(held_create_limit(max_held_creates))
    shared = Shared(clock=time.monotonic, wall_clock=time.time, pacer=pacer, sync_slots=slots)
    return State(config, shared), secret


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive number of bytes, got {value!r}")
    return value


class Downloads:
    """A client family's output `Downloader`, built on first use: the file machinery (`_files`,
    `core.download`) loads when a file is first fetched, not with the client (a create never needs it)."""

    __slots__ = ("_allow_link_local", "_async_driver", "_lock", "_made", "_max_bytes", "_sync_driver")

    def __init__(
        self,
        max_bytes: int,
        allow_link_local: bool,
        *,
        sync_driver: SyncDriver | None = None,
        async_driver: AsyncDriver | None = None,
    ) -> None:
        self._max_bytes = max_bytes
        self._allow_link_local = allow_link_local
        self._sync_driver = sync_driver
        self._async_driver = async_driver
        self._made: Downloader | None = None
        self._lock = threading.Lock()

    def get(self) -> Downloader:
        """The downloader (the same one for every copy of the client)."""
        made = self._made
        if made is None:
            with self._lock:
                made = self._made
                if made is None:
                    made = self._made = comet_replicate._files.Downloader(
                        max_bytes=self._max_bytes,
                        allow_link_local=self._allow_link_local,
                        sync_driver=self._sync_driver,
                        async_driver=self._async_driver,
                    )
        return made

    def close(self) -> None:
        """Close what the downloader opened itself, if it was ever built."""
        if self._made is not None:
            self._made.close()


class ClientBase:
    """What both clients share: their state, key, downloader and the read-only views of them."""

    def _bind(self, state: State, secret: Secret, downloads: Downloads, owner: bool) -> None:
        """Set what both clients hold (declared here, not as class annotations, to keep help() clean)."""
        self._state: State = state
        self._secret: Secret = secret
        self._downloads: Downloads = downloads
        self._owner: bool = owner

    @property
    def _downloader(self) -> Downloader:
        return self._downloads.get()

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
    def reconcile_unknown_creates(self) -> bool:
        """Whether a lost create is looked for in the list route before `CreateOutcomeUnknown`."""
        return self._state.config.reconcile_unknown_creates

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
        state: State | None = getattr(self, "_state", None)  # None while half-built (a failed __init__)
        if state is None:
            return f"{type(self).__name__}(api_key=<redacted>, not built)"
        return (
            f"{type(self).__name__}(base_url={state.config.base_url!r}, api_key=<redacted>, "
            f"max_retries={state.config.max_retries})"
        )

    def files(self, prediction: Prediction) -> list[FileOutput]:
        """The output files of a prediction (e.g. from `predictions.wait`) as `FileOutput`s that
        download through this client; `[]` while it has no output (see `output_urls`)."""
        return comet_replicate._files.file_outputs(
            comet_replicate.output_urls(prediction), self._downloader, prediction.id
        )

    def _files(self, prediction: Prediction) -> list[FileOutput]:
        return comet_replicate._files.file_outputs(file_urls(prediction), self._downloader, prediction.id)
