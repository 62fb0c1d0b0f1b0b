"""The effects a flow yields and the results a driver sends back.

Each effect carries every bound its driver must apply: per-phase timeouts, the total time of the
whole exchange and whether it may skip the client's in-flight queue. A driver never decides a bound.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import IO, TYPE_CHECKING, Any, TypeVar

import httpx

from . import Record

if TYPE_CHECKING:
    from comet_replicate_api.models import Prediction

__all__ = ["Effect", "Fetch", "Fetched", "Flow", "Http", "Notify", "OverCap", "Reply", "Sleep"]

T = TypeVar("T")


class Http(Record):
    """Send one API request; the driver answers with a `Reply` (body fully read) or raises the
    httpx transport error.

    `total` bounds the whole exchange, connect to last byte (None: only the phase timeouts);
    a driver that runs out of it raises `httpx.ReadTimeout`. `max_bytes` caps the body (announced
    or read): past it the driver stops reading and throws `OverCap`. `priority` skips the client's
    queue of requests waiting for a connection slot (the cancel on exit must not wait behind them).
    `shield` (creates): an interrupt arriving while the request is in flight is held back until its
    answer is read — within the effect's bounds — so a prediction's id is never lost; a second
    interrupt abandons it. `held` (a create `run` holds open in sync mode): it also skips the queue,
    since such creates are counted apart (`State.shared.sync_slots`) and would otherwise fill it.
    """

    method: str
    url: str
    headers: Mapping[str, str]  # holds the key: never in a repr
    json: Any
    timeout: httpx.Timeout
    total: float | None = None
    priority: bool = False
    max_bytes: int | None = None
    shield: bool = False
    held: bool = False

    def __repr__(self) -> str:  # the headers (they hold the key) are left out
        shown = ", ".join(f"{k}={v!r}" for k, v in zip(self._fields, self, strict=True) if k != "headers")
        return f"Http({shown})"


class Reply(Record):
    """A response as the core sees it: status, headers and the whole (decoded) body."""

    status: int
    headers: httpx.Headers
    content: bytes
    held_for: float = 0.0
    """Seconds from the request's last byte written to its answer's last byte read, when the driver
    measured it (held creates): the pacer counts such a create when it was sent, not when answered."""


class Sleep(Record):
    """Sleep this many seconds (the driver's sleep: time.sleep or asyncio.sleep)."""

    seconds: float


class Notify(Record):
    """Call a user callback with a prediction (the async driver awaits an awaitable result)."""

    callback: Callable[[Prediction], object]
    prediction: Prediction


class Fetch(Record):
    """GET an output file with the download client (no key, redirects not followed) into `sink`.

    On a 2xx the driver refuses an announced or actual size above `max_bytes` (throwing `OverCap`),
    empties the sink first (a retry starts over) and streams the body into it; on any other status
    it reads nothing and answers with it, a redirect included: the flow follows redirects itself,
    one `Fetch` per hop, each checked (no link-local host unless `allow_link_local`, the policy the
    flow applied). `total` bounds the exchange like `Http.total`. `parsed` is `url` as the flow
    parsed it to check it: the driver sends that object, so a URL is parsed once per hop.
    """

    url: str
    sink: IO[bytes]
    max_bytes: int
    timeout: httpx.Timeout
    total: float | None
    allow_link_local: bool = False
    parsed: httpx.URL | None = None

    def __repr__(self) -> str:  # the sink (a caller's file) is left out
        return (
            f"Fetch(url={self.url!r}, max_bytes={self.max_bytes!r}, timeout={self.timeout!r}, "
            f"total={self.total!r}, allow_link_local={self.allow_link_local!r})"
        )


class Fetched(Record):
    """What a `Fetch` got: the status and headers (the body, on a 2xx, is in the sink)."""

    status: int
    headers: httpx.Headers


class OverCap(Exception):
    """Thrown into a flow by a driver when a body passes its effect's `max_bytes`; the flow raises
    the typed error that names the cap."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body exceeds {limit:,} bytes")
        self.limit = limit


Effect = Http | Sleep | Notify | Fetch
Flow = Generator[Effect, Any, T]
