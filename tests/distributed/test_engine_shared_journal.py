"""The batch engine on a shared journal, through the library API (``AsyncBatch``):

- a line whose lease another worker took over is dropped by this worker at its next renewal (only
  that line; nothing is sent to the API), so no line is worked on by two workers at once;
- stopping one worker of a shared journal leaves its running predictions to the others, which
  resume them by id; nothing is canceled (that would make the next worker pay again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from comet_replicate import AsyncClient
from comet_replicate._batch import AsyncBatch, BatchItem, LeaseLost, RetryPolicy, open_journal
from comet_replicate._batch.postgres import SCHEMA, PostgresJournal

from tests.distributed.conftest import need
from tests.reliability._support import EmulatorProcess

psycopg = need("psycopg")

SLOW_MODEL = "black-forest-labs/flux-pro"  # about 6 s at speed 1: time to act while it runs
KEY = "sk-distributed"


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    with EmulatorProcess("--speed", "1", "--seed", "9", "--durations", "fixed") as server:
        yield server


async def row_state(url: str) -> tuple[str, str | None, str | None]:
    with psycopg.connect(url) as conn:
        found = conn.execute(f"SELECT state, prediction_id, worker FROM {SCHEMA}.lines").fetchone()
    assert found is not None
    return found[0], found[1], found[2]


async def until_created(url: str) -> str:
    for _ in range(500):
        state, pid, _worker = await row_state(url)
        if state == "created" and pid:
            return pid
        await asyncio.sleep(0.02)
    raise AssertionError("the line was never created")


async def test_a_line_taken_over_by_another_worker_is_dropped_at_the_next_renewal(
    emulator: EmulatorProcess, pg_url: str, tmp_path: object
) -> None:
    journal = f"{pg_url}?lease_seconds=2"
    async with AsyncClient(KEY, base_url=emulator.cometapi_base_url) as client:
        batch = AsyncBatch(
            client, [{"prompt": "taken over"}], model=SLOW_MODEL, journal=journal, source="one",
            out=str(tmp_path), worker_id="slow", timeout=60,
        )  # fmt: skip
        batch.prepare()  # the journal's tables exist from here on
        run = asyncio.ensure_future(batch.run())
        pid = await until_created(pg_url)
        # The worker looks dead from outside (its lease ran out) and another one takes the line.
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"UPDATE {SCHEMA}.lines SET lease_until = now() - interval '1 s'")
        thief = open_journal(journal, source="one", worker_id="thief")
        assert isinstance(thief, PostgresJournal)
        thief.prepare([BatchItem(1, SLOW_MODEL, {"prompt": "taken over"})])
        [claim] = thief.claim(1, RetryPolicy())
        assert (claim.action, claim.prediction_id) == ("resume", pid)
        report = await asyncio.wait_for(run, 30)
    [result] = report.results
    assert isinstance(result.error, LeaseLost)
    assert result.prediction_id == pid
    state, recorded, holder = await row_state(pg_url)
    assert (state, recorded, holder) == ("created", pid, "thief")  # the slow worker wrote nothing more
    assert emulator.prediction(pid)["status"] != "canceled"
    thief.close()


async def test_stopping_one_worker_leaves_its_predictions_to_the_others_without_canceling(
    emulator: EmulatorProcess, pg_url: str, tmp_path: object
) -> None:
    journal = f"{pg_url}?lease_seconds=30"
    async with AsyncClient(KEY, base_url=emulator.cometapi_base_url) as client:
        batch = AsyncBatch(
            client, [{"prompt": "left to others"}], model=SLOW_MODEL, journal=journal, source="two",
            out=str(tmp_path), worker_id="leaving", timeout=60,
        )  # fmt: skip
        batch.prepare()  # the journal's tables exist from here on
        run = asyncio.ensure_future(batch.run())
        pid = await until_created(pg_url)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        report = batch.report
        assert report is not None and report.released_ids == [pid] and report.interrupted_ids == []
        assert emulator.prediction(pid)["status"] != "canceled"
        # Released at once, not after the lease: the next worker resumes it by id.
        heir = AsyncBatch(
            client, [{"prompt": "left to others"}], model=SLOW_MODEL, journal=journal, source="two",
            out=str(tmp_path), worker_id="heir", timeout=60,
        )  # fmt: skip
        final = await asyncio.wait_for(heir.run(), 60)
    [result] = final.results
    assert (result.state, result.prediction_id) == ("succeeded", pid)
    assert len(result.files) == 1
