"""What both drivers need for one exchange: its body accounting (total deadline, size cap), parsed
URLs, download request extensions, and the async client's in-flight gate."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable
from types import ModuleType
from typing import IO, Any, TypeGuard

import httpx

from ._http import ALLOW_LINK_LOCAL
from .core.effects import Fetch, OverCap
from .core.request import bounded

__all__ = ["Body", "InFlightGate", "aio", "download_extensions", "isawaitable", "parsed_url", "phase_timeout"]


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
def parsed_url(url: str) -> httpx.URL:
    """A parsed API URL, kept: httpx parses a URL string character by character on every request
    (tens of µs, a large share of a poll's CPU), and every poll of a prediction repeats its URL."""
    return httpx.URL(url)


def phase_timeout(timeout: httpx.Timeout, total: float | None) -> httpx.Timeout:
    return timeout if total is None else bounded(timeout, total)


def download_extensions(effect: Fetch) -> dict[str, Any] | None:
    return {ALLOW_LINK_LOCAL: True} if effect.allow_link_local else None


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
