"""`client.predictions`: create, get, cancel and wait, and their raw-response variants.

Each method builds a flow of the core and hands it to its client's driver; the sync and async
classes differ only in `def` versus `async def`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from . import (
    _generated,
    core,  # core.wait loads with the first wait or run, core.reconcile on first use
)
from ._constants import DEFAULT_WAIT_TIMEOUT
from .core import create, operations

if TYPE_CHECKING:
    from comet_replicate_api.models import Prediction
    from comet_replicate_api.types import Response

    from ._client import AsyncClient, Client
    from ._errors import CreateOutcomeUnknown
    from .core.effects import Reply

__all__ = ["AsyncPredictions", "AsyncRawPredictions", "Predictions", "RawPredictions"]


def _raw(answer: tuple[Prediction, Reply]) -> Response[Prediction]:
    prediction, reply = answer
    return _generated.raw_response(prediction, reply.status, reply.headers, reply.content)


# ============================================================================ sync


class RawPredictions:
    """`client.predictions.with_raw_response`: create, get and cancel returning the generated
    `Response` (`status_code`, `headers`, `content`, `parsed`), for headers such as `x-request-id`
    or `ratelimit-remaining`. Arguments are those of `client.predictions.create/get/cancel`."""

    def __init__(self, client: Client) -> None:
        self._client = client

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
    ) -> Response[Prediction]:
        """`predictions.create` with the raw response."""
        c = self._client
        flow = create.create_raw(
            c._state,
            model,
            input,
            wait=wait,
            cancel_after=cancel_after,
            webhook=webhook,
            webhook_events_filter=webhook_events_filter,
            timeout=timeout,
            max_retries=max_retries,
        )
        return _raw(c._driver.run(flow))

    def get(
        self,
        prediction_id: str,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> Response[Prediction]:
        """`predictions.get` with the raw response."""
        c = self._client
        flow = operations.get_raw(c._state, prediction_id, timeout=timeout, max_retries=max_retries)
        return _raw(c._driver.run(flow))

    def cancel(
        self,
        prediction_id: str,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> Response[Prediction]:
        """`predictions.cancel` with the raw response."""
        c = self._client
        flow = operations.cancel_raw(c._state, prediction_id, timeout=timeout, max_retries=max_retries)
        return _raw(c._driver.run(flow))


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
        flow = create.create_raw(
            c._state,
            model,
            input,
            wait=wait,
            cancel_after=cancel_after,
            webhook=webhook,
            webhook_events_filter=webhook_events_filter,
            timeout=timeout,
            max_retries=max_retries,
        )
        return c._driver.run(flow)[0]

    def get(
        self,
        prediction_id: str,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> Prediction:
        """Fetch a prediction's current state from our base URL."""
        c = self._client
        flow = operations.get_raw(c._state, prediction_id, timeout=timeout, max_retries=max_retries)
        return c._driver.run(flow)[0]

    def cancel(
        self,
        prediction_id: str,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> Prediction:
        """Ask the server to cancel a prediction (CometAPI may answer 404/405: not supported there)."""
        c = self._client
        flow = operations.cancel_raw(c._state, prediction_id, timeout=timeout, max_retries=max_retries)
        return c._driver.run(flow)[0]

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
        deadline = core.wait.deadline_for(c._state, timeout)
        flow = core.wait.wait(
            c._state, prediction_or_id, deadline=deadline, on_update=on_update, cancel_on_exit=cancel_on_exit
        )
        return c._driver.run(flow)

    def reconcile(self, error: CreateOutcomeUnknown, *, timeout: float | None = None) -> Prediction:
        """Look for the prediction a lost create made (see `CreateOutcomeUnknown`) and return it.

        Lists the predictions created since shortly before the create was sent (30 s of clock skew
        allowed) and matches model and input exactly. Returns the prediction if exactly one matches;
        otherwise raises `error` again, saying what was found: the candidate ids if several match
        (never a guess), that it most likely does not exist if none does, or that this server cannot
        reconcile (no list route). Bounded by `timeout` seconds and the library's own cap.
        """
        c = self._client
        flow = core.reconcile.reconcile(c._state, error, deadline=core.wait.deadline_for(c._state, timeout))
        return c._driver.run(flow)[0]


# ============================================================================ async


class AsyncRawPredictions:
    """`client.predictions.with_raw_response` of `AsyncClient` (see `RawPredictions`)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

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
    ) -> Response[Prediction]:
        """`predictions.create` with the raw response."""
        c = self._client
        flow = create.create_raw(
            c._state,
            model,
            input,
            wait=wait,
            cancel_after=cancel_after,
            webhook=webhook,
            webhook_events_filter=webhook_events_filter,
            timeout=timeout,
            max_retries=max_retries,
        )
        return _raw(await c._driver.run(flow))

    async def get(
        self,
        prediction_id: str,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> Response[Prediction]:
        """`predictions.get` with the raw response."""
        c = self._client
        flow = operations.get_raw(c._state, prediction_id, timeout=timeout, max_retries=max_retries)
        return _raw(await c._driver.run(flow))

    async def cancel(
        self,
        prediction_id: str,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> Response[Prediction]:
        """`predictions.cancel` with the raw response."""
        c = self._client
        flow = operations.cancel_raw(c._state, prediction_id, timeout=timeout, max_retries=max_retries)
        return _raw(await c._driver.run(flow))


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
        flow = create.create_raw(
            c._state,
            model,
            input,
            wait=wait,
            cancel_after=cancel_after,
            webhook=webhook,
            webhook_events_filter=webhook_events_filter,
            timeout=timeout,
            max_retries=max_retries,
        )
        return (await c._driver.run(flow))[0]

    async def get(
        self,
        prediction_id: str,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> Prediction:
        """Fetch a prediction's current state from our base URL."""
        c = self._client
        flow = operations.get_raw(c._state, prediction_id, timeout=timeout, max_retries=max_retries)
        return (await c._driver.run(flow))[0]

    async def cancel(
        self,
        prediction_id: str,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> Prediction:
        """Ask the server to cancel a prediction."""
        c = self._client
        flow = operations.cancel_raw(c._state, prediction_id, timeout=timeout, max_retries=max_retries)
        return (await c._driver.run(flow))[0]

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
        deadline = core.wait.deadline_for(c._state, timeout)
        flow = core.wait.wait(
            c._state, prediction_or_id, deadline=deadline, on_update=on_update, cancel_on_exit=cancel_on_exit
        )
        return await c._driver.run(flow)

    async def reconcile(self, error: CreateOutcomeUnknown, *, timeout: float | None = None) -> Prediction:
        """Look for the prediction a lost create made (see `Client.predictions.reconcile`)."""
        c = self._client
        flow = core.reconcile.reconcile(c._state, error, deadline=core.wait.deadline_for(c._state, timeout))
        return (await c._driver.run(flow))[0]
