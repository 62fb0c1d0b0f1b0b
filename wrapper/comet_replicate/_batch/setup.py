"""A batch before it runs: its options checked, its inputs read and validated, its journal opened and
its run planned — every input, option and journal error before any request (shared by both APIs).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from .._constants import BATCH_POLL_MAX_GAP, BATCH_POLL_SHARE, DEFAULT_RUN_WAIT
from .._inputs import InputValidation
from ..core.schedule import PollTuning
from .engine import BatchEngine, untouched
from .errors import BatchInputError
from .held import can_reconcile
from .items import BatchItem, Shard, items_from, parse_shard
from .journal import Journal, RetryPolicy
from .jsonl import parse_jsonl, read_jsonl, validate_items
from .outputs import output_target
from .plan import PlanSummary, summarize
from .reconcile import reconcile_creating
from .remote import display_location, local_path, read_source
from .results import BatchProgress, BatchReport, BatchResult
from .settings import EngineSettings, describe_error
from .stores import JournalSpec, open_journal

if TYPE_CHECKING:  # types only: the clients may import this package
    from .._client import AsyncClient

__all__ = ["BATCH_POLL_TUNING", "BatchInputs", "BatchOptions", "BatchSetup"]

BATCH_POLL_TUNING = PollTuning(share=BATCH_POLL_SHARE, max_gap=BATCH_POLL_MAX_GAP, cap=BATCH_POLL_MAX_GAP)
"""How a batch polls unless told otherwise: for throughput, not for the latency of each line."""

#: A JSONL file (path), or input mappings (with ``model=``), ``(model, input)`` pairs or BatchItems.
BatchInputs = str | os.PathLike[str] | Iterable[BatchItem | Mapping[str, Any] | tuple[str, Mapping[str, Any]]]


class BatchOptions(TypedDict, total=False):
    """Options of a batch (all optional except as noted).

    - ``model``: the model of every input that does not name its own.
    - ``journal``: a SQLite path, a database URL, or a :class:`Journal`; default for a JSONL file:
      ``FILE.journal.sqlite`` next to it (``FILE.shard-K-of-N.journal.sqlite`` with a shard).
      Required for other inputs: the journal is what makes a re-run safe.
    - ``source``: the batch's name in the journal (default: the JSONL file's name, else ``"batch"``).
    - ``out``: the output folder (default ``.``), or a URL prefix on an object store
      (``s3://bucket/run/``: one object per output, credentials from the store's environment).
    - ``concurrency`` (default 4): predictions at a time. ``timeout`` (default 300 s, None: none):
      each line's deadline for waiting and saving.
    - ``hold_creates`` (``"auto"`` (default), True or False) and ``wait`` (sync-mode seconds per
      held create, 1–60; default 60): whether each create is held open in sync mode
      (``Prefer: wait``, in one of the client's ``max_held_creates`` slots while one is free, else
      created without waiting), as ``run`` does. A held create answers when its prediction ends: no
      polls (far less CPU and far fewer requests), but its id is journaled only then, so a
      ``kill -9`` during the hold leaves the line ``creating`` — the next run finds it through the
      API's list route and resumes it by id; where there is none (CometAPI does not document one)
      it stays ``unknown``, reported and never created again unless asked. ``"auto"`` holds only
      when that lookup works: the client reconciles lost creates, the journal is this worker's
      alone, and the list route answered one probe at the start. False: every id is journaled the
      moment its create answers (no hold), then polled. ``wait`` alone means True. Lines with the
      same model and input as another line are never held (a lookup could not tell them apart).
    - ``retry_failed``, ``retry_unknown``, ``retry_lines``: which badly ended lines to create again.
    - ``shard``: ``(K, N)`` or ``"K/N"``: only the lines of shard K of N (by a hash of each line's
      work, so editing the file moves no line to another shard), with a journal of its own.
    - ``on_progress(BatchProgress)``: called on every change (from the engine's event loop).
    - ``validate`` (default True): check every input against its model's schema before any request;
      ``input_validation`` (``"strict"``, ``"warn"`` (default) or ``"off"``): how, as the client's option.
    - ``worker_id``: this process's name in the journal; ``describe_error``: how errors are worded.
    - ``poll_tuning``: the poll schedule of the batch's waits (default ``BATCH_POLL_TUNING``: at most
      every 2 s, fewer polls than a single ``run``'s; ``None``: the client's own).
    """

    model: str | None
    journal: JournalSpec
    source: str | None
    out: str | os.PathLike[str]
    concurrency: int
    timeout: float | None
    hold_creates: bool | Literal["auto"]
    wait: int | None
    retry_failed: bool
    retry_unknown: bool
    retry_lines: Iterable[int]
    shard: str | tuple[int, int] | Shard | None
    on_progress: Callable[[BatchProgress], object] | None
    validate: bool
    input_validation: InputValidation
    worker_id: str | None
    describe_error: Callable[[BaseException], str] | None
    poll_tuning: PollTuning | None


class BatchSetup:
    """A batch's configuration and, once prepared, its items, journal and plan (shared by both APIs)."""

    def __init__(self, inputs: BatchInputs, options: BatchOptions) -> None:
        self.inputs = inputs
        self.model = options.get("model")
        self.journal_spec = options.get("journal")
        self.source = options.get("source")
        self.out = output_target(options.get("out", "."))
        self.shard = _checked(parse_shard, options.get("shard"))
        self.validate = options.get("validate", True)
        self.input_validation = options.get("input_validation", "warn")
        self.worker_id = options.get("worker_id")
        self.on_progress = options.get("on_progress")
        self.poll_tuning = options.get("poll_tuning", BATCH_POLL_TUNING)
        self.hold = _hold(options.get("hold_creates", "auto"), _wait(options.get("wait")))
        self.settings = EngineSettings(
            concurrency=_positive_int("concurrency", options.get("concurrency", 4)),
            timeout=_timeout(options.get("timeout", 300.0)),
            wait=_wait(options.get("wait")) or DEFAULT_RUN_WAIT,
            policy=RetryPolicy(
                retry_failed=options.get("retry_failed", False),
                retry_unknown=options.get("retry_unknown", False),
                retry_lines=frozenset(options.get("retry_lines", ())),
            ),
            describe=options.get("describe_error") or describe_error,
        )
        self.items: list[BatchItem] = []
        self.journal: Journal | None = None
        self.plan: PlanSummary | None = None

    def prepare(self) -> PlanSummary:
        """Read and check the inputs, open the journal and plan the run: every error before any request."""
        if self.plan is not None:
            return self.plan
        items, name, path = self._read()
        if self.validate:
            validate_items(items, name, self.input_validation)
        try:
            self.out.check()
        except OSError as exc:
            raise BatchInputError(str(exc)) from None
        if self.shard is not None:
            items = [item for item in items if self.shard.holds(item)]
        if self.journal_spec is None and path is None:
            raise ValueError(
                "journal= is required unless the inputs are a local JSONL file (it makes re-runs safe)"
            )
        journal = open_journal(
            self.journal_spec, source=self.source or name, shard=self.shard, worker_id=self.worker_id
        )
        try:
            journal.prepare(items)
            self.plan = summarize(items, journal.rows(), self.settings.policy)
        except BaseException:
            journal.close()
            raise
        self.items, self.journal = items, journal
        return self.plan

    def _read(self) -> tuple[list[BatchItem], str, Path | None]:
        if isinstance(self.inputs, str | os.PathLike):
            if self.model is None:
                raise ValueError("model= is required with a JSONL file")
            local = local_path(self.inputs)
            if local is None:  # a URL (s3://, gs://, https://, ...): read through fsspec
                name = display_location(self.inputs)
                lines = parse_jsonl(read_source(self.inputs), name)
            else:
                name, lines = str(local), read_jsonl(local)
            items = [BatchItem(number, self.model, value) for number, value in lines]
            return items, name, local
        return items_from(self.inputs, self.model), self.source or "batch", None

    def standing(self) -> BatchReport:
        """The report as the journal stands, without running anything."""
        plan = self.prepare()
        assert self.journal is not None
        rows = {(row.line_no, row.digest): row for row in self.journal.rows()}
        results = [
            BatchResult.from_row(item.line, item.model, rows.get((item.line, item.digest)), item.input)
            for item in self.items
        ]
        return BatchReport(journal=self.journal.location, plan=plan, results=results)

    async def stream(
        self, client: AsyncClient, holder: list[BatchEngine]
    ) -> AsyncGenerator[BatchResult, None]:
        plan = self.prepare()
        assert self.journal is not None
        try:  # the journal (and its lock) closes wherever a stop lands, the probes before the run too
            if self.poll_tuning is not None:
                client = client.with_options(poll_tuning=self.poll_tuning)  # same pool, pacer, history
            if await reconcile_creating(client, self.journal, self.items):
                plan = self.plan = summarize(self.items, self.journal.rows(), self.settings.policy)
            settings = self.settings
            if not await self._holds(client, plan):
                settings = replace(settings, wait=None)
            else:
                counts = Counter(item.digest for item in self.items)
                settings = replace(settings, never_held=frozenset(d for d, n in counts.items() if n > 1))
            engine = BatchEngine(
                client,
                self.journal,
                self.items,
                plan,
                out=self.out,
                settings=settings,
                on_progress=self.on_progress,
            )
            holder.append(engine)
            inner = engine.stream(untouched(self.items, self.journal, self.settings.policy))
            try:
                async for result in inner:
                    yield result
            finally:
                await inner.aclose()  # leaving early must stop the engine (and build its report) first
        finally:
            self.close()

    async def _holds(self, client: AsyncClient, plan: PlanSummary) -> bool:
        """Whether this run holds its creates (see ``hold_creates``): "auto" probes the list route
        once, and only when there is a line to create and its lost create could be looked for."""
        if self.hold != "auto":
            return self.hold
        assert self.journal is not None
        if plan.create == 0 or self.journal.lease_seconds is not None:
            return False
        return await can_reconcile(client)

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()


def _checked(parse: Callable[[Any], Shard | None], value: Any) -> Shard | None:
    try:
        return parse(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc) if "shard" in str(exc) else f"shard: {exc}") from None


def _positive_int(name: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, not {value!r}")
    return value


def _timeout(value: float | None) -> float | None:
    if value is not None and not (isinstance(value, int | float) and 0 < value < float("inf")):
        raise ValueError(f"timeout must be a positive number of seconds or None, not {value!r}")
    return None if value is None else float(value)


def _hold(value: object, wait: int | None) -> bool | Literal["auto"]:
    """``hold_creates`` checked; a ``wait`` given alone asks for held creates."""
    if value != "auto" and not isinstance(value, bool):
        raise ValueError(f"hold_creates must be 'auto', True or False, not {value!r}")
    if value is False and wait is not None:
        raise ValueError(f"wait={wait} holds creates in sync mode; it cannot go with hold_creates=False")
    if value is True or wait is not None:
        return True
    return "auto" if value == "auto" else False


def _wait(value: int | None) -> int | None:
    if value in (None, 0):
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 60:
        raise ValueError(f"wait must be a whole number of seconds from 1 to 60 (or None), not {value!r}")
    return value
