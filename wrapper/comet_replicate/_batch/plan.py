"""The resume rules, in one pure place: what a run does with a line, given its journal row.

- no row (or ``pending``, ``not_created``, ``interrupted``): create it;
- ``succeeded``: done, skipped;
- ``created`` with an id: resume by id — never created again;
- ``failed``/``canceled``/``aborted``: reported, created again only with ``retry_failed``;
- ``creating``: the create may have reached the server and nobody knows its id: reported unknown,
  created again only with ``retry_unknown`` or when its line is in ``retry_lines``.

Journals apply :func:`decide` when they hand out claims; the engine uses it to report the plan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from .items import BatchItem
from .journal import FINISHED_BAD, JournalRow, LineState, RetryPolicy

__all__ = ["Action", "PlanSummary", "decide", "summarize"]

Action = Literal["create", "resume", "done", "failed", "unknown"]


def decide(row: JournalRow | None, policy: RetryPolicy) -> Action:
    """What a run does with a line whose journal row is ``row`` (None: never seen)."""
    if row is None:
        return "create"
    state = row.state
    if state == LineState.SUCCEEDED:
        return "done"
    if state == LineState.CREATED and row.prediction_id:
        return "resume"
    if state in FINISHED_BAD:
        return "create" if policy.retry_failed else "failed"
    if state == LineState.CREATING:
        return "create" if policy.retry_unknown or row.line_no in policy.retry_lines else "unknown"
    return "create"


@dataclass(frozen=True)
class PlanSummary:
    """How many lines a run finds done, will resume by id, reports unknown or failed, and will create."""

    total: int
    done: int
    resume: int
    create: int
    failed: int
    unknown: int

    @property
    def todo(self) -> int:
        return self.resume + self.create


def summarize(items: Sequence[BatchItem], rows: Iterable[JournalRow], policy: RetryPolicy) -> PlanSummary:
    """The plan of a run over ``items`` before it starts (rows of other lines are ignored)."""
    by_key = {(row.line_no, row.digest): row for row in rows}
    counts = Counter(decide(by_key.get((item.line, item.digest)), policy) for item in items)
    return PlanSummary(
        total=len(items),
        done=counts["done"],
        resume=counts["resume"],
        create=counts["create"],
        failed=counts["failed"],
        unknown=counts["unknown"],
    )
