"""Finding a lost create again: list the predictions made since it was sent and match them exactly.

No idempotency key exists, so after `CreateOutcomeUnknown` the only way to learn whether the create
made a prediction is `GET /predictions` (Replicate's list route, newest first, filtered by
`created_after`). A listed prediction is this create's when its `model` equals the create's and
the SHA-256 of its input's canonical JSON equals the one the error carries (the prepared input the
create sent). Exactly one match is the prediction; several are named and never guessed between;
none, after the whole window was read, means it most likely does not exist. The lookup is bounded
by the caller's deadline, its own time cap and a page cap, and goes through the same
request/retry path as a get, but outside the client's own pacing (a window the client filled
itself must not cost a paid prediction's id).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from .._constants import RECONCILE_CLOCK_SKEW, RECONCILE_MAX_PAGES, RECONCILE_MAX_SECONDS
from .._errors import APIStatusError, CometReplicateError, CreateOutcomeUnknown
from .._generated import LIST, prediction_from_dict
from .._inputs import input_sha256
from .effects import Flow, Reply
from .operations import Answer, get_raw
from .request import request
from .retry import Deadline, OpKind
from .state import State

__all__ = ["CANNOT_RECONCILE", "list_route_answers", "list_window_start", "reconcile"]

log = logging.getLogger("comet_replicate")

CANNOT_RECONCILE = (404, 405)
"""Statuses with which a server says it has no list route (CometAPI may answer so)."""


def list_window_start(sent_at: float) -> float:
    """The `created_after` of the lookup (epoch seconds): the send time less the allowed clock skew."""
    return sent_at - RECONCILE_CLOCK_SKEW


def _iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _epoch(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


class _Inconclusive(Exception):
    """The lookup could not read the whole window: the reason goes into the error."""


@dataclass
class _Lookup:
    """One lookup's progress: what it is looking for, what it found, where the next page is."""

    model: str
    digest: str
    after: float
    matches: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0

    def first_path(self) -> str:
        return f"{LIST.template}?{urlencode({'created_after': _iso(self.after)})}"

    def next_path(self, next_url: object) -> str | None:
        """The next page on OUR base URL: only the query of the server's `next` link is kept, so the
        key never goes to a host the link may name."""
        if next_url is None:
            return None
        query = urlsplit(next_url).query if isinstance(next_url, str) else ""
        if not query:
            raise _Inconclusive(f"the list's next link {next_url!r} is not a URL with a query")
        return f"{LIST.template}?{query}"

    def read(self, reply: Reply) -> object:
        """Take one page's matches; the page's `next` link (None: the window was read to its end)."""
        try:
            body = json.loads(reply.content)
        except (ValueError, RecursionError):
            raise _Inconclusive("a list page was not JSON") from None
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise _Inconclusive("a list page had no 'results' list")
        self.pages += 1
        older = False
        for item in results:
            if not isinstance(item, dict):
                continue
            created = _epoch(item.get("created_at"))
            if created is not None and created < self.after:
                older = True  # newest first: a server that ignores created_after is read no further
                continue
            if self._matches(item):
                self.matches.append(item)
        return None if older else body.get("next")

    def _matches(self, item: dict[str, Any]) -> bool:
        listed_input = item.get("input")
        return (
            item.get("model") == self.model
            and isinstance(listed_input, dict)
            and isinstance(item.get("id"), str)
            and input_sha256(listed_input) == self.digest
        )

    def ids(self) -> list[str]:
        return [str(item["id"]) for item in self.matches]


def _budget(st: State, deadline: Deadline | None) -> Deadline:
    now = st.shared.clock()
    left = None if deadline is None else deadline.remaining(now)
    return Deadline(now, RECONCILE_MAX_SECONDS if left is None else min(left, RECONCILE_MAX_SECONDS))


def _pages(st: State, lookup: _Lookup, budget: Deadline) -> Flow[Reply | None]:
    """Read the window page by page; the last page's reply (None if nothing was read)."""
    path: str | None = lookup.first_path()
    last: Reply | None = None
    while path is not None:
        if lookup.pages >= RECONCILE_MAX_PAGES:
            raise _Inconclusive(f"stopped after {lookup.pages} pages of the list")
        if budget.expired(st.shared.clock()):
            raise _Inconclusive("ran out of time before the list was read to the create's send time")
        last = yield from _list_page(st, path, budget)
        path = lookup.next_path(lookup.read(last))
    return last


def _list_page(st: State, path: str, budget: Deadline) -> Flow[Reply]:
    """One page of the list route, within `budget`."""
    return request(
        st,
        OpKind.GET,
        LIST.method,
        path,
        timeout=st.config.timeout,
        max_retries=st.config.max_retries,
        deadline=budget,
        # Like the cancel on exit, never held back by the client's own pacing: a window the client
        # filled itself must not cost a paid prediction's id (a 429 is still retried).
        priority=True,
    )


def _found(st: State, item: dict[str, Any], reply: Reply, budget: Deadline) -> Flow[Answer]:
    """The matched prediction: the listed item, or fetched by id when the item is not a full one."""
    try:
        return prediction_from_dict(item), reply
    except (KeyError, TypeError, ValueError):
        return (yield from get_raw(st, str(item["id"]), deadline=budget))


def _give_up(error: CreateOutcomeUnknown, lookup: _Lookup, why: str) -> CreateOutcomeUnknown:
    ids = lookup.ids()
    found = f"; {len(ids)} matching so far" if ids else ""
    error.set_candidates(ids, f"not finished ({why}{found}); the prediction may exist")
    return error


def reconcile(st: State, error: CreateOutcomeUnknown, *, deadline: Deadline | None = None) -> Flow[Answer]:
    """The prediction a lost create made, found through the list route; raises `error` (updated with
    what the lookup concluded and any candidate ids) unless exactly one listed prediction matches."""
    if not isinstance(error, CreateOutcomeUnknown):
        raise TypeError(f"reconcile takes a CreateOutcomeUnknown, not {type(error).__name__}")
    lookup = _Lookup(error.model, error.input_sha256, list_window_start(error.sent_at))
    budget = _budget(st, deadline)
    if budget.expired(st.shared.clock()):
        raise _give_up(error, lookup, "no time was left for it")
    try:
        last = yield from _pages(st, lookup, budget)
    except _Inconclusive as exc:
        raise _give_up(error, lookup, str(exc)) from error.__cause__
    except APIStatusError as exc:
        if exc.status in CANNOT_RECONCILE:
            error.set_candidates((), f"this server cannot reconcile (its list route answered {exc.status})")
            raise error from error.__cause__
        raise _give_up(error, lookup, f"the list route failed: {exc}") from error.__cause__
    except CometReplicateError as exc:
        raise _give_up(error, lookup, f"the list route failed: {exc}") from error.__cause__
    ids = lookup.ids()
    if len(ids) > 1:
        error.set_candidates(ids, f"{len(ids)} listed predictions match this model and input; none chosen")
        raise error
    if not ids or last is None:
        error.set_candidates(
            (),
            f"no prediction of this model and input was listed since {_iso(lookup.after)}; "
            "it most likely does not exist",
        )
        raise error
    log.warning("the lost create of %s was found by listing predictions: %s", error.model, ids[0])
    try:
        return (yield from _found(st, lookup.matches[0], last, budget))
    except CometReplicateError as exc:
        error.attach(ids[0])  # exactly one match: it is known, though not read (run cancels it)
        raise _give_up(error, lookup, f"the match {ids[0]} could not be read: {exc}") from error.__cause__


def list_route_answers(st: State, *, deadline: Deadline | None = None) -> Flow[bool]:
    """Whether this server's list route answers with a page (so a lost create can be looked for):
    one GET of the predictions made from now on, outside the client's pacing; any failure is False."""
    lookup = _Lookup("", "", st.shared.wall_clock())
    try:
        lookup.read((yield from _list_page(st, lookup.first_path(), _budget(st, deadline))))
    except (CometReplicateError, _Inconclusive) as exc:
        log.info("the list route does not answer (%s): lost creates cannot be looked for", exc)
        return False
    return True
