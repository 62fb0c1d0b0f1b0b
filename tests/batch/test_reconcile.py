"""A line left ``creating`` (its create sent, its answer never read) is looked for through the list
route when the batch runs again (issue 18 item 4): one match is resumed by id, never created again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from comet_replicate import AsyncBatch, AsyncClient, CreateOutcomeUnknown
from comet_replicate_emulator import Faults

from .conftest import SCHNELL, TOKEN, prompts, requests_of

LOST_ANSWERS = Faults(operations=frozenset({"create"}), after_create=1.0, drop=1.0)


def _client(server: Any, **options: Any) -> AsyncClient:
    return AsyncClient(TOKEN, base_url=server.cometapi_base_url, **options)


async def _leave_creating(server: Any, inputs: list[dict[str, Any]], journal: Path, out: Path) -> None:
    """A run whose every create is made but answered by a dropped connection: lines stay unknown."""
    async with _client(server, reconcile_unknown_creates=False) as client:
        report = await AsyncBatch(client, inputs, model=SCHNELL, journal=journal, out=out)
    assert all(result.state == "unknown" for result in report.results)
    assert server.stats()["predictions_created"] == len(inputs)


async def test_creating_lines_with_one_match_are_resumed_by_id_and_not_created_again(
    serve_emulator: Any, tmp_path: Path
) -> None:
    server = serve_emulator(faults=LOST_ANSWERS)
    journal, out = tmp_path / "j.sqlite", tmp_path / "out"
    await _leave_creating(server, prompts(3), journal, out)
    async with _client(server) as client:
        batch = AsyncBatch(client, prompts(3), model=SCHNELL, journal=journal, out=out)
        assert batch.prepare().unknown == 3  # before any request: as the journal stands
        report = await batch
    assert report.ok and report.succeeded == 3
    assert report.plan.resume == 3 and report.plan.unknown == 0
    assert sorted(str(r.prediction_id) for r in report.results) == sorted(server.stats()["prediction_ids"])
    assert requests_of(server, "create") == 3  # resumed, never sent again
    assert all(len(r.files) == 1 for r in report.results)


async def test_a_lost_create_is_reconciled_in_the_same_run_by_the_client(
    serve_emulator: Any, tmp_path: Path
) -> None:
    server = serve_emulator(faults=LOST_ANSWERS)
    async with _client(server) as client:
        report = await AsyncBatch(
            client, prompts(2), model=SCHNELL, journal=tmp_path / "j.sqlite", out=tmp_path
        )
    assert report.ok and report.succeeded == 2
    assert sorted(str(r.prediction_id) for r in report.results) == sorted(server.stats()["prediction_ids"])
    assert requests_of(server, "create") == 2


async def test_identical_lines_are_never_guessed_between(serve_emulator: Any, tmp_path: Path) -> None:
    server = serve_emulator(faults=LOST_ANSWERS)
    same = [{"prompt": "twin"}, {"prompt": "twin"}]
    journal = tmp_path / "j.sqlite"
    await _leave_creating(server, same, journal, tmp_path)
    async with _client(server) as client:
        report = await AsyncBatch(client, same, model=SCHNELL, journal=journal, out=tmp_path)
    created = sorted(server.stats()["prediction_ids"])
    assert [r.state for r in report.results] == ["unknown", "unknown"]
    for result in report.results:
        assert all(pid in str(result.message) for pid in created), result.message
    assert requests_of(server, "create") == 2


async def test_without_a_list_route_creating_lines_stay_unknown_and_say_why(
    serve_emulator: Any, tmp_path: Path
) -> None:
    server = serve_emulator(faults=LOST_ANSWERS, list_404=frozenset({"cometapi"}))
    journal = tmp_path / "j.sqlite"
    await _leave_creating(server, prompts(1), journal, tmp_path)
    async with _client(server) as client:
        report = await AsyncBatch(client, prompts(1), model=SCHNELL, journal=journal, out=tmp_path)
    [result] = report.results
    assert result.state == "unknown" and isinstance(result.error, CreateOutcomeUnknown)
    assert "cannot reconcile" in str(result.message)
    assert requests_of(server, "create") == 1


async def test_reconciliation_turned_off_leaves_creating_lines_alone(
    serve_emulator: Any, tmp_path: Path
) -> None:
    server = serve_emulator(faults=LOST_ANSWERS)
    journal = tmp_path / "j.sqlite"
    await _leave_creating(server, prompts(1), journal, tmp_path)
    async with _client(server, reconcile_unknown_creates=False) as client:
        report = await AsyncBatch(client, prompts(1), model=SCHNELL, journal=journal, out=tmp_path)
    assert report.results[0].state == "unknown"
    assert requests_of(server, "list") == 0
