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
import contextlib
import queue
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any, Unpack

from .engine import BatchEngine
from .journal import Journal
from .plan import PlanSummary
from .results import BatchReport, BatchResult
from .setup import BatchInputs, BatchOptions, BatchSetup

if TYPE_CHECKING:  # the clients import this package to offer `client.batch(...)`: types only here
    from .._client import AsyncClient

__all__ = ["AsyncBatch", "Batch", "BatchInputs", "BatchOptions"]


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
        self._setup = BatchSetup(inputs, options)
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
        self._setup = BatchSetup(inputs, options)
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
            self._setup.close()  # also when the client could not even be made

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
            # The loop may close between the check and the call (the coroutine just ended, e.g. on a
            # fatal error already handed over): then there is nothing left to cancel.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join()
