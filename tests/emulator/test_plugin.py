"""The pytest plugin's fixtures give a test an emulator and a configured client."""

from __future__ import annotations

from typing import Any

import pytest
from comet_replicate_emulator import EmulatorConfig


async def test_in_process_fixture_serves_the_api(comet_emulator_app: Any) -> None:
    assert comet_emulator_app.config.validate_responses is True
    async with comet_emulator_app.async_client() as client:
        created = await client.post(
            "/replicate/v1/models/black-forest-labs/flux-schnell/predictions", json={"input": {"prompt": "x"}}
        )
    assert created.status_code == 201
    assert created.json()["urls"]["get"].startswith(comet_emulator_app.cometapi_base_url)
    assert comet_emulator_app.stats()["predictions_created"] == 1


def test_in_process_fixture_has_a_sync_client(comet_emulator_app: Any) -> None:
    with comet_emulator_app.sync_client() as client:
        response = client.get("/replicate/v1/predictions/unknown")
    assert response.status_code == 404


def test_server_fixture_listens_on_loopback(comet_emulator_server: Any) -> None:
    assert comet_emulator_server.base_url.startswith("http://127.0.0.1:")
    assert comet_emulator_server.cometapi_base_url == comet_emulator_server.base_url + "/replicate/v1"


def test_client_fixture_runs_a_prediction_end_to_end(comet_client: Any, comet_emulator_server: Any) -> None:
    files = comet_client.run("black-forest-labs/flux-schnell", {"prompt": "a paper boat", "num_outputs": 2})
    assert len(files) == 2
    assert all(f.read()[:4] == b"RIFF" for f in files)  # WEBP
    assert comet_emulator_server.stats()["predictions_created"] == 1


async def test_async_client_fixture_runs_a_prediction(
    comet_async_client: Any, comet_emulator_server: Any
) -> None:
    files = await comet_async_client.run("black-forest-labs/flux-kontext-pro", {"prompt": "a paper boat"})
    assert len(files) == 1
    assert (await files[0].aread())[:8] == b"\x89PNG\r\n\x1a\n"
    assert comet_emulator_server.stats()["predictions_created"] == 1


@pytest.fixture
def comet_emulator_config() -> EmulatorConfig:
    """A test module may override the config the fixtures use."""
    return EmulatorConfig(token="sk-module-token", speed=100.0, seed=9, validate_responses=True)


def test_overridden_config_reaches_the_server(comet_emulator_server: Any) -> None:
    assert comet_emulator_server.config.token == "sk-module-token"
