"""The engine with a journal shared by many workers (claims with leases), using a SQLite journal that
plays the part: a lost lease drops only that line (no cancel: its new holder resumes it), and a
stopped worker hands its running lines back instead of canceling predictions someone else will finish."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from comet_replicate import AsyncBatch
from comet_replicate._batch import LeaseLost, SQLiteJournal

from .conftest import SCHNELL, client_for, first_ones_take, prompts, requests_of


class LeasingJournal(SQLiteJournal):
    """A SQLite journal that behaves like a shared one: leases, renewals, and a lease lost on cue."""

    lease_seconds = 0.3

    def __init__(self, *args: Any, lose: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lose = lose
        self.released: list[tuple[int, str]] = []

    def renew(self, lines: Sequence[tuple[int, str]]) -> None:
        lost = tuple(key for key in lines if key[0] == self.lose)
        if lost:
            self.lose = None
            raise LeaseLost("lost the claim on line 1", location=self.location, lines=lost)

    def release(self, lines: Sequence[tuple[int, str]]) -> None:
        self.released.extend(lines)
        super().release(lines)


async def test_a_lost_lease_drops_only_that_line_and_sends_no_cancel(
    serve_emulator: Any, tmp_path: Path
) -> None:
    server = serve_emulator(speed=1.0, duration_fn=first_ones_take(60.0, 1))
    journal = LeasingJournal(tmp_path / "j.sqlite", "batch", lose=1)
    async with client_for(server) as client:
        # One line at a time, so line 1 is the long one (the emulator slows the first create it sees).
        report = await asyncio.wait_for(
            AsyncBatch(
                client, prompts(3), model=SCHNELL, journal=journal, out=tmp_path / "out", concurrency=1
            ),
            30,
        )
    first, *rest = report.results
    assert isinstance(first.error, LeaseLost) and first.state == "created" and first.prediction_id
    assert [r.state for r in rest] == ["succeeded", "succeeded"]
    assert report.stopped_early is None and report.interrupted_ids == []
    assert requests_of(server, "cancel") == 0  # the line's new holder finishes the prediction
    assert requests_of(server, "create") == 3


async def test_a_stopped_worker_hands_running_lines_back_instead_of_canceling(
    serve_emulator: Any, tmp_path: Path
) -> None:
    server = serve_emulator(speed=1.0, duration_fn=first_ones_take(60.0, 2))
    journal = LeasingJournal(tmp_path / "j.sqlite", "batch")
    async with client_for(server) as client:
        batch = AsyncBatch(client, prompts(4), model=SCHNELL, journal=journal, out=tmp_path, concurrency=2)
        task = asyncio.ensure_future(batch.run())
        while (
            requests_of(server, "create") < 2
            or len(journal.rows()) < 2
            or any(row.state != "created" for row in journal.rows())
        ):
            await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.wait({task})
    report = batch.report
    assert report is not None and report.interrupted_ids == []
    assert sorted(report.released_ids) == sorted(server.stats()["prediction_ids"])
    assert sorted(line for line, _ in journal.released) == [1, 2]
    assert requests_of(server, "cancel") == 0
    assert [r.state for r in report.results][:2] == ["created", "created"]
