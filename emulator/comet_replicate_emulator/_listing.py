"""`GET .../predictions`: the caller's predictions, newest first, in pages linked by opaque cursors.

As Replicate documents it: 100 a page, `next`/`previous` URLs (null at either end), the
`created_after` (inclusive) and `created_before` (exclusive) ISO 8601 filters and `source`. A cursor
names the creation it continues from and the direction, so pages stay stable while new predictions
arrive. Only predictions created with the caller's token are listed.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from ._handlers import base_url
from ._responses import Call, bearer_token
from ._store import Entry, PredictionStore

FILTERS = ("created_after", "created_before", "source")


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after (`next`) or before (`previous`) the creation numbered `seq`."""

    direction: str
    seq: int

    def encode(self) -> str:
        raw = json.dumps({"d": self.direction, "s": self.seq}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            cursor = cls(str(data["d"]), int(data["s"]))
        except (ValueError, TypeError, KeyError, binascii.Error) as exc:
            raise ValueError("invalid cursor") from exc
        if cursor.direction not in ("next", "previous"):
            raise ValueError("invalid cursor")
        return cursor


def parse_instant(name: str, text: str | None) -> float | None:
    """Unix seconds of an ISO 8601 date-time (UTC when it names no offset)."""
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{name} must be an ISO 8601 date-time, got {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


@dataclass(frozen=True)
class Query:
    """Which predictions the caller may see and asked for."""

    owner: str | None
    after: float | None
    before: float | None
    source: str | None

    def keeps(self, entry: Entry) -> bool:
        created = entry.prediction.created_at
        return (
            entry.owner == self.owner
            and (self.after is None or created >= self.after)
            and (self.before is None or created < self.before)
            and (self.source is None or self.source == "api")  # every emulator prediction is from the API
        )


@dataclass(frozen=True)
class Page:
    entries: list[Entry]  # newest first
    next: Cursor | None
    previous: Cursor | None


def _take(entries: Iterable[Entry], keep: Callable[[Entry], bool], size: int) -> tuple[list[Entry], bool]:
    """Up to `size` kept entries, and whether more follow."""
    taken = list(itertools.islice((e for e in entries if keep(e)), size + 1))
    return taken[:size], len(taken) > size


def paginate(store: PredictionStore, query: Query, cursor: Cursor | None, size: int) -> Page:
    """One page of the store under `query`, starting at `cursor` (the newest page when None)."""

    def any_kept(entries: Iterator[Entry]) -> bool:
        return any(query.keeps(e) for e in entries)

    if cursor is None or cursor.direction == "next":
        start = None if cursor is None else cursor.seq
        entries, more = _take(store.older_than(start), query.keeps, size)
        newest = entries[0].seq if entries else start
        has_newer = newest is not None and cursor is not None and any_kept(store.newer_than(newest))
        return Page(
            entries,
            Cursor("next", entries[-1].seq) if more else None,
            Cursor("previous", newest) if has_newer and newest is not None else None,
        )
    entries, more = _take(store.newer_than(cursor.seq), query.keeps, size)
    entries.reverse()
    oldest = entries[-1].seq if entries else cursor.seq
    return Page(
        entries,
        Cursor("next", oldest) if any_kept(store.older_than(oldest)) else None,
        Cursor("previous", entries[0].seq) if more else None,
    )


async def list_predictions(request: Request) -> Response:
    call = Call.of(request.scope)
    emulator = call.emulator
    if call.dialect.name in emulator.config.list_404:
        return call.reply(404, *call.dialect.no_route("GET", request.url.path, emulator.request_id))
    params = request.query_params
    try:
        query = Query(
            bearer_token(request.scope),
            parse_instant("created_after", params.get("created_after")),
            parse_instant("created_before", params.get("created_before")),
            params.get("source"),
        )
        cursor = Cursor.decode(params["cursor"]) if "cursor" in params else None
    except ValueError as exc:
        return call.error(400, str(exc), "invalid_request")
    page = paginate(emulator.predictions, query, cursor, emulator.config.list_page_size)
    here = f"{base_url(request)}{call.dialect.prefix}/predictions"
    kept = {name: params[name] for name in FILTERS if name in params}

    def link(to: Cursor | None) -> str | None:
        return None if to is None else f"{here}?{urlencode({**kept, 'cursor': to.encode()})}"

    now = emulator.clock.now()
    body = {
        "results": [entry.prediction.view(now) for entry in page.entries],
        "next": link(page.next),
        "previous": link(page.previous),
    }
    return call.reply(200, body)
