"""Journal calls off the event loop: in order, one at a time, committed in groups, and never abandoned
halfway."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from comet_replicate import AsyncBatch
from comet_replicate._batch import JournalError, SQLiteJournal
from comet_replicate._batch.journal_thread import JournalThread
from comet_replicate._constants import JOURNAL_GROUP_MAX

from .conftest import SCHNELL, client_for, prompts, requests_of


async def test_calls_run_in_order_one_at_a_time_off_the_loop_thread() -> None:
    writes = JournalThread()
    seen: list[tuple[int, str]] = []
    busy = threading.Lock()

    def write(n: int) -> int:
        assert busy.acquire(blocking=False), "two journal calls at once"
        try:
            time.sleep(0.01)
            seen.append((n, threading.current_thread().name))
        finally:
            busy.release()
        return n

    results = await asyncio.gather(*(writes.call(write, n) for n in range(10)))
    writes.close()
    assert results == list(range(10)) and [n for n, _ in seen] == list(range(10))
    assert all(name.startswith("comet-batch-journal") for _, name in seen)


async def test_a_cancel_waits_for_the_call_to_finish() -> None:
    writes = JournalThread()
    done = threading.Event()

    def slow_write() -> None:
        time.sleep(0.3)
        done.set()

    task = asyncio.ensure_future(writes.call(slow_write))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert done.is_set()  # the write finished before the cancel went on
    writes.close()


async def test_a_cancel_of_a_call_still_queued_waits_for_it_to_run() -> None:
    writes = JournalThread()
    started, release, ran = threading.Event(), threading.Event(), threading.Event()

    def blocking() -> None:
        started.set()
        release.wait(5)

    first = writes.submit(blocking)
    assert await asyncio.to_thread(started.wait, 5)
    task = asyncio.ensure_future(writes.call(ran.set))  # queued behind the blocking call
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.sleep(0.05)
    assert not task.done()  # the cancel waits: the call has not run yet
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ran.is_set()  # it ran before the cancel went on
    await first
    writes.close()


class RecordingGroups:
    """A journal's ``group``: logs each group's calls, and how many callers had their answer at the
    commit (none may: a caller goes on only once its write is durable)."""

    def __init__(self, fail_commit: bool = False) -> None:
        self.log: list[str] = []
        self.fail_commit = fail_commit
        self.futures: list[asyncio.Future[Any]] = []

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        self.log.append("begin")
        yield
        if self.fail_commit:
            raise JournalError("disk full", location="test")
        self.log.append(f"commit, {sum(future.done() for future in self.futures)} answered")

    def write(self, n: int) -> int:
        self.log.append(f"write {n}")
        return n


def refused() -> None:
    raise JournalError("no row", location="test")


async def _queued_together(
    writes: JournalThread, groups: RecordingGroups, calls: list[tuple[Any, ...]]
) -> list[Any]:
    """Submit ``calls`` while the thread is busy with another call (so they queue), then let it go:
    each call's outcome (a result or an exception)."""
    started, release = threading.Event(), threading.Event()

    def blocking() -> None:
        started.set()
        release.wait(5)

    first = writes.submit(blocking)
    assert await asyncio.to_thread(started.wait, 5)
    groups.futures = [writes.submit(method, *args) for method, *args in calls]
    await asyncio.sleep(0.05)
    assert not any(future.done() for future in groups.futures)
    release.set()
    await first
    outcomes = await asyncio.gather(*groups.futures, return_exceptions=True)
    writes.close()
    return outcomes


async def test_calls_queued_meanwhile_are_committed_together_and_answered_after_the_commit() -> None:
    groups = RecordingGroups()
    outcomes = await _queued_together(JournalThread(groups), groups, [(groups.write, n) for n in range(5)])
    assert outcomes == list(range(5))
    # the busy call ran alone (no group of one); the queued ones in one group, answered after it
    assert groups.log == ["begin", *(f"write {n}" for n in range(5)), "commit, 0 answered"]


async def test_a_failed_group_commit_fails_every_call_of_the_group() -> None:
    groups = RecordingGroups(fail_commit=True)
    outcomes = await _queued_together(JournalThread(groups), groups, [(groups.write, n) for n in range(3)])
    assert [type(outcome) for outcome in outcomes] == [JournalError] * 3  # none of them is durable


async def test_a_call_that_raises_fails_alone_in_its_group() -> None:
    groups = RecordingGroups()
    calls = [(groups.write, 1), (refused,), (groups.write, 2)]
    outcomes = await _queued_together(JournalThread(groups), groups, calls)
    assert outcomes[0] == 1 and isinstance(outcomes[1], JournalError) and outcomes[2] == 2
    assert groups.log == ["begin", "write 1", "write 2", "commit, 0 answered"]


async def test_a_deferred_call_goes_with_the_next_call_in_its_group_and_before_it() -> None:
    groups = RecordingGroups()
    writes = JournalThread(groups)
    deferred = writes.defer(groups.write, 1)
    groups.futures = [deferred, writes.submit(groups.write, 2)]
    assert await asyncio.gather(*groups.futures) == [1, 2]
    writes.close()
    # one group, one commit: the deferred call cost no wake-up or commit of its own
    assert groups.log == ["begin", "write 1", "write 2", "commit, 0 answered"]


async def test_a_deferred_call_with_no_call_after_it_runs_on_its_own_once_its_wait_is_over() -> None:
    groups = RecordingGroups()
    writes = JournalThread(groups)
    await writes.call_deferred(groups.write, 1)  # answered although nothing else was submitted
    writes.close()
    assert groups.log == ["write 1"]  # alone: no group of one


async def test_closing_runs_the_deferred_calls() -> None:
    groups = RecordingGroups()
    writes = JournalThread(groups)
    pending = [writes.defer(groups.write, n) for n in range(3)]
    writes.close()
    assert groups.log == ["begin", "write 0", "write 1", "write 2", "commit, 0 answered"]
    assert await asyncio.gather(*pending) == [0, 1, 2]


async def test_more_deferred_calls_than_a_group_holds_are_committed_in_groups_of_the_maximum() -> None:
    groups = RecordingGroups()
    writes = JournalThread(groups)
    pending = [writes.defer(groups.write, n) for n in range(JOURNAL_GROUP_MAX + 3)]
    writes.close()
    assert await asyncio.gather(*pending) == list(range(JOURNAL_GROUP_MAX + 3))
    commits = [n for n, entry in enumerate(groups.log) if entry.startswith("commit")]
    assert groups.log.count("begin") == 2 and commits == [JOURNAL_GROUP_MAX + 1, JOURNAL_GROUP_MAX + 6]


async def test_a_cancel_of_a_deferred_call_waits_for_it_to_run() -> None:
    writes = JournalThread()
    ran = threading.Event()
    task = asyncio.ensure_future(writes.call_deferred(ran.set))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ran.is_set()  # sent at once by the cancel, and run before the cancel went on
    writes.close()


class SlowCreatingJournal(SQLiteJournal):
    """mark_creating takes long enough for the run to be stopped during it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.writing = threading.Event()

    def mark_creating(self, line_no: int, digest: str, model: str) -> None:
        super().mark_creating(line_no, digest, model)
        self.writing.set()
        time.sleep(0.5)


class SlowFinishingJournal(SQLiteJournal):
    """mark_finished takes long enough for the run to be stopped while a line's end is written."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.writing = threading.Event()

    def mark_finished(self, line_no: int, digest: str, state: str, **details: Any) -> None:
        self.writing.set()
        time.sleep(0.5)
        super().mark_finished(line_no, digest, state, **details)


async def _stopped_while_writing(
    emulator: Any, tmp_path: Path, journal: SlowCreatingJournal | SlowFinishingJournal
) -> AsyncBatch:
    """A one-line batch, cancelled once the journal's slow write has started; the batch, stopped."""
    async with client_for(emulator) as client:
        batch = AsyncBatch(client, prompts(1), model=SCHNELL, journal=journal, out=tmp_path)
        task = asyncio.ensure_future(batch.run())
        async with asyncio.timeout(30):
            while not journal.writing.is_set():
                await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.wait({task})
    return batch


async def test_a_stop_while_creating_is_written_sends_no_create_and_leaves_no_false_unknown(
    emulator: Any, tmp_path: Path
) -> None:
    await _stopped_while_writing(emulator, tmp_path, SlowCreatingJournal(tmp_path / "j.sqlite", "batch"))
    assert requests_of(emulator, "create") == 0
    with SQLiteJournal(tmp_path / "j.sqlite", "batch") as again:
        [row] = again.rows()
    assert row.state == "not_created"  # created on the next run, not reported unknown


async def test_a_stop_while_a_finished_line_is_written_sends_its_prediction_no_cancel(
    emulator: Any, tmp_path: Path
) -> None:
    journal = SlowFinishingJournal(tmp_path / "j.sqlite", "batch")
    batch = await _stopped_while_writing(
        emulator, tmp_path, journal
    )  # its outputs saved, its end being written
    assert batch.report is not None and batch.report.interrupted_ids == []
    assert requests_of(emulator, "cancel") == 0
    with SQLiteJournal(tmp_path / "j.sqlite", "batch") as again:
        [row] = again.rows()
    assert row.state == "succeeded"  # the write ran before the stop went on
