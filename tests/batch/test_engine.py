"""The batch engine through the public API, against a real emulator: results per line as they finish,
progress, per-line deadlines, typed errors, stopping, and the blocking twin."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from comet_replicate import (
    APIConnectionError,
    AsyncBatch,
    AsyncClient,
    AuthenticationError,
    Batch,
    BatchInputError,
    BatchProgress,
    CreateOutcomeUnknown,
    PollTuning,
    PredictionFailed,
    PredictionTimeout,
)
from comet_replicate._batch import BATCH_POLL_TUNING, Claim, RetryPolicy, SQLiteJournal
from comet_replicate._batch.journal_thread import JournalThread
from comet_replicate._constants import JOURNAL_DEFER_MIN_LINES
from comet_replicate._inputs import input_sha256
from comet_replicate_emulator import Faults
from PIL import Image

from .conftest import SCHNELL, TOKEN, client_for, first_ones_take, prompts, requests_of, write_jsonl


def _states(journal: Path) -> list[tuple[int, str, str | None]]:
    db = sqlite3.connect(journal)
    try:
        return db.execute("SELECT line_no, state, prediction_id FROM lines ORDER BY line_no").fetchall()
    finally:
        db.close()


async def test_each_line_yields_its_result_with_id_and_files_and_a_rerun_creates_nothing(
    emulator: Any, tmp_path: Path
) -> None:
    journal, out = tmp_path / "j.sqlite", tmp_path / "out"
    async with client_for(emulator) as client:
        batch = AsyncBatch(client, prompts(5), model=SCHNELL, journal=journal, out=out, concurrency=2)
        plan = batch.prepare()
        assert (plan.total, plan.create, plan.done) == (5, 5, 0)
        seen = [result async for result in batch]
    assert sorted(result.line for result in seen) == [1, 2, 3, 4, 5]
    assert all(result.ok and result.ran and result.error is None for result in seen)
    assert sorted(r.prediction_id for r in seen) == sorted(emulator.stats()["prediction_ids"])
    for result in seen:
        [path] = result.files
        assert Path(path).parent == out and Path(path).name.startswith(f"line{result.line:05d}-")
        with Image.open(path) as image:
            image.load()
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(r.files[0]).name for r in seen)

    async with client_for(emulator) as client:
        report = await AsyncBatch(client, prompts(5), model=SCHNELL, journal=journal, out=out)
    assert report.ok and report.plan.done == 5 and report.succeeded == 5
    assert not any(result.ran for result in report.results)
    assert requests_of(emulator, "create") == 5


async def test_progress_reports_every_change_and_never_more_running_than_the_concurrency(
    emulator: Any, tmp_path: Path
) -> None:
    states: list[BatchProgress] = []
    async with client_for(emulator) as client:
        report = await AsyncBatch(
            client,
            prompts(6),
            model=SCHNELL,
            journal=tmp_path / "j.sqlite",
            out=tmp_path / "out",
            concurrency=3,
            on_progress=states.append,
        )
    assert report.ok
    assert states[0] == BatchProgress(total=6)
    assert states[-1] == BatchProgress(total=6, done=6)
    assert max(state.running for state in states) == 3
    finished = [state.finished for state in states]
    assert finished == sorted(finished)


async def test_a_failing_progress_callback_does_not_break_the_batch(
    emulator: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(state: BatchProgress) -> None:
        raise RuntimeError("display gone")

    async with client_for(emulator) as client:
        report = await AsyncBatch(
            client, prompts(2), model=SCHNELL, journal=tmp_path / "j", out=tmp_path, on_progress=broken
        )
    assert report.ok and "progress callback failed" in caplog.text


async def test_a_line_past_its_deadline_keeps_its_id_and_the_next_run_resumes_it(
    serve_emulator: Any, tmp_path: Path
) -> None:
    server = serve_emulator(speed=1.0, duration_fn=first_ones_take(3.0, 1))
    journal, out = tmp_path / "j.sqlite", tmp_path / "out"
    async with client_for(server) as client:
        report = await AsyncBatch(client, prompts(1), model=SCHNELL, journal=journal, out=out, timeout=0.5)
    [result] = report.results
    assert result.state == "created" and isinstance(result.error, PredictionTimeout)
    assert result.prediction_id == server.stats()["prediction_ids"][0] == result.error.prediction_id
    assert _states(journal) == [(1, "created", result.prediction_id)]

    async with client_for(server) as client:
        again = await AsyncBatch(client, prompts(1), model=SCHNELL, journal=journal, out=out, timeout=30)
    assert again.plan.resume == 1 and again.ok
    assert again.results[0].prediction_id == result.prediction_id
    assert requests_of(server, "create") == 1


async def test_failed_predictions_carry_their_typed_error_and_are_not_created_again(
    serve_emulator: Any, tmp_path: Path
) -> None:
    server = serve_emulator(faults=Faults(failed=1.0, failed_message="NSFW content detected."))
    journal = tmp_path / "j.sqlite"
    async with client_for(server) as client:
        report = await AsyncBatch(client, prompts(2), model=SCHNELL, journal=journal, out=tmp_path)
    assert [r.state for r in report.results] == ["failed", "failed"]
    assert all(isinstance(r.error, PredictionFailed) for r in report.results)
    assert all(r.message == "NSFW content detected." and r.prediction_id for r in report.results)
    async with client_for(server) as client:
        again = await AsyncBatch(client, prompts(2), model=SCHNELL, journal=journal, out=tmp_path)
    assert again.plan.failed == 2 and [r.state for r in again.results] == ["failed", "failed"]
    assert requests_of(server, "create") == 2
    async with client_for(server) as client:
        retried = await AsyncBatch(
            client, prompts(2), model=SCHNELL, journal=journal, out=tmp_path, retry_failed=True
        )
    assert retried.plan.create == 2 and requests_of(server, "create") == 4


async def test_a_create_whose_answer_was_lost_is_unknown_and_never_sent_again(
    serve_emulator: Any, tmp_path: Path
) -> None:
    faults = Faults(operations=frozenset({"create"}), after_create=1.0, drop=1.0)
    # As on CometAPI without a list route: a lost create cannot be reconciled (issue 18).
    server = serve_emulator(faults=faults, list_404=frozenset({"cometapi"}))
    journal = tmp_path / "j.sqlite"
    async with client_for(server) as client:
        report = await AsyncBatch(client, prompts(1), model=SCHNELL, journal=journal, out=tmp_path)
    [result] = report.results
    assert result.state == "unknown" and isinstance(result.error, CreateOutcomeUnknown)
    assert isinstance(result.error.__cause__, APIConnectionError)
    assert result.error.model == SCHNELL and result.error.input_sha256 == input_sha256(prompts(1)[0])
    assert abs(result.error.sent_at - time.time()) < 60  # where to look for it in a list of predictions
    assert server.stats()["predictions_created"] == 1
    async with client_for(server) as client:
        again = await AsyncBatch(client, prompts(1), model=SCHNELL, journal=journal, out=tmp_path)
    assert again.plan.unknown == 1 and isinstance(again.results[0].error, CreateOutcomeUnknown)
    assert again.results[0].error.sent_at == pytest.approx(result.error.sent_at, abs=2)  # from the journal
    assert requests_of(server, "create") == 1


async def test_an_unreachable_api_stops_the_batch_and_its_lines_are_created_next_time(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    async with AsyncClient(TOKEN, base_url="http://127.0.0.1:9/replicate/v1") as client:
        report = await AsyncBatch(
            client, prompts(6), model=SCHNELL, journal=journal, out=tmp_path, concurrency=1
        )
    assert isinstance(report.stopped_early, APIConnectionError)
    assert report.not_started == 5
    assert [r.state for r in report.results] == ["not_created"] + ["pending"] * 5
    assert isinstance(report.results[0].error, APIConnectionError)
    assert [state for _, state, _ in _states(journal)] == ["not_created"]


async def test_a_rejected_key_stops_the_batch(emulator: Any, tmp_path: Path) -> None:
    async with AsyncClient("sk-wrong-key-000", base_url=emulator.cometapi_base_url) as client:
        report = await AsyncBatch(
            client, prompts(4), model=SCHNELL, journal=tmp_path / "j", out=tmp_path, concurrency=1
        )
    assert isinstance(report.stopped_early, AuthenticationError) and report.not_started == 3
    assert requests_of(emulator, "create") == 1


async def test_cancelling_the_run_cancels_running_predictions_and_names_them(
    serve_emulator: Any, tmp_path: Path
) -> None:
    server = serve_emulator(speed=1.0, duration_fn=first_ones_take(60.0, 2))
    journal = tmp_path / "j.sqlite"
    async with client_for(server) as client:
        batch = AsyncBatch(
            client,
            prompts(4),
            model=SCHNELL,
            journal=journal,
            out=tmp_path,
            concurrency=2,
            hold_creates=False,
        )
        task = asyncio.ensure_future(batch.run())
        while sum(1 for _, state, _ in _states_when_ready(journal) if state == "created") < 2:
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    _assert_the_two_running_lines_were_canceled(batch, server, journal)


async def test_cancelling_during_held_creates_finds_them_by_listing_then_cancels_them(
    serve_emulator: Any, tmp_path: Path
) -> None:
    server = serve_emulator(speed=1.0, duration_fn=first_ones_take(60.0, 2))
    journal = tmp_path / "j.sqlite"
    async with client_for(server) as client:
        batch = AsyncBatch(client, prompts(4), model=SCHNELL, journal=journal, out=tmp_path, concurrency=2)
        task = asyncio.ensure_future(batch.run())
        while len(server.stats()["prediction_ids"]) < 2:  # both creates held open on the server
            await asyncio.sleep(0.05)
        assert [state for _, state, _ in _states(journal)] == ["creating", "creating"]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    _assert_the_two_running_lines_were_canceled(batch, server, journal)


def _assert_the_two_running_lines_were_canceled(batch: AsyncBatch, server: Any, journal: Path) -> None:
    """Of 4 lines at concurrency 2 stopped mid-run: both made predictions are named and canceled,
    their lines interrupted, the other two never started (nothing created for them)."""
    report = batch.report
    assert report is not None
    assert sorted(report.interrupted_ids) == sorted(server.stats()["prediction_ids"])
    assert requests_of(server, "cancel") == 2 and requests_of(server, "create") == 2
    assert [state for _, state, _ in _states(journal)] == ["interrupted", "interrupted"]
    assert [r.state for r in report.results] == ["interrupted", "interrupted", "pending", "pending"]


def _states_when_ready(journal: Path) -> list[tuple[int, str, str | None]]:
    try:
        return _states(journal)
    except sqlite3.OperationalError:
        return []  # the schema is not there yet


async def test_leaving_the_loop_early_stops_the_run_like_a_cancel(
    serve_emulator: Any, tmp_path: Path
) -> None:
    server = serve_emulator(speed=1.0, duration_fn=first_ones_take(60.0, 2))
    async with client_for(server) as client:
        async with AsyncBatch(
            client, prompts(5), model=SCHNELL, journal=tmp_path / "j.sqlite", out=tmp_path, concurrency=3
        ) as batch:
            async for result in batch:
                assert result.ok  # the third line is quick
                break
        report = batch.report
    assert report is not None and len(report.interrupted_ids) >= 2  # the two long ones, maybe line 4
    assert requests_of(server, "cancel") == len(report.interrupted_ids)
    rows = _states(tmp_path / "j.sqlite")
    assert requests_of(server, "create") == len(rows) <= 4  # every create has its row; none after the stop
    assert {state for _, state, _ in rows} <= {"interrupted", "succeeded", "created"}


async def test_invalid_inputs_are_refused_before_any_request(emulator: Any, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "ok"}, {"prompt": "x", "num_outputs": 9}])
    async with client_for(emulator) as client:
        with pytest.raises(BatchInputError, match="line 2"):
            await AsyncBatch(client, source, model=SCHNELL, out=tmp_path)
        with pytest.raises(ValueError, match="journal= is required"):
            AsyncBatch(client, prompts(1), model=SCHNELL).prepare()
        with pytest.raises(ValueError, match="concurrency"):
            AsyncBatch(client, prompts(1), model=SCHNELL, concurrency=0)
        with pytest.raises(ValueError, match="timeout"):
            AsyncBatch(client, prompts(1), model=SCHNELL, timeout=float("inf"))
        with pytest.raises(ValueError, match="wait"):
            AsyncBatch(client, prompts(1), model=SCHNELL, wait=61)
        (tmp_path / "file").write_text("x")
        with pytest.raises(BatchInputError, match="not a folder"):
            AsyncBatch(
                client, prompts(1), model=SCHNELL, journal=tmp_path / "j", out=tmp_path / "file"
            ).prepare()
    assert emulator.stats()["requests_total"] == 0


async def test_a_jsonl_file_gets_its_journal_next_to_it_and_lines_keep_their_numbers(
    emulator: Any, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "a"}\n\n{"input": {"prompt": "b"}}\n')
    async with client_for(emulator) as client:
        report = await AsyncBatch(client, source, model=SCHNELL, out=tmp_path / "out")
    assert [r.line for r in report.results] == [1, 3] and report.ok
    assert report.journal == str(tmp_path / "in.jsonl.journal.sqlite")


async def test_each_item_may_name_its_own_model(emulator: Any, tmp_path: Path) -> None:
    dev = "black-forest-labs/flux-dev"
    async with client_for(emulator) as client:
        report = await AsyncBatch(
            client, [(SCHNELL, {"prompt": "a"}), (dev, {"prompt": "b"})], journal=tmp_path / "j", out=tmp_path
        )
    assert report.ok and [r.model for r in report.results] == [SCHNELL, dev]


def test_the_blocking_twin_runs_the_same_engine_and_yields_as_lines_finish(
    emulator: Any, tmp_path: Path
) -> None:
    journal = tmp_path / "j.sqlite"
    states: list[BatchProgress] = []
    batch = Batch(
        prompts(4),
        client=lambda: client_for(emulator),
        model=SCHNELL,
        journal=journal,
        out=tmp_path / "out",
        on_progress=states.append,
    )
    assert batch.prepare().create == 4
    seen = [result.line for result in batch]
    assert sorted(seen) == [1, 2, 3, 4]
    report = batch.report
    assert report is not None and report.ok and states[-1].done == 4
    again = Batch(
        prompts(4), client=lambda: client_for(emulator), model=SCHNELL, journal=journal, out=tmp_path
    )
    assert again.status().succeeded == 4  # from the journal alone
    again.close()
    assert (
        Batch(
            prompts(5),
            client=lambda: client_for(emulator),
            model=SCHNELL,
            journal=journal,
            out=tmp_path / "out",
        )
        .run()
        .plan.create
        == 1
    )
    assert requests_of(emulator, "create") == 5


def test_the_blocking_twin_runs_once(emulator: Any, tmp_path: Path) -> None:
    batch = Batch(
        prompts(1), client=lambda: client_for(emulator), model=SCHNELL, journal=tmp_path / "j", out=tmp_path
    )
    batch.run()
    with pytest.raises(RuntimeError, match="runs once"):
        batch.run()


def test_leaving_the_blocking_loop_early_stops_the_run_and_frees_the_journal(
    serve_emulator: Any, tmp_path: Path
) -> None:
    server = serve_emulator(speed=1.0, duration_fn=first_ones_take(60.0, 2))
    journal = tmp_path / "j.sqlite"
    batch = Batch(
        prompts(5),
        client=lambda: client_for(server),
        model=SCHNELL,
        journal=journal,
        out=tmp_path,
        concurrency=3,
    )
    for result in batch:
        assert result.ok  # the one quick line of the first three
        break
    report = batch.report
    assert report is not None and len(report.interrupted_ids) >= 2
    assert requests_of(server, "cancel") == len(report.interrupted_ids)
    Batch(prompts(5), client=lambda: client_for(server), model=SCHNELL, journal=journal).close()  # not locked


def test_a_client_that_cannot_be_made_is_raised_to_the_caller_and_frees_the_journal(tmp_path: Path) -> None:
    def broken() -> AsyncClient:
        raise RuntimeError("no client today")

    journal = tmp_path / "j.sqlite"
    with pytest.raises(RuntimeError, match="no client today"):
        Batch(prompts(1), client=broken, model=SCHNELL, journal=journal, out=tmp_path).run()
    again = Batch(prompts(1), client=broken, model=SCHNELL, journal=journal)
    again.prepare()  # the lock was released: no "in use" error
    again.close()


@pytest.mark.parametrize("given", ["default", "none", "own"])
async def test_a_batch_polls_with_its_throughput_schedule_unless_told_otherwise(
    emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    """By default the batch's waits go through a copy of the client with `BATCH_POLL_TUNING` (at most
    every 2 s: fewer polls, less of the account's request budget); `poll_tuning=None` keeps the
    client's own schedule, and a given tuning is used as is."""
    asked: list[Any] = []
    original = AsyncClient.with_options

    def recording(self: AsyncClient, **options: Any) -> AsyncClient:
        asked.append(options.get("poll_tuning"))
        return original(self, **options)

    monkeypatch.setattr(AsyncClient, "with_options", recording)
    own = PollTuning(cap=3.0)
    extra: dict[str, Any] = {"none": {"poll_tuning": None}, "own": {"poll_tuning": own}}.get(given, {})
    async with client_for(emulator) as client:
        report = await AsyncBatch(
            client, prompts(2), model=SCHNELL, journal=tmp_path / "j.sqlite", out=tmp_path, **extra
        )
    assert report.ok and report.succeeded == 2
    tunings = [tuning for tuning in asked if tuning is not None]
    expected = {"default": [BATCH_POLL_TUNING], "none": [], "own": [own]}[given]
    assert tunings == expected
    assert BATCH_POLL_TUNING.max_gap == BATCH_POLL_TUNING.cap == 2.0 > PollTuning().max_gap


async def test_auto_holds_creates_where_the_list_route_answers(serve_emulator: Any, tmp_path: Path) -> None:
    server = serve_emulator()
    async with client_for(server) as client:
        report = await AsyncBatch(client, prompts(3), model=SCHNELL, journal=tmp_path / "j", out=tmp_path)
    assert [r.state for r in report.results] == ["succeeded"] * 3
    assert requests_of(server, "list") == 1  # the probe
    assert requests_of(server, "get") == 0  # each held create answered with its finished prediction


async def test_auto_creates_without_holding_where_there_is_no_list_route(
    serve_emulator: Any, tmp_path: Path
) -> None:
    server = serve_emulator(list_404=frozenset({"cometapi"}))
    async with client_for(server) as client:
        report = await AsyncBatch(client, prompts(3), model=SCHNELL, journal=tmp_path / "j", out=tmp_path)
    assert [r.state for r in report.results] == ["succeeded"] * 3
    assert requests_of(server, "get") >= 3  # created without waiting, then polled


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"hold_creates": "yes"}, "hold_creates"),
        ({"hold_creates": 1}, "hold_creates"),
        ({"hold_creates": False, "wait": 30}, "wait=30"),
    ],
)
def test_bad_hold_options_are_refused_before_anything_runs(
    options: dict[str, Any], field: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=field):
        AsyncBatch(None, prompts(1), model=SCHNELL, journal=tmp_path / "j", **options)  # type: ignore[arg-type]


async def test_identical_lines_are_never_held_so_a_lost_one_stays_tellable(
    serve_emulator: Any, tmp_path: Path
) -> None:
    server = serve_emulator()
    inputs = [{"prompt": "twin"}, {"prompt": "twin"}, {"prompt": "single"}]
    async with client_for(server) as client:
        report = await AsyncBatch(client, inputs, model=SCHNELL, journal=tmp_path / "j", out=tmp_path)
    assert [r.state for r in report.results] == ["succeeded"] * 3
    assert requests_of(server, "get") >= 2  # the twins were created without waiting, then polled


class CountingJournal(SQLiteJournal):
    """Counts how often the engine asks for work."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked: Counter[str] = Counter()

    def claim(self, limit: int, policy: RetryPolicy) -> list[Claim]:
        self.asked["claim"] += 1
        return super().claim(limit, policy)

    def wait_hint(self) -> float | None:
        self.asked["wait_hint"] += 1
        return super().wait_hint()


async def test_once_the_journal_has_no_more_lines_no_worker_asks_it_again(
    emulator: Any, tmp_path: Path
) -> None:
    journal = CountingJournal(tmp_path / "j.sqlite", "batch")
    async with client_for(emulator) as client:
        report = await AsyncBatch(
            client, prompts(3), model=SCHNELL, journal=journal, out=tmp_path, concurrency=8
        )
    assert report.succeeded == 3
    # 8 workers ask at once (3 lines, 5 empty claims and their wait hints); the 3 that worked a
    # line do not ask again when it ends: the journal already said nothing is left.
    assert journal.asked == {"claim": 8, "wait_hint": 5}


async def test_a_stop_during_the_hold_probe_frees_the_journal_and_sends_no_create(tmp_path: Path) -> None:
    """The run's checks before any line starts (the list-route probe here) are inside the run: a
    stop there closes the journal, so the same process can run the batch again at once."""
    import httpx

    probing = asyncio.Event()
    creates: list[str] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith("/predictions"):
            probing.set()
            await asyncio.Event().wait()  # the list route never answers
        creates.append(str(request.url))
        return httpx.Response(500)

    journal = tmp_path / "j.sqlite"
    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with AsyncClient(TOKEN, base_url="http://api.test/v1", http_client=http) as client:
        task = asyncio.ensure_future(
            AsyncBatch(client, prompts(2), model=SCHNELL, journal=journal, out=tmp_path).run()
        )
        async with asyncio.timeout(10):
            await probing.wait()
        task.cancel()
        await asyncio.wait({task})
        assert task.cancelled()
    await http.aclose()
    assert creates == []
    with SQLiteJournal(journal, "batch") as again:  # not locked by the stopped run
        assert {row.state for row in again.rows()} <= {"pending"}


@pytest.mark.parametrize(("concurrency", "deferred"), [(4, 0), (JOURNAL_DEFER_MIN_LINES, 3)])
async def test_final_states_wait_for_the_next_write_only_on_batches_of_many_lines_at_once(
    emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, concurrency: int, deferred: int
) -> None:
    """A deferred final state holds its line's worker until the next write (at most JOURNAL_DEFER_S):
    at a few lines at once that is most of the wait for a wake-up's worth of CPU, so it is not done."""
    calls: list[str] = []
    defer = JournalThread.defer

    def recording(self: JournalThread, method: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(method.__name__)
        return defer(self, method, *args, **kwargs)

    monkeypatch.setattr(JournalThread, "defer", recording)
    async with client_for(emulator) as client:
        batch = AsyncBatch(
            client,
            prompts(3),
            model=SCHNELL,
            journal=tmp_path / "j.sqlite",
            out=tmp_path,
            concurrency=concurrency,
        )
        report = await batch
    assert report.ok and report.succeeded == 3
    assert calls == ["mark_finished"] * deferred
    assert [state for _, state, _ in _states(tmp_path / "j.sqlite")] == ["succeeded"] * 3
