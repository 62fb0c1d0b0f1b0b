"""Reconciliation against the emulator (issue 18 item 3): the emulator creates the prediction, then
drops the connection before answering; the client finds it through the list route and carries on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from comet_replicate import AsyncClient, Client, CreateOutcomeUnknown
from comet_replicate_emulator import EmulatorConfig, Faults
from comet_replicate_emulator._server import RunningEmulator, serve
from comet_replicate_emulator.pytest_plugin import TEST_TOKEN

MODEL = "black-forest-labs/flux-schnell"
INPUT = {"prompt": "a lighthouse at dusk", "num_outputs": 1}


def _lost_answers(**config: object) -> EmulatorConfig:
    """Every create is made, then its connection dropped before the answer."""
    faults = Faults(drop=1.0, after_create=1.0, operations=frozenset({"create"}))
    return EmulatorConfig(token=TEST_TOKEN, speed=50.0, seed=7, faults=faults, **config)  # type: ignore[arg-type]


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    with serve(_lost_answers()) as server:
        yield server


@pytest.fixture
def emulator_without_list() -> Iterator[RunningEmulator]:
    with serve(_lost_answers(list_404=frozenset({"cometapi"}))) as server:
        yield server


def _created(server: RunningEmulator) -> list[str]:
    ids: list[str] = server.stats()["prediction_ids"]
    assert server.stats()["predictions_created"] == len(ids)
    return ids


def test_run_returns_the_prediction_whose_create_answer_was_dropped(emulator: RunningEmulator) -> None:
    seen: list[str] = []
    with Client(api_key=TEST_TOKEN, base_url=emulator.replicate_base_url) as client:
        files = client.run(MODEL, dict(INPUT), timeout=60, on_created=lambda p: seen.append(p.id))
    created = _created(emulator)
    assert len(created) == 1  # found again, never created twice
    assert seen == created
    assert files and all(f.prediction_id == created[0] for f in files)


async def test_async_run_returns_the_prediction_whose_create_answer_was_dropped(
    emulator: RunningEmulator,
) -> None:
    seen: list[str] = []
    async with AsyncClient(api_key=TEST_TOKEN, base_url=emulator.replicate_base_url) as client:
        files = await client.run(MODEL, dict(INPUT), timeout=60, on_created=lambda p: seen.append(p.id))
    created = _created(emulator)
    assert len(created) == 1
    assert seen == created
    assert files and all(f.prediction_id == created[0] for f in files)


def test_without_a_list_route_the_error_says_reconciliation_was_not_possible(
    emulator_without_list: RunningEmulator,
) -> None:
    with (
        Client(api_key=TEST_TOKEN, base_url=emulator_without_list.cometapi_base_url) as client,
        pytest.raises(CreateOutcomeUnknown, match="this server cannot reconcile") as info,
    ):
        client.run(MODEL, dict(INPUT), timeout=60)
    assert info.value.candidate_ids == []
    assert len(_created(emulator_without_list)) == 1


def test_turned_off_the_error_comes_at_once_and_reconcile_finds_it_on_demand(
    emulator: RunningEmulator,
) -> None:
    with Client(
        api_key=TEST_TOKEN, base_url=emulator.replicate_base_url, reconcile_unknown_creates=False
    ) as client:
        with pytest.raises(CreateOutcomeUnknown) as info:
            client.predictions.create(MODEL, dict(INPUT))
        assert info.value.reconciliation is None
        found = client.predictions.reconcile(info.value)
    assert [found.id] == _created(emulator)


async def test_async_reconcile_on_demand_names_both_identical_creates(emulator: RunningEmulator) -> None:
    async with AsyncClient(
        api_key=TEST_TOKEN, base_url=emulator.replicate_base_url, reconcile_unknown_creates=False
    ) as client:
        errors: list[CreateOutcomeUnknown] = []
        for _ in range(2):
            with pytest.raises(CreateOutcomeUnknown) as info:
                await client.predictions.create(MODEL, dict(INPUT))
            errors.append(info.value)
        with pytest.raises(CreateOutcomeUnknown, match="2 listed predictions match") as again:
            await client.predictions.reconcile(errors[0])
    assert sorted(again.value.candidate_ids) == sorted(_created(emulator))
