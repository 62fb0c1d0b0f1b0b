"""The batch API: :class:`AsyncBatch` on an AsyncClient, and :class:`Batch`, its blocking twin.

```python
from comet_replicate import AsyncBatch, AsyncClient

async with AsyncClient() as client:
    batch = AsyncBatch(client, [{"prompt": p} for p in prompts], model="black-forest-labs/flux-schnell",
                       journal="boats.journal.sqlite", out="boats/", concurrency=8, timeout=300)
    async for result in batch:          # as each line finishes; or: report = await batch
        print(result.line, result.state, result.prediction_id, result.files)
```

Running the same batch again resumes it: finished lines are skipped, created ones are resumed by id,
and a line whose create never answered is reported ``unknown`` and never created again unless asked
(``retry_unknown`` / ``retry_lines``). :class:`Batch` drives the very same engine on an event loop in
a worker thread and hands the results over as they come.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from .errors import BatchInputError
from .items import BatchItem, Shard, items_from, parse_shard
from .journal import Journal, RetryPolicy
from .jsonl import parse_jsonl, read_jsonl, validate_items
from .outputs import output_target
from .plan import PlanSummary, summarize
from .remote import display_location, local_path, read_source
from .results import BatchProgress, BatchReport, BatchResult
from .stores import JournalSpec, open_journal

from .engine import BatchEngine, untouched  # isort: skip
from .settings import EngineSettings, describe_error  # isort: skip

if TYPE_CHECKING:  # the clients import this package to offer `client.batch(...)`: types only here
    from .._client import AsyncClient

__all__ = ["AsyncBatch", "Batch", "BatchInputs", "BatchOptions"]

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
      each line's deadline for waiting and saving. ``wait``: sync-mode seconds per create (1–60).
    - ``retry_failed``, ``retry_unknown``, ``retry_lines``: which badly ended lines to create again.
    - ``shard``: ``(K, N)`` or ``"K/N"``: only the lines of shard K of N (by a hash of each line's
      work, so editing the file moves no line to another shard), with a journal of its own.
    - ``on_progress(BatchProgress)``: called on every change (from the engine's event loop).
    - ``validate`` (default True): check every input against its model's schema before any request.
    - ``worker_id``: this process's name in the journal; ``describe_error``: how errors are worded.
    """

    model: str | None
    journal: JournalSpec
    source: str | None
    out: str | os.PathLike[str]
    concurrency: int
    timeout: float | None
    wait: int | None
    retry_failed: bool
    retry_unknown: bool
    retry_lines: Iterable[int]
    shard: str | tuple[int, int] | Shard | None
    on_progress: Callable[[BatchProgress], object] | None
    validate: bool
    worker_id: str | None
    describe_error: Callable[[BaseException], str] | None


class _Setup:
    """A batch's configuration and, once prepared, its items, journal and plan (shared by both APIs)."""

    def __init__(self, inputs: BatchInputs, options: BatchOptions) -> None:
        self.inputs = inputs
        self.model = options.get("model")
        self.journal_spec = options.get("journal")
        self.source = options.get("source")
        self.out = output_target(options.get("out", "."))
        self.shard = _checked(parse_shard, options.get("shard"))
        self.validate = options.get("validate", True)
        self.worker_id = options.get("worker_id")
        self.on_progress = options.get("on_progress")
        self.settings = EngineSettings(
            concurrency=_positive_int("concurrency", options.get("concurrency", 4)),
            timeout=_timeout(options.get("timeout", 300.0)),
            wait=_wait(options.get("wait")),
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
            validate_items(items, name)
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
            BatchResult.from_row(item.line, item.model, rows.get((item.line, item.digest)))
            for item in self.items
        ]
        return BatchReport(journal=self.journal.location, plan=plan, results=results)

    async def stream(
        self, client: AsyncClient, holder: list[BatchEngine]
    ) -> AsyncGenerator[BatchResult, None]:
        plan = self.prepare()
        assert self.journal is not None
        engine = BatchEngine(
            client,
            self.journal,
            self.items,
            plan,
            out=self.out,
            settings=self.settings,
            on_progress=self.on_progress,
        )
        holder.append(engine)
        inner = engine.stream(untouched(self.items, self.journal, self.settings.policy))
        try:
            async for result in inner:
                yield result
        finally:
            await inner.aclose()  # leaving early must stop the engine (and build its report) first
            self.close()

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


def _wait(value: int | None) -> int | None:
    if value in (None, 0):
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 60:
        raise ValueError(f"wait must be a whole number of seconds from 1 to 60 (or None), not {value!r}")
    return value


class AsyncBatch:
    """One batch run on an :class:`~comet_replicate.AsyncClient` (see the module docstring).

    ``async for result in batch`` yields each line's :class:`BatchResult` as it finishes (lines left
    alone first); ``await batch`` runs it to the end and returns the :class:`BatchReport`, which
    :attr:`report` also holds afterwards. :meth:`prepare` reads, checks and plans without any
    request. Leaving the loop early or cancelling the task stops the run: in-flight creates answer
    first, running predictions get a bounded cancel and their lines are marked ``interrupted``.
    """

    def __init__(self, client: AsyncClient, inputs: BatchInputs, **options: Unpack[BatchOptions]) -> None:
        self._client = client
        self._setup = _Setup(inputs, options)
        self._engine: list[BatchEngine] = []
        self._stream: AsyncGenerator[BatchResult, None] | None = None

    def prepare(self) -> PlanSummary:
        """Read and validate the inputs, open the journal, and return the plan (no request is sent)."""
        return self._setup.prepare()

    @property
    def journal(self) -> Journal | None:
        """The journal, once prepared."""
        return self._setup.journal

    def status(self) -> BatchReport:
        """Every line's standing from the journal, without running anything (no request is sent)."""
        return self._setup.standing()

    @property
    def report(self) -> BatchReport | None:
        """The run's report once it ended (or was stopped)."""
        return self._engine[0].final if self._engine else None

    def __aiter__(self) -> AsyncIterator[BatchResult]:
        if self._stream is not None:
            raise RuntimeError("a batch runs once; make a new AsyncBatch to run it again")
        self._stream = self._setup.stream(self._client, self._engine)
        return self._stream

    async def run(self) -> BatchReport:
        """Run to the end and return the report."""
        async for _ in self:
            pass
        return self._final()

    def __await__(self) -> Generator[Any, None, BatchReport]:
        return self.run().__await__()

    def _final(self) -> BatchReport:
        report = self.report
        if report is None:
            raise RuntimeError("the batch has not run")
        return report

    async def aclose(self) -> None:
        """Stop the run if it is still going (as on cancel) and close the journal."""
        stream = self._stream
        if stream is not None:
            await stream.aclose()
        self._setup.close()

    async def __aenter__(self) -> AsyncBatch:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Batch:
    """The blocking twin of :class:`AsyncBatch`: the same engine, on an event loop in a worker thread.

    ``client`` makes the AsyncClient, in that thread (an AsyncClient belongs to one event loop), e.g.
    ``Batch(inputs, client=lambda: AsyncClient(key), ...)``. Iterating yields results as lines finish;
    :meth:`run` returns the report. Ctrl-C (or leaving the loop) stops the run as AsyncBatch does,
    then the KeyboardInterrupt goes on; :attr:`report` then names the interrupted predictions.
    ``on_progress`` is called from the worker thread.
    """

    def __init__(
        self,
        inputs: BatchInputs,
        *,
        client: Callable[[], AsyncClient],
        **options: Unpack[BatchOptions],
    ) -> None:
        self._setup = _Setup(inputs, options)
        self._make_client = client
        self._engine: list[BatchEngine] = []
        self._started = False

    def prepare(self) -> PlanSummary:
        """Read and validate the inputs, open the journal, and return the plan (no request is sent)."""
        return self._setup.prepare()

    @property
    def journal(self) -> Journal | None:
        """The journal, once prepared."""
        return self._setup.journal

    def status(self) -> BatchReport:
        """Every line's standing from the journal, without running anything (no request is sent)."""
        return self._setup.standing()

    def close(self) -> None:
        """Close the journal (a run closes it itself when it ends)."""
        self._setup.close()

    @property
    def report(self) -> BatchReport | None:
        """The run's report once it ended (or was stopped)."""
        return self._engine[0].final if self._engine else None

    def run(self) -> BatchReport:
        """Run to the end and return the report."""
        for _ in self:
            pass
        report = self.report
        assert report is not None
        return report

    def __iter__(self) -> Iterator[BatchResult]:
        if self._started:
            raise RuntimeError("a batch runs once; make a new Batch to run it again")
        self._started = True
        self.prepare()  # input and journal errors surface here, in the caller's thread
        return self._drive()

    def _drive(self) -> Iterator[BatchResult]:
        handoff: queue.Queue[tuple[str, Any]] = queue.Queue()
        runner = _LoopThread(self._pump(handoff))
        try:
            while True:
                kind, value = handoff.get()
                if kind == "result":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    return
        finally:
            runner.stop()

    async def _pump(self, handoff: queue.Queue[tuple[str, Any]]) -> None:
        try:
            async with self._make_client() as client:
                async for result in self._setup.stream(client, self._engine):
                    handoff.put(("result", result))
        except BaseException as exc:
            handoff.put(("error", exc))
            raise
        handoff.put(("end", None))


class _LoopThread:
    """Runs one coroutine on a fresh event loop in a daemon thread; :meth:`stop` cancels and joins it."""

    def __init__(self, coroutine: Any) -> None:
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._thread = threading.Thread(target=self._main, args=(coroutine,), daemon=True, name="comet-batch")
        self._thread.start()
        self._ready.wait()

    def _main(self, coroutine: Any) -> None:
        async def wrapper() -> None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            self._ready.set()
            await coroutine

        try:
            asyncio.run(wrapper())
        except BaseException:  # already handed to the caller through the queue
            pass
        finally:
            self._ready.set()

    def stop(self) -> None:
        if self._thread.is_alive() and self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join()
