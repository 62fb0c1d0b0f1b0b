"""The two drivers that perform a flow's effects: the only sync/async twins in the library.

A driver sends each effect's result back into the flow (or throws the exception in, Ctrl-C and
task cancellation included, so the flow can send its cancel on exit) until the flow returns.
Every bound comes from the effect: per-phase timeouts, the total time of the exchange (both
drivers stop reading once it is spent and raise `httpx.ReadTimeout`), the body cap of a download,
and whether a request may skip the async client's in-flight queue.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import IO, Any, TypeGuard, TypeVar

import httpx

from ._http import ALLOW_LINK_LOCAL, async_download_client, download_client, log, log_request
from ._interrupts import DeferredInterrupt
from .core.effects import Fetch, Fetched, Flow, Http, Notify, OverCap, Reply, Sleep
from .core.request import bounded

__all__ = ["AsyncDriver", "InFlightGate", "SyncDriver"]

T = TypeVar("T")


@functools.cache
def _aio() -> ModuleType:
    """asyncio, imported on first async use: a sync-only program never pays for it."""
    import asyncio

    return asyncio


def _isawaitable(value: object) -> TypeGuard[Awaitable[Any]]:
    """inspect.isawaitable without importing inspect (a coroutine, or anything with __await__)."""
    return hasattr(value, "__await__")


class _Body:
    """Per-chunk accounting both drivers share: the total deadline and the size cap of one body."""

    __slots__ = ("_deadline", "_limit", "_request", "_sink", "chunks", "size")

    def __init__(
        self, total: float | None, limit: int | None, request: httpx.Request, sink: IO[bytes] | None = None
    ) -> None:
        self._deadline = None if total is None else time.monotonic() + total
        self._limit = limit
        self._request = request
        self._sink = sink
        self.chunks: list[bytes] = []
        self.size = 0

    def start(self, response: httpx.Response) -> None:
        """The announced size is checked; a download's sink is emptied (a retry starts over)."""
        length = response.headers.get("content-length")
        if self._limit is not None and length and length.isdigit() and int(length) > self._limit:
            raise OverCap(self._limit)
        if self._sink is not None:
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


@functools.lru_cache(maxsize=1024)
def _url(url: str) -> httpx.URL:
    """A parsed API URL, kept: httpx parses a URL string character by character on every request
    (tens of µs, a large share of a poll's CPU), and every poll of a prediction repeats its URL."""
    return httpx.URL(url)


def _timeout(timeout: httpx.Timeout, total: float | None) -> httpx.Timeout:
    return timeout if total is None else bounded(timeout, total)


def _download_extensions(effect: Fetch) -> dict[str, Any] | None:
    return {ALLOW_LINK_LOCAL: True} if effect.allow_link_local else None


# ============================================================================ sync


class SyncDriver:
    """Runs flows with `httpx.Client` and `time.sleep`.

    `http` sends API requests (None: a driver only for downloads); downloads use a client of their
    own (no key, redirects followed), opened on the first `Fetch`.
    """

    def __init__(
        self,
        http: httpx.Client | None,
        *,
        owns_http: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        download_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.http = http
        self.owns_http = owns_http
        self.sleep = sleep
        self._download_transport = download_transport
        self._downloads: httpx.Client | None = None

    def run(self, flow: Flow[T]) -> T:
        """Perform a flow's effects until it returns; exceptions (Ctrl-C too) are thrown back into it.

        A Ctrl-C held back during a shielded request is thrown in at the flow's next request or
        sleep (a callback such as `on_created` runs first), or raised when the flow returns.
        """
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
                if type(effect) is Http and effect.shield:
                    with DeferredInterrupt() as deferred:
                        try:
                            value = self._http(effect)
                        finally:
                            held = deferred.caught
                elif type(effect) is Http:
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
                error = exc

    def _http(self, effect: Http) -> Reply:
        assert self.http is not None, "a download-only driver was given an API request"
        log_request(effect.method, effect.url, effect.headers)
        request = self.http.build_request(
            effect.method,
            _url(effect.url),
            headers=effect.headers,
            json=effect.json,
            timeout=_timeout(effect.timeout, effect.total),
        )
        response = self.http.send(request, stream=True)
        try:
            body = _Body(effect.total, effect.max_bytes, request)
            body.start(response)
            for chunk in response.iter_bytes():
                body.take(chunk)
        finally:
            response.close()
        return Reply(response.status_code, response.headers, b"".join(body.chunks))

    def _fetch(self, effect: Fetch) -> Fetched:
        if self._downloads is None:
            self._downloads = download_client(transport=self._download_transport)
        request = self._downloads.build_request(
            "GET",
            effect.url,
            timeout=_timeout(effect.timeout, effect.total),
            extensions=_download_extensions(effect),
        )
        response = self._downloads.send(request, stream=True)
        try:
            if response.is_success:
                body = _Body(effect.total, effect.max_bytes, request, effect.sink)
                body.start(response)
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


class InFlightGate:
    """One semaphore per event loop capping the requests in flight (asyncio primitives are bound to
    the loop that first waits on them, and a client may be reused across `asyncio.run` calls)."""

    __slots__ = ("_limit", "_loop", "_semaphore")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._loop: object = None
        self._semaphore: Any = None

    def semaphore(self) -> Any:
        asyncio = _aio()
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            self._semaphore = asyncio.Semaphore(self._limit)
            self._loop = loop
        return self._semaphore


async def _asyncio_sleep(seconds: float) -> None:
    await _aio().sleep(seconds)


class AsyncDriver:
    """Runs flows with `httpx.AsyncClient` and `asyncio.sleep`; callbacks may be coroutine functions.

    With a `gate`, at most its limit of API requests are inside httpx at once; the rest wait for a
    slot, bounded by their pool timeout (such a request has not reached the server).
    """

    def __init__(
        self,
        http: httpx.AsyncClient | None,
        *,
        owns_http: bool = True,
        gate: InFlightGate | None = None,
        sleep: Callable[[float], Awaitable[None]] = _asyncio_sleep,
        download_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http = http
        self.owns_http = owns_http
        self.gate = gate
        self.sleep = sleep
        self._download_transport = download_transport
        self._downloads: httpx.AsyncClient | None = None

    async def run(self, flow: Flow[T]) -> T:
        """Perform a flow's effects until it returns; CancelledError is thrown back into it too
        (held back during a shielded request exactly as `SyncDriver.run` holds back Ctrl-C)."""
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
                if type(effect) is Http and effect.shield:
                    value, held = await self._shielded(effect)
                elif type(effect) is Http:
                    value = await self._bounded(self._http(effect), effect.total)
                elif type(effect) is Sleep:
                    await self.sleep(effect.seconds)
                elif type(effect) is Notify:
                    outcome = effect.callback(effect.prediction)
                    if _isawaitable(outcome):
                        await outcome
                elif type(effect) is Fetch:
                    value = await self._bounded(self._fetch(effect), effect.total)
                else:  # pragma: no cover - flows yield only the four effects
                    raise TypeError(f"unknown effect {effect!r}")
            except BaseException as exc:
                error = exc

    async def _shielded(self, effect: Http) -> tuple[Reply, BaseException | None]:
        """The exchange, finished even if this task is cancelled meanwhile: the answer and the held
        cancellation (a second cancellation abandons the exchange at once)."""
        aio = _aio()
        exchange = aio.ensure_future(self._bounded(self._http(effect), effect.total))
        try:
            return await aio.shield(exchange), None
        except aio.CancelledError as cancelled:
            task = aio.current_task()
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
            async with _aio().timeout(total):
                return await exchange
        except TimeoutError as exc:
            raise httpx.ReadTimeout(f"the exchange took longer than its total bound of {total:g} s") from exc

    async def _http(self, effect: Http) -> Reply:
        assert self.http is not None, "a download-only driver was given an API request"
        log_request(effect.method, effect.url, effect.headers)
        request = self.http.build_request(
            effect.method, _url(effect.url), headers=effect.headers, json=effect.json, timeout=effect.timeout
        )
        if self.gate is None or effect.priority:
            return await self._send(request, effect)
        gate = self.gate.semaphore()
        pool_timeout = effect.timeout.pool
        if pool_timeout is None:
            await gate.acquire()
        else:
            try:
                async with _aio().timeout(pool_timeout):  # waiting here is waiting for the pool
                    await gate.acquire()
            except TimeoutError as exc:
                raise httpx.PoolTimeout(
                    "no free connection within the pool timeout", request=request
                ) from exc
        try:
            return await self._send(request, effect)
        finally:
            gate.release()

    async def _send(self, request: httpx.Request, effect: Http) -> Reply:
        assert self.http is not None
        response = await self.http.send(request, stream=True)
        try:
            body = _Body(effect.total, effect.max_bytes, request)
            body.start(response)
            async for chunk in response.aiter_bytes():
                body.take(chunk)
        finally:
            await response.aclose()
        return Reply(response.status_code, response.headers, b"".join(body.chunks))

    async def _fetch(self, effect: Fetch) -> Fetched:
        if self._downloads is None:
            self._downloads = async_download_client(transport=self._download_transport)
        request = self._downloads.build_request(
            "GET",
            effect.url,
            timeout=_timeout(effect.timeout, effect.total),
            extensions=_download_extensions(effect),
        )
        response = await self._downloads.send(request, stream=True)
        try:
            if response.is_success:
                body = _Body(effect.total, effect.max_bytes, request, effect.sink)
                body.start(response)
                async for chunk in response.aiter_bytes():
                    body.take(chunk)
        finally:
            await response.aclose()
        return Fetched(response.status_code, response.headers)

    async def aclose(self) -> None:
        """Close the download client, and the API client if this driver owns it."""
        if self._downloads is not None:
            await self._downloads.aclose()
            self._downloads = None
        if self.http is not None and self.owns_http:
            await self.http.aclose()
