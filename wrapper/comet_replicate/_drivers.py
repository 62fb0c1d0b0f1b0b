"""The two drivers that perform a flow's effects: the only sync/async twins in the library.

A driver sends each effect's result back into the flow (or throws the exception in, Ctrl-C and
task cancellation included, so the flow can send its cancel on exit) until the flow returns.
Every bound comes from the effect: per-phase timeouts, the total time of the exchange (both
drivers stop reading once it is spent and raise `httpx.ReadTimeout`), the body cap of a download,
and whether a request may skip the async client's in-flight queue.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

import comet_replicate  # the package: `_transport` loads with the first async download client

from ._exchange import (
    Body,
    InFlightGate,
    SendTrace,
    SentKeys,
    aio,
    api_request,
    core_download_request,
    download_request,
    isawaitable,
    phase_timeout,
    raised_for,
    scrubbed_error,
    scrubbed_reply,
)
from ._http import (
    ApiClient,
    AsyncApiClient,
    async_download_client,
    download_client,
    log,
    log_request,
)
from ._interrupts import DeferredInterrupt
from .core.effects import Fetch, Fetched, Flow, Http, Notify, Reply, Sleep

if TYPE_CHECKING:
    from ._transport import HeldTransport

__all__ = ["AsyncDriver", "InFlightGate", "SyncDriver"]

T = TypeVar("T")


# ============================================================================ sync


class SyncDriver:
    """Runs flows with `httpx.Client` and `time.sleep`.

    `http` sends API requests (None: a driver only for downloads); downloads use a client of their
    own (no key; `download_client`), opened on the first `Fetch`, or `downloads_via`: a caller's
    client (its proxies and transport, e.g. an in-process emulator), never closed here. Either way
    one `Fetch` is one request: the download flow follows redirects itself.
    """

    def __init__(
        self,
        http: httpx.Client | None,
        *,
        owns_http: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        download_transport: httpx.BaseTransport | None = None,
        downloads_via: httpx.Client | None = None,
    ) -> None:
        self.http = http
        self.owns_http = owns_http
        self.sleep = sleep
        self._download_transport = download_transport
        self._downloads: httpx.Client | None = None
        self._downloads_via = downloads_via
        self._keys = SentKeys()

    def run(self, flow: Flow[T]) -> T:
        """Perform a flow's effects until it returns; exceptions (Ctrl-C too) are thrown back into it.

        Around a shielded request Ctrl-C is held back (`DeferredInterrupt`) until the flow has taken
        the answer and yielded its next effect, so the answer cannot be lost between the socket and
        the flow; the held interrupt is thrown in at the flow's next request or sleep (a callback
        such as `on_created` runs first), or raised when the flow returns.
        """
        value: Any = None
        error: BaseException | None = None
        held: BaseException | None = None
        deferred: DeferredInterrupt | None = None
        while True:
            try:
                effect = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                held = self._release(deferred, held)
                if held is not None:
                    raise held from None
                result: T = stop.value
                return result
            except BaseException:
                self._release(deferred, held)
                raise
            if deferred is not None:
                held, deferred = self._release(deferred, held), None
            value = error = None
            if held is not None and type(effect) is not Notify:
                error, held = held, None
                continue
            try:
                if type(effect) is Http:
                    if effect.shield:
                        deferred = DeferredInterrupt().__enter__()
                    value = self._http(effect)
                elif type(effect) is Sleep:
                    self.sleep(effect.seconds)
                elif type(effect) is Notify:
                    effect.callback(effect.prediction)
                elif type(effect) is Fetch:
                    value = self._fetch(effect)
                else:  # pragma: no cover - flows yield only the four effects
                    raise TypeError(f"unknown effect {effect!r}")
            except BaseException as exc:
                error = scrubbed_error(exc, effect)

    @staticmethod
    def _release(deferred: DeferredInterrupt | None, held: BaseException | None) -> BaseException | None:
        """End a deferral: the interrupt it held back (or the one already held)."""
        if deferred is None:
            return held
        deferred.__exit__(None, None, None)
        return held if held is not None else deferred.caught

    def _http(self, effect: Http) -> Reply:
        assert self.http is not None, "a download-only driver was given an API request"
        log_request(effect.method, effect.url, effect.headers)
        sent = SendTrace() if effect.held else None
        direct = self.http.direct if type(self.http) is ApiClient else None
        timeout = phase_timeout(effect.timeout, effect.total)
        request = api_request(self.http, direct is not None, effect, timeout, sent, False)
        if direct is None:
            response = self.http.send(request, stream=True)
        else:
            with raised_for(request):
                response = direct.handle_request(request)
            response.request = request
        try:
            body = Body(effect.total, effect.max_bytes, request)
            body.start(response.headers)
            for chunk in response.iter_bytes():
                body.take(chunk)
        finally:
            response.close()
        held_for = 0.0 if sent is None else sent.held_for()
        return scrubbed_reply(response, body.chunks, self._keys.of(effect.headers), held_for)

    def _fetch(self, effect: Fetch) -> Fetched:
        client = self._downloads_via or self._downloads
        if client is None:
            client = self._downloads = download_client(transport=self._download_transport)
        direct = client.direct if type(client) is ApiClient else None
        request = download_request(client, direct is not None, effect)
        if direct is None:  # never the client's auth: a download carries no credentials
            response = client.send(request, stream=True, follow_redirects=False, auth=None)
        else:
            with raised_for(request):
                response = direct.handle_request(request)
            response.request = request
        try:
            if response.is_success:
                body = Body(effect.total, effect.max_bytes, request, effect.sink)
                body.start(response.headers)
                for chunk in response.iter_bytes():
                    body.take(chunk)
        finally:
            response.close()
        return Fetched(response.status_code, response.headers)

    def close(self) -> None:
        """Close the download client, and the API client if this driver owns it."""
        if self._downloads is not None:
            self._downloads.close()
            self._downloads = None
        if self.http is not None and self.owns_http:
            self.http.close()


# ============================================================================ async


async def _asyncio_sleep(seconds: float) -> None:
    await aio().sleep(seconds)


class AsyncDriver:
    """Runs flows with `httpx.AsyncClient` and `asyncio.sleep`; callbacks may be coroutine functions.

    With a `gate`, at most its limit of API requests are inside httpx at once; the rest wait for a
    slot, bounded by their pool timeout (such a request has not reached the server); held creates
    skip it and go through `held_http` when given (connections of their own: `_http.held_limits`).
    Downloads go through a download client of its own (opened on first use; its body read straight
    from its `HeldTransport`, see `_fetch_direct`), or through `downloads_via`, as `SyncDriver`'s do.
    """

    def __init__(
        self,
        http: httpx.AsyncClient | None,
        *,
        owns_http: bool = True,
        gate: InFlightGate | None = None,
        sleep: Callable[[float], Awaitable[None]] = _asyncio_sleep,
        download_transport: httpx.AsyncBaseTransport | None = None,
        downloads_via: httpx.AsyncClient | None = None,
        held_http: httpx.AsyncClient | None = None,
    ) -> None:
        self.http = http
        self.owns_http = owns_http
        self.gate = gate
        self.held_http = held_http
        self.sleep = sleep
        self._download_transport = download_transport
        self._downloads: httpx.AsyncClient | None = None  # the library's own, opened on first use
        self._store: HeldTransport | None = None  # its `HeldTransport`, read from directly (`_fetch_direct`)
        self._store_headers: list[tuple[bytes, bytes]] = []  # its default headers, as sent
        self._downloads_via = downloads_via
        self._keys = SentKeys()

    async def run(self, flow: Flow[T], *, guarded: bool = False) -> T:
        """Perform a flow's effects until it returns; CancelledError is thrown back into it too
        (held back during a shielded request exactly as `SyncDriver.run` holds back Ctrl-C).

        `guarded`: the caller runs this in a task of its own that it never cancels (it shields the
        task and decides itself how long to wait for the answer, as a batch line's create does), so
        a shielded request is awaited here as it is, without a task and a shield of its own."""
        value: Any = None
        error: BaseException | None = None
        held: BaseException | None = None
        while True:
            try:
                effect = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                if held is not None:
                    raise held from None
                result: T = stop.value
                return result
            value = error = None
            if held is not None and type(effect) is not Notify:
                error, held = held, None
                continue
            try:
                if type(effect) is Http and effect.shield and not guarded:
                    value, held = await self._shielded(effect)
                elif type(effect) is Http:
                    value = await self._bounded(self._http(effect), effect.total)
                elif type(effect) is Sleep:
                    await self.sleep(effect.seconds)
                elif type(effect) is Notify:
                    outcome = effect.callback(effect.prediction)
                    if isawaitable(outcome):
                        await outcome
                elif type(effect) is Fetch:
                    value = await self._bounded(self._fetch(effect), effect.total)
                else:  # pragma: no cover - flows yield only the four effects
                    raise TypeError(f"unknown effect {effect!r}")
            except BaseException as exc:
                error = scrubbed_error(exc, effect)

    async def _shielded(self, effect: Http) -> tuple[Reply, BaseException | None]:
        """The exchange, finished even if this task is cancelled meanwhile: the answer and the held
        cancellation (a second cancellation abandons the exchange at once)."""
        asyncio = aio()
        exchange = asyncio.ensure_future(self._bounded(self._http(effect), effect.total))
        try:
            return await asyncio.shield(exchange), None
        except asyncio.CancelledError as cancelled:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # held, not swallowed: thrown into the flow once the answer is in
            log.warning(
                "cancelled while a create is answered: finishing the read so the prediction's id is "
                "not lost (it is canceled next); cancel again to abandon it"
            )
            return await exchange, cancelled

    @staticmethod
    async def _bounded(exchange: Awaitable[T], total: float | None) -> T:
        if total is None:
            return await exchange
        try:
            async with aio().timeout(total):
                return await exchange
        except TimeoutError as exc:
            raise httpx.ReadTimeout(f"the exchange took longer than its total bound of {total:g} s") from exc

    async def _http(self, effect: Http) -> Reply:
        assert self.http is not None, "a download-only driver was given an API request"
        log_request(effect.method, effect.url, effect.headers)
        sent = SendTrace() if effect.held else None
        direct = type(self.http) is AsyncApiClient and self.http.direct is not None
        request = api_request(self.http, direct, effect, effect.timeout, sent, True)
        if sent is not None and self.held_http is not None:
            return await self._send(request, effect, sent, self.held_http)
        if self.gate is None or effect.priority or sent is not None:
            return await self._send(request, effect, sent)
        gate = self.gate.semaphore()
        pool_timeout = effect.timeout.pool
        if pool_timeout is None:
            await gate.acquire()
        else:
            try:
                async with aio().timeout(pool_timeout):  # waiting here is waiting for the pool
                    await gate.acquire()
            except TimeoutError as exc:
                raise httpx.PoolTimeout(
                    "no free connection within the pool timeout", request=request
                ) from exc
        try:
            return await self._send(request, effect)
        finally:
            gate.release()

    async def _send(
        self,
        request: httpx.Request,
        effect: Http,
        sent: SendTrace | None = None,
        via: httpx.AsyncClient | None = None,
    ) -> Reply:
        assert self.http is not None
        client = self.http if via is None else via
        direct = client.direct if type(client) is AsyncApiClient else None
        if direct is None:
            response = await client.send(request, stream=True)
        else:
            with raised_for(request):
                response = await direct.handle_async_request(request)
            response.request = request
        try:
            body = Body(effect.total, effect.max_bytes, request)
            body.start(response.headers)
            async for chunk in response.aiter_bytes():
                body.take(chunk)
        finally:
            await response.aclose()
        held_for = 0.0 if sent is None else sent.held_for()
        return scrubbed_reply(response, body.chunks, self._keys.of(effect.headers), held_for)

    async def _fetch(self, effect: Fetch) -> Fetched:
        client = self._downloads_via or self._downloads or self._own_downloads()
        direct = client.direct if type(client) is AsyncApiClient else None
        store = self._store
        if store is not None and direct is store:
            return await self._fetch_direct(store, client, effect)
        return await self._fetch_with(client, direct, effect)

    def _own_downloads(self) -> httpx.AsyncClient:
        """The library's own download client (over a test's transport when one is given)."""
        client = self._downloads = async_download_client(transport=self._download_transport)
        direct = client.direct if type(client) is AsyncApiClient else None
        if isinstance(direct, comet_replicate._transport.HeldTransport):  # loaded by the client
            self._store, self._store_headers = direct, client.headers.raw
        return client

    async def _fetch_direct(self, store: HeldTransport, client: httpx.AsyncClient, effect: Fetch) -> Fetched:
        """One hop on the library's own `HeldTransport`, its body read from the connection's stream:
        the request `download_request` builds (the same bytes on the wire), without the
        `httpx.Request` / `httpx.Response` layers around it, which cost more than the exchange's own
        Python work for a small output. A body with a `Content-Encoding` is decoded as httpx decodes
        it, through an `httpx.Response` over the same stream."""
        url = effect.parsed if effect.parsed is not None else httpx.URL(effect.url)
        timeout = phase_timeout(effect.timeout, effect.total)
        try:
            response, stream = await store.open(core_download_request(url, self._store_headers, timeout))
            try:
                headers = httpx.Headers(response.headers)
                if 200 <= response.status < 300:
                    body = Body(effect.total, effect.max_bytes, None, effect.sink)
                    body.start(headers)
                    if "content-encoding" in headers:
                        decoding = httpx.Response(response.status, headers=headers, stream=stream)
                        async for chunk in decoding.aiter_bytes():
                            body.take(chunk)
                    else:
                        async for chunk in stream:
                            if chunk:
                                body.take(chunk)
            finally:
                await stream.aclose()
        except httpx.RequestError as exc:  # named after its request, as `send` names it
            exc.request = download_request(client, True, effect)
            raise
        return Fetched(response.status, headers)

    async def _fetch_with(
        self, client: httpx.AsyncClient, direct: httpx.AsyncBaseTransport | None, effect: Fetch
    ) -> Fetched:
        request = download_request(client, direct is not None, effect)
        if direct is None:  # never the client's auth: a download carries no credentials
            response = await client.send(request, stream=True, follow_redirects=False, auth=None)
        else:
            with raised_for(request):
                response = await direct.handle_async_request(request)
            response.request = request
        try:
            if response.is_success:
                body = Body(effect.total, effect.max_bytes, request, effect.sink)
                body.start(response.headers)
                async for chunk in response.aiter_bytes():
                    body.take(chunk)
        finally:
            await response.aclose()
        return Fetched(response.status_code, response.headers)

    async def aclose(self) -> None:
        """Close the download client, the held creates' client, and the API client if this driver owns it."""
        if self._downloads is not None:
            self._store = None
            await self._downloads.aclose()
            self._downloads = None
        if self.held_http is not None:
            await self.held_http.aclose()
        if self.http is not None and self.owns_http:
            await self.http.aclose()
