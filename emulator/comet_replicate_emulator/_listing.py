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
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import Response

from ._handlers import base_url
from ._responses import Call, bearer_token
from ._store import Entry, PredictionStore

FILTERS = ("created_after", "created_before", "source")


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after (`next`) or before (`previous`) the creation numbered `seq`.

    Encoded as Django REST framework's cursor pagination encodes its own (base64 of `p=...`, with
    `r=1` for the reverse direction), which is what Replicate's cursors look like.
    """

    direction: str
    seq: int

    def encode(self) -> str:
        fields = {"r": "1", "p": str(self.seq)} if self.direction == "previous" else {"p": str(self.seq)}
        return base64.b64encode(urlencode(fields).encode()).decode()

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Raises ValueError for anything this emulator did not hand out."""
        try:
            fields = parse_qs(base64.b64decode(text.encode(), validate=True).decode(), strict_parsing=True)
            seq = int(fields["p"][0])
        except (ValueError, KeyError, UnicodeDecodeError, binascii.Error) as exc:
            raise ValueError("Invalid cursor") from exc
        if seq < 0 or set(fields) - {"p", "r"}:
            raise ValueError("Invalid cursor")
        return cls("previous" if fields.get("r") == ["1"] else "next", seq)


_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$")


def _rfc3339(text: str) -> dt.datetime:
    """What `fromisoformat` refuses but RFC 3339 allows: lower-case `t`/`z`, a leap second (as :59)."""
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(text)
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7) or "", (match.group(8) or "Z").upper()
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    offset = dt.timedelta(0)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = sign * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    moment = dt.datetime(year, month, day, hour, minute, min(second, 59), micro, dt.timezone(offset))
    return moment


def parse_instant(name: str, text: str | None) -> float | None:
    """Unix seconds of an ISO 8601 date-time (UTC when it names no offset)."""
    if text is None:
        return None
    try:
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            moment = _rfc3339(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.timestamp()
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{name} must be an ISO 8601 date-time, got {text!r}") from exc


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
    except ValueError as exc:
        return call.error(400, str(exc), "invalid_request")
    try:
        cursor = Cursor.decode(params["cursor"]) if "cursor" in params else None
    except ValueError as exc:
        # As Django REST framework (and so Replicate) answers a cursor it cannot read.
        return call.error(404, str(exc), "invalid_request")
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
